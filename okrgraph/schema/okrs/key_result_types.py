"""Key results and what hangs off them: check-ins, initiatives, target revisions."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from okrgraph.domain import scoring
from okrgraph.domain.graph.queries import Order
from okrgraph.domain.models import CheckIn as CheckInRow
from okrgraph.domain.models import Cycle as CycleRow
from okrgraph.domain.models import Initiative as InitiativeRow
from okrgraph.domain.models import KeyResult as KeyResultRow
from okrgraph.domain.models import Objective as ObjectiveRow
from okrgraph.domain.models import TargetRevision as TargetRevisionRow
from okrgraph.domain.models.enums import KeyResultDriver as KeyResultDriverEnum
from okrgraph.schema.context import Info
from okrgraph.schema.enums import (
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    Status,
)
from okrgraph.schema.node import Node, node_kind, to_global_id
from okrgraph.schema.okrs import scores
from okrgraph.schema.okrs.types import (
    BY_CREATED,
    Alignment,
    Objective,
    _alignments,
    _expected,
    _person,
    org_zone,
)
from okrgraph.schema.organizations.types import Person
from okrgraph.schema.pagination import (
    Connection,
    children_connection,
)

if TYPE_CHECKING:
    from okrgraph.schema.kpis.types import Kpi

KpiRef = Annotated["Kpi", strawberry.lazy("okrgraph.schema.kpis.types")]
NEWEST_FIRST = Order("effective_at", descending=True)
OLDEST_REVISION_FIRST = Order("revised_at")


def shown(value: float | None) -> str:
    """A number as a rule text shows it to a client: never Python's None, nan or inf."""
    if value is None:
        return "(no value yet)"
    if not math.isfinite(value):
        return "(not a finite number)"
    return format(value, ".15g")


def score_rule(kr: KeyResultRow) -> str:
    """The rule of a key result's score, in words, with its numbers (DESIGN.md section 3)."""
    kind = kr.kind.value
    cur, start, target = shown(kr.current_value), shown(kr.start_value), shown(kr.target_value)
    if kind in ("INCREASE", "DECREASE"):
        return (
            f"{kind}: clamp((current - start) / (target - start), 0, 1) with current "
            f"{cur}, start {start}, target {target}; no current value scores 0"
        )
    if kind == "ABOVE":
        return f"ABOVE: 1 when current {cur} >= target {target}, else 0"
    if kind == "BELOW":
        return f"BELOW: 1 when current {cur} <= target {target}, else 0"
    return f"MILESTONE: 1 once done (current {cur} = 1), else 0"


@node_kind(KeyResultRow)
@strawberry.type(description="A measurable outcome of an objective.")
class KeyResult(Node):
    row: strawberry.Private[KeyResultRow]
    title: str = strawberry.field(description="The outcome, in a sentence.")
    kind: KeyResultKind = strawberry.field(description="How it is scored.")
    unit: str = strawberry.field(description="Unit of start, target and current.")
    start: float = strawberry.field(description="Baseline value.")
    target: float | None = strawberry.field(description="Value that scores 1.0.")
    current: float | None = strawberry.field(description="Latest value (check-in or KPI).")
    weight: float = strawberry.field(description="Weight in the objective's progress.")
    progress_driver: KeyResultDriver = strawberry.field(
        description="Current value from CHECK_INS, a KPI, or aligned CHILDREN."
    )
    stretch: bool = strawberry.field(description="Aspirational: 0.7 counts as success.")
    state: KeyResultState = strawberry.field(description="ACTIVE or CANCELLED.")
    status: Status = strawberry.field(description="Pace health of the score.")
    confidence: int | None = strawberry.field(description="Latest confidence, 0..10.")
    final_score: float | None = strawberry.field(description="Frozen at cycle close.")
    last_check_in_at: datetime | None = strawberry.field(description="Time of the latest check-in.")

    @classmethod
    def from_row(cls, row: KeyResultRow) -> KeyResult:
        return cls(
            id=to_global_id("KeyResult", row.id),
            row=row,
            title=row.title,
            kind=row.kind,
            unit=row.unit,
            start=row.start_value,
            target=row.target_value,
            current=row.current_value,
            weight=row.weight,
            progress_driver=row.progress_driver,
            stretch=row.stretch,
            state=row.state,
            status=row.status,
            confidence=row.confidence,
            final_score=row.final_score,
            last_check_in_at=row.last_check_in_at,
        )

    @strawberry.field(
        description="The key result of a previous cycle this one was carried over from "
        "(closeCycle sets it on every key result it carries; null otherwise)."
    )
    async def carried_over_from(self, info: Info) -> KeyResult | None:
        if self.row.carried_over_from_id is None:
            return None
        row = await info.context.loaders.by_id(KeyResultRow).load(self.row.carried_over_from_id)
        return KeyResult.from_row(row) if row else None

    @strawberry.field(description="0..1 per the scoring rules; `asOf` gives it as it was then.")
    async def score(self, info: Info, as_of: datetime | None = None) -> float:
        if as_of is None:
            return self.row.score
        return await scores.value_as_of(info, self.row.id, as_of)

    @strawberry.field(description="Which terms, weights and sources make the score.")
    async def explanation(self, info: Info) -> scores.ScoreExplanation:
        row = self.row
        if row.final_score is not None:
            return scores.frozen(row.final_score)
        if row.progress_driver is KeyResultDriverEnum.CHILDREN:
            terms = await scores.child_terms(info, row.id, of_key_results=True)
            return scores.ScoreExplanation.of(scoring.children_progress(terms))
        source = (
            scoring.SOURCE_KPI
            if row.progress_driver is KeyResultDriverEnum.KPI
            else (scoring.SOURCE_CHECK_IN)
        )
        rule = score_rule(row)
        term = scoring.Term(1.0, row.score, source, None)
        return scores.ScoreExplanation.of(scoring.Explanation(row.score, (term,), rule))

    @strawberry.field(description="Projected end-of-cycle value from the check-in trend.")
    async def forecast(self, info: Info) -> scores.Forecast | None:
        row = self.row
        objective = await info.context.loaders.by_id(ObjectiveRow).load(row.objective_id)
        cycle = await info.context.loaders.by_id(CycleRow).load(objective.cycle_id)
        tz = await org_zone(info, cycle.org_id)  # the cycle's days, as the scores read them
        start, _ = scoring.cycle_bounds(cycle.starts_on, cycle.ends_on, tz)
        points = [p for p in await scores.check_in_series(info, row.id) if p[0] >= start]
        projected = scoring.forecast(points, cycle.starts_on, cycle.ends_on, tz)
        status = scoring.forecast_status(
            row.kind, row.start_value, row.target_value, projected, stretch=row.stretch
        )
        if projected is None or status is None:
            return None
        return scores.Forecast(
            projected_value=projected,
            projected_score=scoring.key_result_score(
                row.kind, row.start_value, row.target_value, projected
            ),
            status=status,
            points=len(points),
        )

    @strawberry.field(description="Score as it changed, newest first.")
    async def history(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[scores.ScorePoint]:
        return await scores.history(info, self.row.id, first, after)

    @strawberry.field(description="The objective it measures.")
    async def objective(self, info: Info) -> Objective:
        row = await info.context.loaders.by_id(ObjectiveRow).load(self.row.objective_id)
        return Objective.from_row(row)

    @strawberry.field(description="Fraction of its cycle elapsed now (0..1).")
    async def expected_progress(self, info: Info) -> float:
        objective = await info.context.loaders.by_id(ObjectiveRow).load(self.row.objective_id)
        return await _expected(
            info, await info.context.loaders.by_id(CycleRow).load(objective.cycle_id)
        )

    @strawberry.field(description="The person accountable for it.")
    async def owner(self, info: Info) -> Person | None:
        return await _person(info, self.row.owner_person_id)

    @strawberry.field(description="Check-ins, newest effective first (the history).")
    async def check_ins(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CheckIn]:
        return await children_connection(
            info,
            CheckInRow,
            "key_result_id",
            self.row.id,
            first,
            after,
            NEWEST_FIRST,
            CheckIn.from_row,
        )

    @strawberry.field(description="Work planned to move it (never scored).")
    async def initiatives(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Initiative]:
        return await children_connection(
            info,
            InitiativeRow,
            "key_result_id",
            self.row.id,
            first,
            after,
            BY_CREATED,
            Initiative.from_row,
        )

    @strawberry.field(description="Earlier targets, oldest first.")
    async def target_revisions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[TargetRevision]:
        return await children_connection(
            info,
            TargetRevisionRow,
            "key_result_id",
            self.row.id,
            first,
            after,
            OLDEST_REVISION_FIRST,
            TargetRevision.from_row,
        )

    @strawberry.field(description="Objectives aligned to this key result.")
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Alignment]:
        return await _alignments(info, "parent_key_result_id", self.row.id, first, after)

    @strawberry.field(description="The KPI that measures it, if any.")
    async def kpi(self, info: Info) -> KpiRef | None:
        from okrgraph.schema.kpis.types import kpis_linked

        kpis = await kpis_linked(info, "key_result_id", self.row.id)
        return kpis[0] if kpis else None


@node_kind(CheckInRow)
@strawberry.type(description="A value reported for a key result; never changed, only superseded.")
class CheckIn(Node):
    row: strawberry.Private[CheckInRow]
    value: float = strawberry.field(description="The reported value.")
    confidence: int | None = strawberry.field(description="Owner's confidence, 0..10.")
    comment: str = strawberry.field(description="What happened.")
    effective_at: datetime = strawberry.field(
        description="When the value was true (may be backdated)."
    )
    recorded_at: datetime = strawberry.field(description="When it was recorded.")

    @classmethod
    def from_row(cls, row: CheckInRow) -> CheckIn:
        return cls(
            id=to_global_id("CheckIn", row.id),
            row=row,
            value=row.value,
            confidence=row.confidence,
            comment=row.comment,
            effective_at=row.effective_at,
            recorded_at=row.recorded_at,
        )

    @strawberry.field(description="Who reported it.")
    async def author(self, info: Info) -> Person | None:
        return await _person(info, self.row.author_person_id)

    @strawberry.field(description="The check-in this one corrects.")
    async def supersedes(self, info: Info) -> CheckIn | None:
        if self.row.supersedes_id is None:
            return None
        row = await info.context.loaders.by_id(CheckInRow).load(self.row.supersedes_id)
        return CheckIn.from_row(row) if row else None

    @strawberry.field(description="The key result it reports on.")
    async def key_result(self, info: Info) -> KeyResult:
        row = await info.context.loaders.by_id(KeyResultRow).load(self.row.key_result_id)
        return KeyResult.from_row(row)


@node_kind(InitiativeRow)
@strawberry.type(description="Work planned to move a key result.")
class Initiative(Node):
    row: strawberry.Private[InitiativeRow]
    title: str = strawberry.field(description="What will be done.")
    status: InitiativeStatus = strawberry.field(description="Where the work stands.")
    link: str | None = strawberry.field(description="Where the work is tracked.")

    @classmethod
    def from_row(cls, row: InitiativeRow) -> Initiative:
        return cls(
            id=to_global_id("Initiative", row.id),
            row=row,
            title=row.title,
            status=row.status,
            link=row.link,
        )

    @strawberry.field(description="Who leads the work.")
    async def owner(self, info: Info) -> Person | None:
        return await _person(info, self.row.owner_person_id)


@node_kind(TargetRevisionRow)
@strawberry.type(description="A change of a key result's target.")
class TargetRevision(Node):
    row: strawberry.Private[TargetRevisionRow]
    old_target: float | None = strawberry.field(description="Target before.")
    new_target: float | None = strawberry.field(description="Target after.")
    reason: str = strawberry.field(description="Why it changed.")
    revised_at: datetime = strawberry.field(description="When it changed.")

    @classmethod
    def from_row(cls, row: TargetRevisionRow) -> TargetRevision:
        return cls(
            id=to_global_id("TargetRevision", row.id),
            row=row,
            old_target=row.old_target,
            new_target=row.new_target,
            reason=row.reason,
            revised_at=row.revised_at,
        )
