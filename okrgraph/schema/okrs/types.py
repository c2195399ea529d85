"""Cycles, objectives, the alignment edges and reflections (key results: key_result_types)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo

import strawberry

from okrgraph.domain import clock, scoring
from okrgraph.domain.cycles.close_jobs import latest_jobs
from okrgraph.domain.graph.queries import Filter, Order
from okrgraph.domain.models import Alignment as AlignmentRow
from okrgraph.domain.models import Cycle as CycleRow
from okrgraph.domain.models import KeyResult as KeyResultRow
from okrgraph.domain.models import Objective as ObjectiveRow
from okrgraph.domain.models import Organization as OrganizationRow
from okrgraph.domain.models import Person as PersonRow
from okrgraph.domain.models import Reflection as ReflectionRow
from okrgraph.domain.models import Team as TeamRow
from okrgraph.domain.models.enums import ObjectiveDriver as ObjectiveDriverEnum
from okrgraph.domain.objectives import quality
from okrgraph.domain.objectives.queries import related_objectives
from okrgraph.schema.context import Info
from okrgraph.schema.enums import (
    Cadence,
    CycleState,
    Level,
    ObjectiveDriver,
    ObjectiveState,
    Outcome,
    Status,
)
from okrgraph.schema.errors import ClientError
from okrgraph.schema.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from okrgraph.schema.node import Node, expect_id, node_kind, to_global_id
from okrgraph.schema.okrs import scores
from okrgraph.schema.organizations.types import Person, Team
from okrgraph.schema.pagination import (
    BadCursor,
    Connection,
    build_connection,
    children_connection,
    page_args,
)

if TYPE_CHECKING:
    from okrgraph.schema.kpis.types import Kpi
    from okrgraph.schema.okrs.closing import CycleCloseJob
    from okrgraph.schema.okrs.key_result_types import KeyResult

KpiRef = Annotated["Kpi", strawberry.lazy("okrgraph.schema.kpis.types")]
KeyResultRef = Annotated["KeyResult", strawberry.lazy("okrgraph.schema.okrs.key_result_types")]
CloseJobRef = Annotated["CycleCloseJob", strawberry.lazy("okrgraph.schema.okrs.closing")]
BY_START = Order("starts_on", descending=True)
BY_CREATED = Order()


async def org_zone(info: Info, org_id: uuid.UUID) -> ZoneInfo:
    """The organisation's time zone, in which its cycles' dates are whole days."""
    org = await info.context.loaders.by_id(OrganizationRow).load(org_id)
    try:
        return ZoneInfo(org.timezone or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


async def _expected(info: Info, cycle: CycleRow) -> float:
    """Fraction of the cycle elapsed now, its dates read in the organisation's time
    zone (as the scores are)."""
    tz = await org_zone(info, cycle.org_id)
    return scoring.expected_progress(cycle.starts_on, cycle.ends_on, clock.now(), tz)


async def _person(info: Info, person_id: uuid.UUID | None) -> Person | None:
    if person_id is None:
        return None
    row = await info.context.loaders.by_id(PersonRow).load(person_id)
    return Person.from_row(row) if row else None


@node_kind(CycleRow)
@strawberry.type(description="A time box for OKRs (a year may contain its quarters).")
class Cycle(Node):
    row: strawberry.Private[CycleRow]
    name: str = strawberry.field(description="E.g. `2026-Q4`.")
    cadence: Cadence = strawberry.field(description="QUARTER, YEAR or CUSTOM.")
    starts_on: date = strawberry.field(description="First day.")
    ends_on: date = strawberry.field(description="Last day (inclusive).")
    state: CycleState = strawberry.field(description="PLANNING, ACTIVE, GRADING or CLOSED.")

    @classmethod
    def from_row(cls, row: CycleRow) -> Cycle:
        return cls(
            id=to_global_id("Cycle", row.id),
            row=row,
            name=row.name,
            cadence=row.cadence,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            state=row.state,
        )

    @strawberry.field(description="Fraction of the cycle elapsed now (0..1).")
    async def expected_progress(self, info: Info) -> float:
        return await _expected(info, self.row)

    @strawberry.field(description="The cycle containing this one (a quarter's year).")
    async def parent(self, info: Info) -> Cycle | None:
        if self.row.parent_cycle_id is None:
            return None
        row = await info.context.loaders.by_id(CycleRow).load(self.row.parent_cycle_id)
        return Cycle.from_row(row) if row else None

    @strawberry.field(description="Cycles inside this one.")
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Cycle]:
        return await children_connection(
            info, CycleRow, "parent_cycle_id", self.row.id, first, after, BY_START, Cycle.from_row
        )

    @strawberry.field(description="Objectives in this cycle.")
    async def objectives(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Objective]:
        return await objectives_of(info, "cycle_id", self.row.id, first, after, None)

    @strawberry.field(
        description="The latest close of this cycle run by the worker (a large cycle's "
        "closeCycle), with its progress; null when it never had one."
    )
    async def close_job(self, info: Info) -> CloseJobRef | None:
        from okrgraph.schema.okrs.closing import CycleCloseJob  # it imports this module

        row = await info.context.loaders.batch("latest_close_job", latest_jobs).load(self.row.id)
        return CycleCloseJob(row=row) if row else None


async def objectives_of(
    info: Info,
    column: str,
    parent_id: uuid.UUID,
    first: int | None,
    after: str | None,
    cycle_id: strawberry.ID | None,
) -> Connection[Objective]:
    """Objectives by an owning column, optionally in one cycle."""
    page = page_args(first, after)
    filters: tuple[Filter, ...] = ()
    if cycle_id is not None:
        cycle = expect_id(cycle_id, "Cycle")
        if cycle is None:
            raise ClientError("`cycleId` is not a Cycle id.")
        filters = (("cycle_id", "=", cycle),)
    loader = info.context.loaders.by_parent(
        ObjectiveRow, column, order=BY_CREATED, page=page, filters=filters
    )
    rows = await loader.load(parent_id)
    return build_connection(rows, page, BY_CREATED, Objective.from_row)


@dataclass(frozen=True)
class _Related:
    """An objective found by walking the alignments, with its distance (the cursor)."""

    id: uuid.UUID
    depth: int
    row: ObjectiveRow


BY_DISTANCE = Order("depth")


async def _related(
    info: Info,
    objective_id: uuid.UUID,
    direction: Literal["up", "down"],
    first: int | None,
    after: str | None,
) -> Connection[Objective]:
    page = page_args(first, after)
    if page.after is not None and type(page.after[0]) is not int:
        raise BadCursor()
    loader = info.context.loaders.batch(
        ("related", direction, page),
        lambda session, ids: related_objectives(session, ids, direction, page),
        default=[],
    )
    pairs = await loader.load(objective_id)
    rows = await info.context.loaders.by_id(ObjectiveRow).load_many([id for id, _ in pairs])
    found = [_Related(id, depth, row) for (id, depth), row in zip(pairs, rows, strict=True) if row]
    return build_connection(found, page, BY_DISTANCE, lambda r: Objective.from_row(r.row))


@strawberry.type(description="A quality check an objective fails.")
class ObjectiveWarning:
    code: str = strawberry.field(
        description="TOO_MANY_OBJECTIVES, TOO_FEW_KEY_RESULTS, TOO_MANY_KEY_RESULTS, "
        "KEY_RESULT_WITHOUT_TARGET, KEY_RESULT_WITHOUT_OWNER, STALE_KEY_RESULT or NOT_ALIGNED."
    )
    message: str = strawberry.field(description="What to improve.")


@node_kind(ObjectiveRow)
@strawberry.type(
    description="A qualitative goal in a cycle, owned by the company, a team or a person."
)
class Objective(Node):
    row: strawberry.Private[ObjectiveRow]
    title: str = strawberry.field(description="The goal, in a sentence.")
    description: str = strawberry.field(description="Why it matters.")
    level: Level = strawberry.field(description="COMPANY, TEAM or INDIVIDUAL.")
    state: ObjectiveState = strawberry.field(description="Lifecycle.")
    progress_driver: ObjectiveDriver = strawberry.field(
        description="Progress from KEY_RESULTS, CHILDREN or BOTH."
    )
    status: Status = strawberry.field(description="Pace health of the progress.")
    final_score: float | None = strawberry.field(description="Frozen at cycle close.")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def from_row(cls, row: ObjectiveRow) -> Objective:
        return cls(
            id=to_global_id("Objective", row.id),
            row=row,
            title=row.title,
            description=row.description,
            level=row.level,
            state=row.state,
            progress_driver=row.progress_driver,
            status=row.status,
            final_score=row.final_score,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(
        description="0..1, weighted per the scoring rules; `asOf` gives it as it was then."
    )
    async def progress(self, info: Info, as_of: datetime | None = None) -> float:
        if as_of is None:
            return self.row.progress
        return await scores.value_as_of(info, self.row.id, as_of)

    @strawberry.field(description="Which terms, weights and sources make the progress.")
    async def explanation(self, info: Info) -> scores.ScoreExplanation:
        row = self.row
        if row.final_score is not None:
            return scores.frozen(row.final_score)
        driver = row.progress_driver
        krs = (
            []
            if driver is ObjectiveDriverEnum.CHILDREN
            else (await scores.key_result_terms(info, row.id))
        )
        children = (
            []
            if driver is ObjectiveDriverEnum.KEY_RESULTS
            else (await scores.child_terms(info, row.id, of_key_results=False))
        )
        return scores.ScoreExplanation.of(scoring.objective_progress(driver, krs, children))

    @strawberry.field(description="OKR quality checks: advice, never a refusal.")
    async def warnings(self, info: Info) -> list[ObjectiveWarning]:
        loader = info.context.loaders.batch("quality", quality.quality_facts)
        facts = await loader.load(self.row.id)
        return [ObjectiveWarning(code=w.code, message=w.message) for w in quality.warnings(facts)]

    @strawberry.field(description="Progress as it changed, newest first.")
    async def history(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[scores.ScorePoint]:
        return await scores.history(info, self.row.id, first, after)

    @strawberry.field(description="The cycle it belongs to.")
    async def cycle(self, info: Info) -> Cycle:
        return Cycle.from_row(await info.context.loaders.by_id(CycleRow).load(self.row.cycle_id))

    @strawberry.field(description="Fraction of its cycle elapsed now (0..1).")
    async def expected_progress(self, info: Info) -> float:
        return await _expected(
            info, await info.context.loaders.by_id(CycleRow).load(self.row.cycle_id)
        )

    @strawberry.field(description="The owning team.")
    async def owner_team(self, info: Info) -> Team | None:
        if self.row.owner_team_id is None:
            return None
        row = await info.context.loaders.by_id(TeamRow).load(self.row.owner_team_id)
        return Team.from_row(row) if row else None

    @strawberry.field(description="The owning person.")
    async def owner_person(self, info: Info) -> Person | None:
        return await _person(info, self.row.owner_person_id)

    @strawberry.field(description="The objective it was carried over from.")
    async def carried_over_from(self, info: Info) -> Objective | None:
        if self.row.carried_over_from_id is None:
            return None
        row = await info.context.loaders.by_id(ObjectiveRow).load(self.row.carried_over_from_id)
        return Objective.from_row(row) if row else None

    @strawberry.field(description="Its key results.")
    async def key_results(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[KeyResultRef]:
        page = page_args(first, after)
        loader = info.context.loaders.by_parent(
            KeyResultRow, "objective_id", order=BY_CREATED, page=page
        )
        rows = await loader.load(self.row.id)
        from okrgraph.schema.okrs.key_result_types import KeyResult

        return build_connection(rows, page, BY_CREATED, KeyResult.from_row)

    @strawberry.field(description="Edges up: what this objective supports, with weights.")
    async def parents(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Alignment]:
        return await _alignments(info, "child_objective_id", self.row.id, first, after)

    @strawberry.field(description="Edges down: objectives aligned directly to this one.")
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Alignment]:
        return await _alignments(info, "parent_objective_id", self.row.id, first, after)

    @strawberry.field(
        description="Every objective above, nearest first (through KRs too), a page at a time."
    )
    async def ancestors(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Objective]:
        return await _related(info, self.row.id, "up", first, after)

    @strawberry.field(
        description="Every objective below, nearest first (through KRs too), a page at a time."
    )
    async def descendants(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Objective]:
        return await _related(info, self.row.id, "down", first, after)

    @strawberry.field(
        description=f"KPIs that keep this objective on course: the first `first` "
        f"(at most {MAX_PAGE_SIZE}), in the order they were linked."
    )
    async def kpis(self, info: Info, first: int = DEFAULT_PAGE_SIZE) -> list[KpiRef]:
        from okrgraph.schema.kpis.types import kpis_linked

        size = page_args(first, None).first
        return (await kpis_linked(info, "objective_id", self.row.id))[:size]

    @strawberry.field(description="The reflection written at cycle close.")
    async def reflection(self, info: Info) -> Reflection | None:
        rows = await info.context.loaders.by_parent(ReflectionRow, "objective_id").load(self.row.id)
        return Reflection.from_row(rows[0]) if rows else None


async def _alignments(
    info: Info, column: str, parent_id: uuid.UUID, first: int | None, after: str | None
) -> Connection[Alignment]:
    page = page_args(first, after)
    loader = info.context.loaders.by_parent(AlignmentRow, column, order=BY_CREATED, page=page)
    rows = await loader.load(parent_id)
    return build_connection(rows, page, BY_CREATED, Alignment.from_row)


@node_kind(AlignmentRow)
@strawberry.type(description="A weighted edge from a child objective to a parent objective or KR.")
class Alignment(Node):
    row: strawberry.Private[AlignmentRow]
    weight: float = strawberry.field(description="Weight of the child in the parent's progress.")
    contributes: bool = strawberry.field(
        description="Counts in the parent's progress (false: shown as support only)."
    )

    @classmethod
    def from_row(cls, row: AlignmentRow) -> Alignment:
        return cls(
            id=to_global_id("Alignment", row.id),
            row=row,
            weight=row.weight,
            contributes=row.contributes,
        )

    @strawberry.field(description="The supporting objective.")
    async def child(self, info: Info) -> Objective:
        row = await info.context.loaders.by_id(ObjectiveRow).load(self.row.child_objective_id)
        return Objective.from_row(row)

    @strawberry.field(description="The parent objective, if the edge goes to one.")
    async def parent_objective(self, info: Info) -> Objective | None:
        if self.row.parent_objective_id is None:
            return None
        row = await info.context.loaders.by_id(ObjectiveRow).load(self.row.parent_objective_id)
        return Objective.from_row(row) if row else None

    @strawberry.field(description="The parent key result, if the edge goes to one.")
    async def parent_key_result(self, info: Info) -> KeyResultRef | None:
        if self.row.parent_key_result_id is None:
            return None
        row = await info.context.loaders.by_id(KeyResultRow).load(self.row.parent_key_result_id)
        from okrgraph.schema.okrs.key_result_types import KeyResult

        return KeyResult.from_row(row) if row else None


@node_kind(ReflectionRow)
@strawberry.type(description="The evaluate-and-reflect record of an objective at cycle close.")
class Reflection(Node):
    row: strawberry.Private[ReflectionRow]
    final_score: float = strawberry.field(description="Score frozen at close.")
    outcome: Outcome = strawberry.field(description="ACHIEVED, MISSED or CARRIED_OVER.")
    what_worked: str = strawberry.field(description="What worked.")
    what_did_not: str = strawberry.field(description="What did not.")

    @classmethod
    def from_row(cls, row: ReflectionRow) -> Reflection:
        return cls(
            id=to_global_id("Reflection", row.id),
            row=row,
            final_score=row.final_score,
            outcome=row.outcome,
            what_worked=row.what_worked,
            what_did_not=row.what_did_not,
        )
