"""Scores, pace status, KPI health and forecasts (DESIGN.md section 3).

Pure functions over plain values: no I/O, no ORM. Callers load the numbers,
leave out cancelled objectives and key results, and store or
explain what comes back. Scores are never rounded here; rounding is for display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from okrgraph.domain.models.enums import (
    Direction,
    Health,
    KeyResultKind,
    ObjectiveDriver,
    Status,
)

# Where a term's value came from (section 3: "check-in, KPI, children, frozen").
SOURCE_CHECK_IN = "check-in"
SOURCE_KPI = "kpi"
SOURCE_CHILDREN = "children"
SOURCE_FROZEN = "frozen"

NOT_STARTED_BEFORE = 0.1  # fraction of the cycle elapsed
ON_TRACK_PACE = 0.9
AT_RISK_PACE = 0.6
STRETCH_SUCCESS = 0.7
LOW_CONFIDENCE = 3  # a latest confidence <= this makes a KR at least AT_RISK
_EPS = 1e-9  # float slack at pace boundaries: 0.63 / 0.7 must count as 0.9
MAX_WEIGHT = 1_000_000.0  # validation.MAX_WEIGHT: a term's weight counts at most this
MIN_WEIGHT = 1e-6  # validation.MIN_WEIGHT: a smaller positive weight counts as 0
TINY = 2.0**-52  # a score below this counts as 0 (no product or quotient underflows)


def _clamp01(x: float) -> float:
    return max(0.0, min(1.0, x))


def key_result_score(
    kind: KeyResultKind, start: float, target: float | None, current: float | None
) -> float:
    """Score in [0, 1] of one key result (section 3).

    No current value (no check-in yet), no target, or a non-finite current
    value score 0. `target == start` is refused at input; should it occur for
    INCREASE/DECREASE the score steps to 1 once current reaches the target.
    """
    if current is None or not math.isfinite(current):
        return 0.0
    if kind is KeyResultKind.MILESTONE:
        return 1.0 if current == 1 else 0.0
    if target is None or not math.isfinite(target):
        return 0.0  # (a non-finite target was stored before the input bounds)
    if kind is KeyResultKind.ABOVE:
        return 1.0 if current >= target else 0.0
    if kind is KeyResultKind.BELOW:
        return 1.0 if current <= target else 0.0
    if not math.isfinite(start):
        return 0.0  # stored before the input bounds: nothing to measure against
    if target == start:
        reached = current >= target if kind is KeyResultKind.INCREASE else current <= target
        return 1.0 if reached else 0.0
    return progress_between(start, target, current)


# Floats at or past 2**1023: the difference of two of them may overflow.
_HUGE = 2.0**1023


def progress_between(start: float, target: float, current: float) -> float:
    """clamp((current - start) / (target - start), 0, 1) for finite values, without overflow.

    The clamp comes first (a current beyond either end is 0 or 1), so only the
    span can overflow: then both differences are taken of halves, which cannot
    overflow and (scaling by 2 being exact) give the same ratio. A ratio below
    TINY counts as 0, so no division underflows either. Inputs are bounded far
    from all this (validation.MAX_ABS_NUMBER); rows stored before the bounds
    still score. `sql.key_result_score` runs the same steps in SQL.
    """
    rising = target > start
    if (current <= start) if rising else (current >= start):
        return 0.0
    if (current >= target) if rising else (current <= target):
        return 1.0
    if abs(start) >= _HUGE or abs(target) >= _HUGE:
        done, span = _half(current) - _half(start), _half(target) - _half(start)
    else:
        done, span = current - start, target - start
    if abs(done) < TINY and abs(span) >= 2:
        return 0.0  # the ratio is below TINY / 2 (and its float might underflow)
    return _clamp01(done / span)


def _half(x: float) -> float:
    """x / 2, with 0 for |x| < 1: no underflow (PostgreSQL raises on one)."""
    return 0.0 if abs(x) < 1 else x / 2


@dataclass(frozen=True, slots=True)
class Term:
    """One weighted contribution to a score; `ref` names the KR or objective."""

    weight: float
    value: float
    source: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """A number together with the terms and the rule that produced it."""

    value: float
    terms: tuple[Term, ...]
    rule: str


def weighted_mean(terms: Iterable[Term]) -> float:
    """Weighted mean of term values; nothing or zero total weight -> 0.

    Terms with weight <= 0 (or NaN) contribute nothing. The result is clamped to [0, 1].
    Weights count between MIN_WEIGHT and MAX_WEIGHT (the input bounds: one
    stored before them cannot overflow or underflow the sums; a smaller one
    counts as 0), a value below TINY or not finite as 0, one above 1 as 1.
    """
    positive = [
        (min(t.weight, MAX_WEIGHT), _term_value(t.value)) for t in terms if t.weight >= MIN_WEIGHT
    ]
    total = math.fsum(w for w, _ in positive)
    if total <= 0:
        return 0.0
    return _clamp01(math.fsum(w * v for w, v in positive) / total)


def _term_value(v: float) -> float:
    if TINY <= v <= 1:
        return v
    return 1.0 if v > 1 else 0.0  # NaN, negative or tiny: 0


def children_progress(child_terms: Iterable[Term]) -> Explanation:
    """Score of a KR whose progress_driver is CHILDREN: mean of aligned children."""
    terms = tuple(child_terms)
    return Explanation(weighted_mean(terms), terms, "weighted mean of aligned child objectives")


def objective_progress(
    driver: ObjectiveDriver, kr_terms: Iterable[Term], child_terms: Iterable[Term]
) -> Explanation:
    """Objective progress by its progress_driver (section 3).

    KEY_RESULTS uses only `kr_terms`, CHILDREN only `child_terms` (children
    aligned with `contributes`), BOTH pools them, each one weighted term.
    The caller has already left out cancelled items.
    """
    krs, children = tuple(kr_terms), tuple(child_terms)
    if driver is ObjectiveDriver.KEY_RESULTS:
        terms, rule = krs, "weighted mean of key result scores"
    elif driver is ObjectiveDriver.CHILDREN:
        terms, rule = children, "weighted mean of aligned child objectives"
    else:
        terms, rule = krs + children, "weighted mean of key results and aligned children"
    return Explanation(weighted_mean(terms), terms, rule)


def _instant(value: date | datetime, tz: tzinfo, *, end: bool = False) -> datetime:
    """A date is midnight (in `tz`) of that day, or of the next day when `end`.

    In UTC: Python subtracts two datetimes of one zone as wall times, so a day
    of a DST change would count 24 hours instead of 23 or 25.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=tz)
    elif end and value == date.max:  # stored before the date bounds: the day has no next
        aware = datetime.combine(value, time.max, tzinfo=tz)
    else:
        day = value + timedelta(days=1) if end else value
        aware = datetime.combine(day, time(), tzinfo=tz)
    try:
        return aware.astimezone(UTC)
    except OverflowError:  # the last representable day, in a zone behind UTC
        return aware


def cycle_bounds(
    start: date | datetime, end: date | datetime, tz: tzinfo = UTC
) -> tuple[datetime, datetime]:
    """Aware [start, end) instants of a cycle.

    Dates are whole days in `tz` (UTC by default) and the end date is
    inclusive: `2026-10-01..2026-12-31` runs from 2026-10-01T00:00 up to
    2027-01-01T00:00. Datetimes are used as given; naive ones are read in `tz`.
    """
    return _instant(start, tz), _instant(end, tz, end=True)


def expected_progress(
    start: date | datetime, end: date | datetime, at: datetime, tz: tzinfo = UTC
) -> float:
    """Fraction of the cycle elapsed at `at`, clamped to [0, 1] (see `cycle_bounds`)."""
    begin, finish = cycle_bounds(start, end, tz)
    now = _instant(at, tz)
    length = (finish - begin).total_seconds()
    if length <= 0:
        return 1.0 if now >= finish else 0.0
    return _clamp01((now - begin).total_seconds() / length)


def status_from_pace(
    progress: float, expected: float, *, stretch: bool = False, confidence: int | None = None
) -> Status:
    """Pace status (section 3).

    Before 10% of the cycle has elapsed the status is NOT_STARTED. Otherwise
    pace = progress / expected (stretch: progress / (0.7 * expected)); pace
    >= 0.9 ON_TRACK, >= 0.6 AT_RISK, else OFF_TRACK. A latest confidence <= 3
    makes it at least AT_RISK: ON_TRACK and also NOT_STARTED become AT_RISK
    (the owner's doubt is surfaced even early in the cycle); OFF_TRACK stays.
    """
    low_confidence = confidence is not None and confidence <= LOW_CONFIDENCE
    if expected < NOT_STARTED_BEFORE:
        return Status.AT_RISK if low_confidence else Status.NOT_STARTED
    pace = progress / ((STRETCH_SUCCESS if stretch else 1.0) * expected)
    if pace >= ON_TRACK_PACE - _EPS:
        status = Status.ON_TRACK
    elif pace >= AT_RISK_PACE - _EPS:
        status = Status.AT_RISK
    else:
        status = Status.OFF_TRACK
    if low_confidence and status is Status.ON_TRACK:
        return Status.AT_RISK
    return status


def kpi_health(
    direction: Direction, value: float | None, warning: float | None, critical: float | None
) -> Health:
    """KPI health from its latest value (section 3); missing thresholds are not checked."""
    if value is None:
        return Health.UNKNOWN

    def past(threshold: float | None) -> bool:
        if threshold is None:
            return False
        if direction is Direction.HIGHER_IS_BETTER:
            return value < threshold
        return value > threshold

    if past(critical):
        return Health.CRITICAL
    if past(warning):
        return Health.WARNING
    return Health.HEALTHY


def kpi_on_target(direction: Direction, value: float | None, target: float | None) -> bool | None:
    """Whether the KPI's target is met; None when value or target is missing."""
    if value is None or target is None:
        return None
    if direction is Direction.HIGHER_IS_BETTER:
        return value >= target
    return value <= target


def forecast(
    points: Sequence[tuple[datetime, float]],
    cycle_start: date | datetime,
    cycle_end: date | datetime,
    tz: tzinfo = UTC,
) -> float | None:
    """Projected value at the cycle's end (see `cycle_bounds`) by least squares.

    Fits value = a + b * t over the given check-ins (the caller passes those
    of the cycle so far). Returns None with fewer than two distinct times:
    a single check-in shows no trend, so no forecast is made from it.
    Values too large for the sums (only rows stored before the input bounds)
    are fitted scaled down by a power of two, which is exact; a projection past
    the float range, or any non-finite one, is no forecast (None), never inf.
    """
    if len(points) < 2 or not all(math.isfinite(v) for _, v in points):
        return None
    begin, finish = cycle_bounds(cycle_start, cycle_end, tz)
    days = [(_instant(at, tz) - begin).total_seconds() / 86400 for at, _ in points]
    largest = max(abs(v) for _, v in points)
    scale = 2.0 ** -math.frexp(largest)[1] if largest > _HUGE_FIT else 1.0
    values = [v * scale for _, v in points]
    mean_t = math.fsum(days) / len(days)
    mean_v = math.fsum(values) / len(values)
    sxx = math.fsum((t - mean_t) ** 2 for t in days)
    if sxx <= 0:
        return None
    sxy = math.fsum((t - mean_t) * (v - mean_v) for t, v in zip(days, values, strict=True))
    end_t = (finish - begin).total_seconds() / 86400
    try:
        projected = (mean_v + (sxy / sxx) * (end_t - mean_t)) / scale
    except OverflowError:
        return None
    return projected if math.isfinite(projected) else None


# Values above this are scaled down before a least-squares fit (see `forecast`).
_HUGE_FIT = 2.0**500


def forecast_status(
    kind: KeyResultKind,
    start: float,
    target: float | None,
    projected: float | None,
    *,
    stretch: bool = False,
) -> Status | None:
    """Status a forecast implies: its end-of-cycle score paced against 1.0."""
    if projected is None:
        return None
    score = key_result_score(kind, start, target, projected)
    return status_from_pace(score, 1.0, stretch=stretch)
