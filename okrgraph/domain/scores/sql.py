"""The rules of `okrgraph.domain.scoring` as SQL expressions, for set-based roll-ups.

The roll-up runs in the database (one statement per level, never a Python loop
per row), so the formulas of section 3 exist twice: in Python (`scoring`) and
here. The constants come from `scoring`, and tests compare both on random
inputs (tests/domain/test_scores_sql.py), so the two cannot drift apart.
Every expression works in float8 with the same operations in the same order
as the Python code, so both give the same IEEE result.
"""

from __future__ import annotations

from okrgraph.domain import scoring

# Two scores closer than this are the same number (no history row, no event).
SAME_SCORE = 1e-12


def _f(x: float) -> str:
    return f"CAST({x!r} AS float8)"


def key_result_score(k: str) -> str:
    """`scoring.key_result_score` over the columns of key_results alias `k`."""
    cur, start, target = f"{k}.current_value", f"{k}.start_value", f"{k}.target_value"
    return f"""(CASE
        WHEN {cur} IS NULL OR {cur} IN ('NaN', 'Infinity', '-Infinity') THEN {_f(0.0)}
        WHEN {k}.kind = 'MILESTONE' THEN CASE WHEN {cur} = 1 THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {target} IS NULL THEN {_f(0.0)}
        WHEN {k}.kind = 'ABOVE' THEN CASE WHEN {cur} >= {target} THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {k}.kind = 'BELOW' THEN CASE WHEN {cur} <= {target} THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {target} = {start} THEN
            CASE WHEN ({k}.kind = 'INCREASE' AND {cur} >= {target})
                   OR ({k}.kind <> 'INCREASE' AND {cur} <= {target})
                 THEN {_f(1.0)} ELSE {_f(0.0)} END
        ELSE greatest({_f(0.0)}, least({_f(1.0)}, ({cur} - {start}) / ({target} - {start})))
    END)"""


def weighted_mean(weight: str, value: str, where: str = "true") -> str:
    """Aggregate form of `scoring.weighted_mean`: terms with weight <= 0 count for nothing."""
    keep = f"({where}) AND {weight} > 0"
    total = f"sum({weight}) FILTER (WHERE {keep})"
    return f"""(CASE WHEN coalesce({total}, 0) > 0 THEN greatest({_f(0.0)}, least({_f(1.0)},
        sum({weight} * {value}) FILTER (WHERE {keep}) / {total})) ELSE {_f(0.0)} END)"""


def pace_status(
    progress: str, expected: str, stretch: str = "false", confidence: str = "NULL"
) -> str:
    """`scoring.status_from_pace` as a CASE expression yielding the status name."""
    low = f"({confidence} IS NOT NULL AND {confidence} <= {scoring.LOW_CONFIDENCE})"
    scale = f"(CASE WHEN {stretch} THEN {_f(scoring.STRETCH_SUCCESS)} ELSE {_f(1.0)} END)"
    pace = f"({progress} / ({scale} * {expected}))"
    on_track = _f(scoring.ON_TRACK_PACE - scoring._EPS)
    at_risk = _f(scoring.AT_RISK_PACE - scoring._EPS)
    return f"""(CASE
        WHEN {expected} < {_f(scoring.NOT_STARTED_BEFORE)} THEN
            CASE WHEN {low} THEN 'AT_RISK' ELSE 'NOT_STARTED' END
        WHEN {pace} >= {on_track} THEN CASE WHEN {low} THEN 'AT_RISK' ELSE 'ON_TRACK' END
        WHEN {pace} >= {at_risk} THEN 'AT_RISK'
        ELSE 'OFF_TRACK'
    END)"""
