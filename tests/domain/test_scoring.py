"""DESIGN.md section 3: scores, pace, KPI health, forecast (pure, no database)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from okrgraph.domain.models.enums import (
    Direction,
    Health,
    KeyResultKind,
    ObjectiveDriver,
    Status,
)
from okrgraph.domain.scoring import (
    MAX_WEIGHT,
    MIN_WEIGHT,
    SOURCE_CHECK_IN,
    SOURCE_CHILDREN,
    Term,
    children_progress,
    cycle_bounds,
    expected_progress,
    forecast,
    forecast_status,
    key_result_score,
    kpi_health,
    kpi_on_target,
    objective_progress,
    status_from_pace,
    weighted_mean,
)

values = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0)
# zero, or a weight whose products do not underflow (a subnormal weight such as
# 5e-324 makes w * v round to 0: float arithmetic, not a scoring rule)
weights = st.one_of(st.just(0.0), st.floats(min_value=MIN_WEIGHT, max_value=MAX_WEIGHT))
terms = st.lists(st.builds(Term, weight=weights, value=unit, source=st.just(SOURCE_CHECK_IN)))
Q4 = (date(2026, 10, 1), date(2026, 12, 31))


# --- key result score ------------------------------------------------------


@given(st.sampled_from(KeyResultKind), values, st.none() | values, st.none() | values)
def test_score_is_within_bounds(
    kind: KeyResultKind, start: float, target: float | None, current: float | None
) -> None:
    assert 0.0 <= key_result_score(kind, start, target, current) <= 1.0


@given(values, values, values, values)
def test_increase_is_non_decreasing_in_current(
    start: float, target: float, a: float, b: float
) -> None:
    assume(start < target)
    lo, hi = sorted((a, b))
    k = KeyResultKind.INCREASE
    assert key_result_score(k, start, target, lo) <= key_result_score(k, start, target, hi)


@given(values, values, values, values)
def test_decrease_is_non_increasing_in_current(
    start: float, target: float, a: float, b: float
) -> None:
    assume(start > target)
    lo, hi = sorted((a, b))
    k = KeyResultKind.DECREASE
    assert key_result_score(k, start, target, lo) >= key_result_score(k, start, target, hi)


@pytest.mark.parametrize(
    ("kind", "start", "target", "current", "expected"),
    [
        (KeyResultKind.INCREASE, 10, 20, 15, 0.5),
        (KeyResultKind.INCREASE, 10, 20, 25, 1.0),
        (KeyResultKind.INCREASE, 10, 20, 5, 0.0),
        (KeyResultKind.INCREASE, 10, 20, None, 0.0),
        (KeyResultKind.INCREASE, 10, None, 15, 0.0),
        (KeyResultKind.DECREASE, 100, 40, 70, 0.5),
        (KeyResultKind.DECREASE, 100, 40, 25, 1.0),
        (KeyResultKind.DECREASE, 100, 40, 120, 0.0),
        (KeyResultKind.ABOVE, 0, 99.5, 99.5, 1.0),
        (KeyResultKind.ABOVE, 0, 99.5, 99.4, 0.0),
        (KeyResultKind.BELOW, 0, 200, 200, 1.0),
        (KeyResultKind.BELOW, 0, 200, 201, 0.0),
        (KeyResultKind.ABOVE, 0, 99.5, None, 0.0),
        (KeyResultKind.MILESTONE, 0, 1, 1, 1.0),
        (KeyResultKind.MILESTONE, 0, 1, 0, 0.0),
        (KeyResultKind.MILESTONE, 0, None, 1, 1.0),
        (KeyResultKind.MILESTONE, 0, 1, None, 0.0),
        (KeyResultKind.INCREASE, 0, 10, float("nan"), 0.0),
    ],
)
def test_score_examples(
    kind: KeyResultKind,
    start: float,
    target: float | None,
    current: float | None,
    expected: float,
) -> None:
    assert key_result_score(kind, start, target, current) == pytest.approx(expected)


# --- weighted means and objective progress ------------------------------


@given(terms)
def test_weighted_mean_is_within_bounds(ts: list[Term]) -> None:
    assert 0.0 <= weighted_mean(ts) <= 1.0


@given(terms, st.floats(min_value=1e-3, max_value=1e3))
def test_weighted_mean_is_scale_invariant(ts: list[Term], k: float) -> None:
    scaled = [Term(t.weight * k, t.value, t.source, t.ref) for t in ts]
    assume(all(t.weight == 0 or MIN_WEIGHT <= t.weight <= MAX_WEIGHT for t in scaled))
    assert weighted_mean(scaled) == pytest.approx(weighted_mean(ts), abs=1e-9)


@given(st.lists(unit))
def test_zero_weights_give_zero(vals: list[float]) -> None:
    assert weighted_mean(Term(0.0, v, SOURCE_CHECK_IN, None) for v in vals) == 0.0


def test_weighted_mean_example() -> None:
    ts = [Term(3, 1.0, SOURCE_CHECK_IN, "a"), Term(1, 0.2, SOURCE_CHECK_IN, "b")]
    assert weighted_mean(ts) == pytest.approx(0.8)
    assert weighted_mean([]) == 0.0


def test_objective_progress_by_driver() -> None:
    krs = [Term(1, 1.0, SOURCE_CHECK_IN, "kr1"), Term(1, 0.5, SOURCE_CHECK_IN, "kr2")]
    kids = [Term(2, 0.0, SOURCE_CHILDREN, "o1")]
    by_krs = objective_progress(ObjectiveDriver.KEY_RESULTS, krs, kids)
    assert by_krs.value == pytest.approx(0.75)
    assert by_krs.terms == tuple(krs)
    assert objective_progress(ObjectiveDriver.CHILDREN, krs, kids).value == 0.0
    both = objective_progress(ObjectiveDriver.BOTH, krs, kids)
    assert both.value == pytest.approx(1.5 / 4)
    assert {t.ref for t in both.terms} == {"kr1", "kr2", "o1"}
    assert both.rule
    assert objective_progress(ObjectiveDriver.CHILDREN, krs, []).value == 0.0
    assert children_progress(kids + [Term(2, 1.0, SOURCE_CHILDREN, "o2")]).value == 0.5


# --- expected progress and pace status ----------------------------------


def test_expected_progress_halfway() -> None:
    begin, end = cycle_bounds(*Q4)
    assert (begin, end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert expected_progress(*Q4, begin + (end - begin) / 2) == pytest.approx(0.5)
    assert expected_progress(*Q4, datetime(2026, 9, 1, tzinfo=UTC)) == 0.0
    assert expected_progress(*Q4, datetime(2026, 12, 31, 12, tzinfo=UTC)) < 1.0
    assert expected_progress(*Q4, datetime(2027, 1, 1, tzinfo=UTC)) == 1.0
    assert expected_progress(*Q4, datetime(2027, 3, 1, tzinfo=UTC)) == 1.0


def test_expected_progress_with_datetimes_and_other_zones() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 11, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    assert expected_progress(start, end, datetime(2026, 1, 2, 2, tzinfo=plus2)) == pytest.approx(
        0.1
    )
    assert expected_progress(start, end, datetime(2026, 1, 6)) == pytest.approx(0.5)  # noqa: DTZ001


@given(unit, st.floats(min_value=0.0, max_value=0.1, exclude_max=True), st.booleans())
def test_status_is_not_started_before_ten_percent(p: float, e: float, stretch: bool) -> None:
    assert status_from_pace(p, e, stretch=stretch) is Status.NOT_STARTED


@pytest.mark.parametrize(
    ("progress", "expected", "status"),
    [
        (0.45, 0.5, Status.ON_TRACK),  # pace exactly 0.9
        (0.449, 0.5, Status.AT_RISK),
        (0.3, 0.5, Status.AT_RISK),  # pace exactly 0.6
        (0.299, 0.5, Status.OFF_TRACK),
        (1.0, 0.5, Status.ON_TRACK),
        (0.0, 0.1, Status.OFF_TRACK),  # exactly 10% elapsed: pace applies
        (1.0, 0.0999, Status.NOT_STARTED),
        (0.09, 0.1, Status.ON_TRACK),
    ],
)
def test_pace_thresholds(progress: float, expected: float, status: Status) -> None:
    assert status_from_pace(progress, expected) is status


def test_stretch_rule() -> None:
    assert status_from_pace(0.7, 1.0, stretch=True) is Status.ON_TRACK
    assert status_from_pace(0.7, 1.0) is Status.AT_RISK
    assert status_from_pace(0.63, 1.0, stretch=True) is Status.ON_TRACK  # pace 0.9
    assert status_from_pace(0.62, 1.0, stretch=True) is Status.AT_RISK
    assert status_from_pace(0.42, 1.0, stretch=True) is Status.AT_RISK  # pace 0.6
    assert status_from_pace(0.41, 1.0, stretch=True) is Status.OFF_TRACK


def test_low_confidence_makes_at_least_at_risk() -> None:
    assert status_from_pace(1.0, 0.5, confidence=3) is Status.AT_RISK
    assert status_from_pace(1.0, 0.5, confidence=4) is Status.ON_TRACK
    assert status_from_pace(1.0, 0.5, confidence=0) is Status.AT_RISK
    assert status_from_pace(0.0, 0.5, confidence=2) is Status.OFF_TRACK
    assert status_from_pace(0.35, 0.5, confidence=1) is Status.AT_RISK
    assert status_from_pace(0.0, 0.05, confidence=3) is Status.AT_RISK
    assert status_from_pace(0.0, 0.05, confidence=7) is Status.NOT_STARTED


# --- KPI health ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "health", "on_target"),
    [
        (480_000, Health.HEALTHY, False),
        (470_000, Health.WARNING, False),
        (440_000, Health.CRITICAL, False),
        (475_000, Health.HEALTHY, False),  # at the threshold is not past it
        (450_000, Health.WARNING, False),
        (500_000, Health.HEALTHY, True),
        (None, Health.UNKNOWN, None),
    ],
)
def test_kpi_health_dau_example(
    value: float | None, health: Health, on_target: bool | None
) -> None:
    hib = Direction.HIGHER_IS_BETTER
    assert kpi_health(hib, value, 475_000, 450_000) is health
    assert kpi_on_target(hib, value, 500_000) is on_target


@pytest.mark.parametrize(
    ("value", "health", "on_target"),
    [
        (520_000, Health.HEALTHY, False),
        (530_000, Health.WARNING, False),
        (560_000, Health.CRITICAL, False),
        (525_000, Health.HEALTHY, False),
        (550_000, Health.WARNING, False),
        (500_000, Health.HEALTHY, True),
        (None, Health.UNKNOWN, None),
    ],
)
def test_kpi_health_lower_is_better_mirror(
    value: float | None, health: Health, on_target: bool | None
) -> None:
    lib = Direction.LOWER_IS_BETTER
    assert kpi_health(lib, value, 525_000, 550_000) is health
    assert kpi_on_target(lib, value, 500_000) is on_target


def test_kpi_missing_thresholds_are_not_checked() -> None:
    hib = Direction.HIGHER_IS_BETTER
    assert kpi_health(hib, 1.0, None, None) is Health.HEALTHY
    assert kpi_health(hib, 1.0, 5.0, None) is Health.WARNING
    assert kpi_health(hib, 1.0, None, 5.0) is Health.CRITICAL
    assert kpi_on_target(hib, 1.0, None) is None


# --- forecast ------------------------------------------------------------


@given(
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(min_value=-10, max_value=10),
    st.lists(st.integers(min_value=0, max_value=80), min_size=2, max_size=10, unique=True),
)
def test_forecast_on_a_perfect_line_returns_its_end_value(
    intercept: float, slope: float, days: list[int]
) -> None:
    begin, end = cycle_bounds(*Q4)
    points = [(begin + timedelta(days=d), intercept + slope * d) for d in days]
    total_days = (end - begin).days
    got = forecast(points, *Q4)
    assert got is not None
    assert got == pytest.approx(intercept + slope * total_days, rel=1e-6, abs=1e-6)


def test_forecast_example_and_degenerate_inputs() -> None:
    begin = datetime(2026, 10, 1, tzinfo=UTC)
    # 92-day cycle; 0 -> 23 over the first 23 days projects to 92 at the end.
    points = [(begin, 0.0), (begin + timedelta(days=23), 23.0)]
    assert forecast(points, *Q4) == pytest.approx(92.0)
    assert forecast([], *Q4) is None
    assert forecast([(begin, 5.0)], *Q4) is None
    assert forecast([(begin, 5.0), (begin, 7.0)], *Q4) is None


def test_forecast_status() -> None:
    inc = KeyResultKind.INCREASE
    assert forecast_status(inc, 0, 100, 95) is Status.ON_TRACK
    assert forecast_status(inc, 0, 100, 70) is Status.AT_RISK
    assert forecast_status(inc, 0, 100, 70, stretch=True) is Status.ON_TRACK
    assert forecast_status(inc, 0, 100, 30) is Status.OFF_TRACK
    assert forecast_status(inc, 0, 100, None) is None


# --- extreme stored values (before the input bounds) never overflow -------------

any_float = st.floats(allow_nan=False, allow_infinity=False)
any_day = st.dates()


@given(st.lists(st.tuples(st.integers(0, 80), any_float), min_size=2, max_size=6), any_day)
def test_forecast_is_finite_or_none(points: list[tuple[int, float]], end: date) -> None:
    """Issue 12, finding 15: a forecast is a number or nothing, never inf or nan."""
    start = date(2026, 10, 1)
    series = [(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=d), v) for d, v in points]
    projected = forecast(series, start, max(end, date(2026, 10, 2)))
    assert projected is None or math.isfinite(projected)


def test_forecast_of_the_widest_key_result() -> None:
    series = [
        (datetime(2026, 10, 2, tzinfo=UTC), -1.7e308),
        (datetime(2026, 10, 3, tzinfo=UTC), 0.0),
    ]
    assert forecast(series, date(2026, 10, 1), date(2026, 12, 31)) is None  # past the range
    series[1] = (series[1][0], -1.6e308)
    projected = forecast(series, date(2026, 10, 1), date(2026, 10, 4))
    assert projected == pytest.approx(-1.4e308)  # day 4 (the end is inclusive)


@given(any_day, any_day, st.datetimes(timezones=st.just(UTC)))
def test_expected_progress_of_any_stored_cycle(start: date, end: date, at: datetime) -> None:
    """Issue 12, finding 3: a cycle ending 9999-12-31 has no next day; no overflow."""
    assert 0.0 <= expected_progress(start, end, at) <= 1.0
    cycle_bounds(start, end)
