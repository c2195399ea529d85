"""`closeCycle`: grade, freeze and carry over a cycle, or (dryRun) show the plan; a
large cycle's close runs in the worker (`CloseCycleSuccess.job`, `Cycle.closeJob`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles import close_jobs
from okrgraph.domain.cycles.carry_over import CarryOverPolicy
from okrgraph.domain.cycles.closing import Closing
from okrgraph.domain.models import CloseJob as CloseJobRow
from okrgraph.domain.models import Cycle as CycleRow
from okrgraph.domain.models.enums import CloseJobState, ClosePhase
from okrgraph.schema.context import Info
from okrgraph.schema.enums import Outcome
from okrgraph.schema.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from okrgraph.schema.node import input_kwargs, parse_id, to_global_id
from okrgraph.schema.okrs.types import Cycle
from okrgraph.schema.pagination import page_args
from okrgraph.schema.payloads import UserErrors, run_mutation

strawberry.enum(
    CarryOverPolicy,
    description="What happens to a missed objective's unfinished key results at close.",
)


strawberry.enum(
    CloseJobState,
    description="A close run by the worker: QUEUED, RUNNING, DONE (closed) or FAILED (nothing "
    "was changed; `error` says why).",
)
strawberry.enum(
    ClosePhase,
    description="The steps of a close, in order: RECALCULATING (a full recalculation of the "
    "scores), GRADING (final scores, outcomes), CARRYING_OVER (copies into the next cycle), "
    "REFLECTING (a reflection per graded objective), ANNOUNCING (audit entry and events).",
)


@strawberry.input(description="The cycle to close and how to carry its missed objectives over.")
class CloseCycleInput:
    id: strawberry.ID = strawberry.field(description="The cycle (ACTIVE or GRADING).")
    dry_run: bool = strawberry.field(
        default=False, description="Only show what closing would do; change nothing."
    )
    carry_over: CarryOverPolicy = strawberry.field(
        default=CarryOverPolicy.CARRY_REMAINDER,
        description=(
            "CARRY_REMAINDER: the copy keeps start and target, its current value continues; "
            "REBASELINE: the copy starts at the old current value; "
            "CLOSE_AS_MISSED: nothing is carried over."
        ),
    )
    next_cycle_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The cycle to carry over into (PLANNING or ACTIVE, starting after this one). "
            "Default: the next existing cycle of the same cadence, else a new one."
        ),
    )


@strawberry.type(description="How one objective ended the closed cycle.")
class ObjectiveGrade:
    objective_id: strawberry.ID = strawberry.field(description="The graded objective.")
    title: str = strawberry.field(description="Its title.")
    final_score: float = strawberry.field(description="Its frozen final score (0..1).")
    outcome: Outcome = strawberry.field(
        description="ACHIEVED (0.7 or more), MISSED, or CARRIED_OVER into the next cycle."
    )
    carried_over_to_id: strawberry.ID | None = strawberry.field(
        description="The objective's copy in the next cycle (null in a dry run or if none)."
    )


@strawberry.type(description="What closing a cycle did, or in a dry run would do.")
class CycleClosing:
    grades: strawberry.Private[list[ObjectiveGrade]]

    @strawberry.field(
        description=f"The graded objectives (DRAFT and CANCELLED ones are left alone): the "
        f"first `first` (at most {MAX_PAGE_SIZE}); `objectivesGraded` counts them all."
    )
    def objectives(self, first: int = DEFAULT_PAGE_SIZE) -> list[ObjectiveGrade]:
        return self.grades[: page_args(first, None).first]

    @strawberry.field(description="How many objectives were graded.")
    def objectives_graded(self) -> int:
        return len(self.grades)

    key_results_frozen: int = strawberry.field(description="Key results given a final score.")
    objectives_carried_over: int = strawberry.field(
        description="Missed objectives copied into the next cycle."
    )
    key_results_carried_over: int = strawberry.field(
        description="Unfinished key results copied with them."
    )


@strawberry.type(description="The cycle closed, or in a dry run the plan of closing it.")
class CloseCycleSuccess:
    dry_run: bool = strawberry.field(description="True when nothing was changed.")
    cycle: Cycle = strawberry.field(
        description="The cycle after closing (in a dry run: as it is, unchanged)."
    )
    next_cycle_name: str | None = strawberry.field(
        description="The cycle the missed objectives go to (created if none existed); null "
        "while the close runs in the worker (`job`)."
    )
    summary: CycleClosing | None = strawberry.field(
        description="Grades and counts; null while the close runs in the worker (`job`)."
    )
    job: CycleCloseJob | None = strawberry.field(
        default=None,
        description=f"A cycle of more than {close_jobs.ASYNC_CLOSE_OBJECTIVES} graded "
        "objectives closes in the worker: this is that close, QUEUED (poll it, or the "
        "cycle's `closeJob`, until DONE; the cycle is CLOSED from then on). Null when the "
        "close is done in the request (a smaller cycle, a dry run).",
    )


@strawberry.type(
    description=f"The close of a large cycle (more than {close_jobs.ASYNC_CLOSE_OBJECTIVES} "
    "graded objectives), run by the worker: its progress and, once DONE, its result."
)
class CycleCloseJob:
    row: strawberry.Private[CloseJobRow]

    @strawberry.field(description="QUEUED, RUNNING, DONE or FAILED.")
    def state(self) -> CloseJobState:
        return self.row.state

    @strawberry.field(description="The step under way while RUNNING; null otherwise.")
    def phase(self) -> ClosePhase | None:
        return self.row.phase if self.row.state is CloseJobState.RUNNING else None

    @strawberry.field(description="The carry-over policy asked for.")
    def carry_over(self) -> CarryOverPolicy:
        return CarryOverPolicy(self.row.carry_over)

    @strawberry.field(description="Objectives to grade, counted when the close was asked.")
    def objectives(self) -> int:
        return self.row.objectives

    @strawberry.field(description="Objectives graded so far (null before GRADING is done).")
    def objectives_graded(self) -> int | None:
        return self.row.objectives_graded

    @strawberry.field(description="Key results given a final score (null before then).")
    def key_results_frozen(self) -> int | None:
        return self.row.key_results_frozen

    @strawberry.field(description="Objectives copied into the next cycle (null before then).")
    def objectives_carried_over(self) -> int | None:
        return self.row.objectives_carried_over

    @strawberry.field(description="Key results copied with them (null before then).")
    def key_results_carried_over(self) -> int | None:
        return self.row.key_results_carried_over

    @strawberry.field(description="Why the close FAILED (the cycle is unchanged); else null.")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(description="Runs started (more than one after a worker crashed).")
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field(description="When the close was asked.")
    def requested_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="When the latest run started (null while QUEUED).")
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field(description="When it ended, DONE or FAILED.")
    def finished_at(self) -> datetime | None:
        return self.row.finished_at

    @strawberry.field(description="The cycle the missed objectives went to, once DONE.")
    def next_cycle_name(self) -> str | None:
        return self.row.result["next_cycle_name"] if self.row.result else None

    @strawberry.field(description="Grades and counts, once DONE (as closeCycle gives them).")
    def summary(self) -> CycleClosing | None:
        return _summary(Closing.from_json(self.row.result)) if self.row.result else None


CloseCycleResult = Annotated[
    CloseCycleSuccess | UserErrors,
    strawberry.union("CloseCycleResult", description="CloseCycleSuccess or a user error."),
]


def _summary(done: Closing) -> CycleClosing:
    return CycleClosing(
        grades=[
            ObjectiveGrade(
                objective_id=to_global_id("Objective", g.objective_id),
                title=g.title,
                final_score=g.final_score,
                outcome=g.outcome,
                carried_over_to_id=to_global_id("Objective", g.carried_over_to_id)
                if g.carried_over_to_id
                else None,
            )
            for g in done.objectives
        ],
        key_results_frozen=done.key_results_frozen,
        objectives_carried_over=done.objectives_carried_over,
        key_results_carried_over=done.key_results_carried_over,
    )


@strawberry.type
class CycleClosingMutations:
    @strawberry.mutation(
        description=(
            "Close a cycle (admins): bring scores current (a full recalculation at that "
            "moment, whatever roll-ups are pending), freeze those as final scores, grade the "
            "objectives with a reflection each, carry missed ones over (objectives and key "
            "results, each copy with carriedOverFrom), mark it CLOSED. With dryRun, the same "
            "plan without changing anything. A cycle of more than "
            f"{close_jobs.ASYNC_CLOSE_OBJECTIVES} graded objectives closes in the worker: "
            "the answer comes at once, with the `job` to poll and no summary yet."
        )
    )
    async def close_cycle(
        self, info: Info, input: CloseCycleInput, idempotency_key: str | None = None
    ) -> CloseCycleResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            done = await close_jobs.request_close(
                session,
                principal,
                parse_id(input.id, "Cycle", "input.id"),
                **input_kwargs(input, ids={"next_cycle_id": "Cycle"}, skip={"id"}),
            )
            if isinstance(done, CloseJobRow):
                return {"queued": str(done.id), "cycle_id": str(done.cycle_id)}
            return done.as_json()  # plain data: an idempotent replay returns it as stored

        async def success(result: dict[str, Any]) -> CloseCycleSuccess:
            if "queued" in result:
                loaders = info.context.loaders
                job = await loaders.by_id(CloseJobRow).load(uuid.UUID(result["queued"]))
                cycle = await loaders.by_id(CycleRow).load(uuid.UUID(result["cycle_id"]))
                return CloseCycleSuccess(
                    dry_run=False,
                    cycle=Cycle.from_row(cycle),
                    next_cycle_name=None,
                    summary=None,
                    job=CycleCloseJob(row=job),
                )
            done = Closing.from_json(result)
            row = await info.context.loaders.by_id(CycleRow).load(done.cycle_id)
            return CloseCycleSuccess(
                dry_run=done.dry_run,
                cycle=Cycle.from_row(row),
                next_cycle_name=done.next_cycle_name,
                summary=_summary(done),
            )

        return await run_mutation(info, "closeCycle", input, idempotency_key, action, success)
