"""The SQL forms of the scoring rules agree with okrgraph.domain.scoring on random inputs."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.models.enums import KeyResultKind, Status
from okrgraph.domain.scores import sql

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
values = st.one_of(finite, st.none(), st.sampled_from([math.nan, math.inf, 0.0, 1.0]))
unit = st.floats(min_value=0, max_value=1, allow_subnormal=False)

SCORE = text(
    f"""SELECT {sql.key_result_score("k")} FROM (SELECT CAST(:kind AS text) AS kind,
    CAST(:start AS float8) AS start_value, CAST(:target AS float8) AS target_value,
    CAST(:cur AS float8) AS current_value) k"""
)
STATUS = text(
    f"""SELECT {sql.pace_status("p", "e", "s", "c")} FROM (SELECT CAST(:p AS float8) AS p,
    CAST(:e AS float8) AS e, CAST(:s AS boolean) AS s, CAST(:c AS integer) AS c) x"""
)
MEAN = text(
    f"""SELECT {sql.weighted_mean("w", "v")}
    FROM unnest(CAST(:w AS float8[]), CAST(:v AS float8[])) AS t(w, v)"""
)
settings_ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@settings_
@given(st.sampled_from(KeyResultKind), finite, st.one_of(finite, st.none()), values)
async def test_key_result_score(
    db: AsyncSession, kind: KeyResultKind, start: float, target: float | None, cur: float | None
) -> None:
    if kind in (KeyResultKind.INCREASE, KeyResultKind.DECREASE) and target == start:
        target = None if target is None else start + 1  # refused at input
    got = await db.scalar(SCORE, {"kind": kind.value, "start": start, "target": target, "cur": cur})
    assert got == scoring.key_result_score(kind, start, target, cur)


@settings_
@given(
    unit,
    st.one_of(unit, st.sampled_from([0.1, 0.0999999, 0.5, 1.0])),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 10)),
)
async def test_pace_status(
    db: AsyncSession, progress: float, expected: float, stretch: bool, confidence: int | None
) -> None:
    got = await db.scalar(STATUS, {"p": progress, "e": expected, "s": stretch, "c": confidence})
    assert Status(got) is scoring.status_from_pace(
        progress, expected, stretch=stretch, confidence=confidence
    )


@settings_
@given(st.lists(st.tuples(st.one_of(st.just(0.0), st.floats(1e-3, 100)), unit), max_size=8))
async def test_weighted_mean(db: AsyncSession, terms: list[tuple[float, float]]) -> None:
    got = await db.scalar(MEAN, {"w": [w for w, _ in terms], "v": [v for _, v in terms]})
    want = scoring.weighted_mean(scoring.Term(w, v, "x") for w, v in terms)
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


async def test_pace_boundaries_match_exactly(db: AsyncSession) -> None:
    for progress, expected, stretch in [(0.45, 0.5, False), (0.63, 1.0, True), (0.3, 0.5, False)]:
        got = await db.scalar(STATUS, {"p": progress, "e": expected, "s": stretch, "c": None})
        assert Status(got) is scoring.status_from_pace(progress, expected, stretch=stretch)


# Any float a row may hold, huge, tiny and subnormal ones included (stored before
# the input bounds): neither form may raise, overflow to inf, or disagree.
extreme = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.7e308, -1.7e308, 2.0**1023, -(2.0**1023), 5e-324, -5e-324, 0.0]),
)
extreme_or_not = st.one_of(extreme, st.sampled_from([math.nan, math.inf, -math.inf]))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(KeyResultKind), extreme_or_not, st.one_of(extreme_or_not, st.none()), extreme
)
async def test_key_result_score_of_any_stored_row(
    db: AsyncSession, kind: KeyResultKind, start: float, target: float | None, cur: float
) -> None:
    async with db.begin_nested():  # an error must fail this test, not the transaction
        got = await db.scalar(
            SCORE, {"kind": kind.value, "start": start, "target": target, "cur": cur}
        )
    want = scoring.key_result_score(kind, start, target, cur)
    assert 0.0 <= want <= 1.0
    assert got == want


def test_extreme_span_scores_its_middle() -> None:
    """Issue 12, finding 15: -1.7e308 -> 1.7e308 at 0 is half way, not 0."""
    assert scoring.key_result_score(KeyResultKind.INCREASE, -1.7e308, 1.7e308, 0.0) == 0.5
    assert scoring.key_result_score(KeyResultKind.DECREASE, 1.7e308, -1.7e308, 0.0) == 0.5


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.one_of(extreme_or_not, st.just(0.0)),
            st.one_of(unit, st.sampled_from([5e-324, 1e-320, 2.0**-53])),
        ),
        max_size=8,
    )
)
async def test_weighted_mean_of_any_stored_weights(
    db: AsyncSession, terms: list[tuple[float, float]]
) -> None:
    async with db.begin_nested():
        got = await db.scalar(MEAN, {"w": [w for w, _ in terms], "v": [v for _, v in terms]})
    want = scoring.weighted_mean(scoring.Term(w, v, "x") for w, v in terms)
    assert 0.0 <= want <= 1.0
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
