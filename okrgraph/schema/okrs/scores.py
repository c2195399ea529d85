"""Explainable numbers: terms of a score, its history, `asOf`, and forecasts."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from okrgraph.domain import scoring
from okrgraph.domain.graph.queries import Order
from okrgraph.domain.models import ScoreHistory as ScoreHistoryRow
from okrgraph.domain.scores import reads
from okrgraph.schema.context import Info
from okrgraph.schema.enums import Status
from okrgraph.schema.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from okrgraph.schema.node import NODE_KINDS, Node
from okrgraph.schema.pagination import (
    Connection,
    children_connection,
    page_args,
)

NEWEST_FIRST = Order("recorded_at", descending=True)


@strawberry.type(description="One weighted contribution to a score.")
class ScoreTerm:
    weight: float = strawberry.field(description="Its weight.")
    value: float = strawberry.field(description="Its value, 0..1.")
    source: str = strawberry.field(
        description="Where the value comes from: check-in, kpi, children or frozen."
    )
    ref: strawberry.Private[str | None]

    @strawberry.field(description="The key result or objective behind the term.")
    async def subject(self, info: Info) -> Node | None:
        if self.ref is None:
            return None
        type_name, _, raw = self.ref.partition(":")
        kind = NODE_KINDS[type_name]
        row = await info.context.loaders.by_id(kind.model).load(uuid.UUID(raw))
        return kind.build(row) if row is not None else None


@strawberry.type(description="How a number was made: the rule and its terms.")
class ScoreExplanation:
    value: float = strawberry.field(description="The number the terms give now.")
    rule: str = strawberry.field(description="The rule applied, in words.")
    all_terms: strawberry.Private[list[ScoreTerm]]

    @strawberry.field(
        description=f"Each weighted term: the first `first` (at most {MAX_PAGE_SIZE}); "
        "`value` counts them all."
    )
    def terms(self, first: int = DEFAULT_PAGE_SIZE) -> list[ScoreTerm]:
        return self.all_terms[: page_args(first, None).first]

    @classmethod
    def of(cls, e: scoring.Explanation) -> ScoreExplanation:
        return cls(
            value=e.value,
            rule=e.rule,
            all_terms=[
                ScoreTerm(weight=t.weight, value=t.value, source=t.source, ref=t.ref)
                for t in e.terms
            ],
        )


def frozen(final_score: float) -> ScoreExplanation:
    term = scoring.Term(1.0, final_score, scoring.SOURCE_FROZEN)
    return ScoreExplanation.of(scoring.Explanation(final_score, (term,), "frozen at cycle close"))


@strawberry.type(description="A value as it was recorded (the score history).")
class ScorePoint:
    value: float = strawberry.field(description="Score or progress, 0..1.")
    status: Status = strawberry.field(description="Pace health then.")
    recorded_at: datetime = strawberry.field(description="When it changed to this.")

    @classmethod
    def from_row(cls, row: ScoreHistoryRow) -> ScorePoint:
        return cls(
            value=row.value,
            status=row.status,
            recorded_at=row.recorded_at,
        )


@strawberry.type(description="Where a key result is heading, from its check-in trend.")
class Forecast:
    projected_value: float = strawberry.field(
        description="Value at the cycle's end by least squares over the check-ins so far."
    )
    projected_score: float = strawberry.field(description="The score that value would give.")
    status: Status = strawberry.field(description="The status that score implies.")
    points: int = strawberry.field(description="Check-ins the trend is fitted to.")


async def history(
    info: Info, subject_id: uuid.UUID, first: int | None, after: str | None
) -> Connection[ScorePoint]:
    return await children_connection(
        info,
        ScoreHistoryRow,
        "subject_id",
        subject_id,
        first,
        after,
        NEWEST_FIRST,
        ScorePoint.from_row,
    )


async def value_as_of(info: Info, subject_id: uuid.UUID, at: datetime) -> float:
    """The value recorded last at or before `at`; 0 before the first record."""
    loader = info.context.loaders.batch(
        ("as_of", at), lambda session, ids: reads.values_as_of(session, ids, at)
    )
    found = await loader.load(subject_id)
    return found[0] if found else 0.0


async def child_terms(
    info: Info, parent_id: uuid.UUID, *, of_key_results: bool
) -> list[scoring.Term]:
    loader = info.context.loaders.batch(
        ("child_terms", of_key_results),
        lambda session, ids: reads.child_terms(session, ids, of_key_results=of_key_results),
        default=[],
    )
    terms: list[scoring.Term] = await loader.load(parent_id)
    return terms


async def key_result_terms(info: Info, objective_id: uuid.UUID) -> list[scoring.Term]:
    loader = info.context.loaders.batch("kr_terms", reads.key_result_terms, default=[])
    terms: list[scoring.Term] = await loader.load(objective_id)
    return terms


async def check_in_series(info: Info, key_result_id: uuid.UUID) -> list[tuple[datetime, float]]:
    loader = info.context.loaders.batch("series", reads.check_in_series, default=[])
    points: list[tuple[datetime, float]] = await loader.load(key_result_id)
    return points
