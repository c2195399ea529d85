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

# A new row's id as a UUIDv7 (RFC 9562: 48 bits of Unix milliseconds, version 7, the
# rest gen_random_uuid's random bits and variant). Ids that grow with time land at
# the right edge of the primary key's B-tree instead of a random leaf each (the full
# pass writes ~133k history rows and events at 100k key results; full_pass._RECORD).
# PostgreSQL 18 has uuidv7(); 15 does not.
NEW_ID = (
    "CAST(lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || '7' || substr(CAST(gen_random_uuid() AS text), 16) AS uuid)"
)


def _f(x: float) -> str:
    return f"CAST({x!r} AS float8)"


def _half(x: str) -> str:
    """`scoring._half`: x / 2, 0 for |x| < 1 (PostgreSQL raises on an underflow)."""
    return f"(CASE WHEN abs({x}) < {_f(1.0)} THEN {_f(0.0)} ELSE {x} / {_f(2.0)} END)"


def _ratio(done: str, span: str) -> str:
    """The last steps of `scoring.progress_between`: a tiny ratio is 0, else clamped."""
    return f"""(CASE WHEN abs({done}) < {_f(scoring.TINY)} AND abs({span}) >= {_f(2.0)}
        THEN {_f(0.0)} ELSE greatest({_f(0.0)}, least({_f(1.0)}, {done} / {span})) END)"""


def key_result_score(k: str) -> str:
    """`scoring.key_result_score` over the columns of key_results alias `k`.

    In `scoring.progress_between`'s form: clamp first, halves for a span that
    could overflow, a tiny ratio as 0, so no finite row can raise an error.
    """
    cur, start, target = f"{k}.current_value", f"{k}.start_value", f"{k}.target_value"
    nonfinite = "('NaN', 'Infinity', '-Infinity')"
    rising = f"({target} > {start})"
    huge = _f(scoring._HUGE)
    return f"""(CASE
        WHEN {cur} IS NULL OR {cur} IN {nonfinite} THEN {_f(0.0)}
        WHEN {k}.kind = 'MILESTONE' THEN CASE WHEN {cur} = 1 THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {target} IS NULL OR {target} IN {nonfinite} THEN {_f(0.0)}
        WHEN {k}.kind = 'ABOVE' THEN CASE WHEN {cur} >= {target} THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {k}.kind = 'BELOW' THEN CASE WHEN {cur} <= {target} THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN {start} IN {nonfinite} THEN {_f(0.0)}
        WHEN {target} = {start} THEN
            CASE WHEN ({k}.kind = 'INCREASE' AND {cur} >= {target})
                   OR ({k}.kind <> 'INCREASE' AND {cur} <= {target})
                 THEN {_f(1.0)} ELSE {_f(0.0)} END
        WHEN ({rising} AND {cur} <= {start}) OR (NOT {rising} AND {cur} >= {start})
            THEN {_f(0.0)}
        WHEN ({rising} AND {cur} >= {target}) OR (NOT {rising} AND {cur} <= {target})
            THEN {_f(1.0)}
        WHEN abs({start}) >= {huge} OR abs({target}) >= {huge} THEN
            {_ratio(f"({_half(cur)} - {_half(start)})", f"({_half(target)} - {_half(start)})")}
        ELSE {_ratio(f"({cur} - {start})", f"({target} - {start})")}
    END)"""


def term_weight(weight: str) -> str:
    """A term's weight as `scoring.weighted_mean` counts it: capped, tiny or NaN as 0."""
    return f"""(CASE WHEN {weight} >= {_f(scoring.MIN_WEIGHT)} AND {weight} <> 'NaN'
        THEN least({weight}, {_f(scoring.MAX_WEIGHT)}) ELSE {_f(0.0)} END)"""


def term_value(value: str) -> str:
    """`scoring._term_value`: a value in [TINY, 1] as it is, above 1 as 1, else 0."""
    return f"""(CASE WHEN {value} = 'NaN' THEN {_f(0.0)}
        WHEN {value} >= {_f(scoring.TINY)} AND {value} <= {_f(1.0)} THEN {value}
        WHEN {value} > {_f(1.0)} THEN {_f(1.0)} ELSE {_f(0.0)} END)"""


def weighted_mean(weight: str, value: str, where: str = "true") -> str:
    """Aggregate form of `scoring.weighted_mean`: terms with weight <= 0 count for nothing.

    Weights and values are first bounded as `term_weight` and `term_value` say,
    so neither the sums nor the products can overflow or underflow.
    """
    w, v = term_weight(weight), term_value(value)
    keep = f"({where}) AND {w} > 0"
    total = f"sum({w}) FILTER (WHERE {keep})"
    return f"""(CASE WHEN coalesce({total}, 0) > 0 THEN greatest({_f(0.0)}, least({_f(1.0)},
        sum({w} * {v}) FILTER (WHERE {keep}) / {total})) ELSE {_f(0.0)} END)"""


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


# Of each key result the CTE `t` selects (its `id`s): the value and confidence of
# the latest check-in no other supersedes (`latest`), and when the last was
# recorded (`last`). service.py's refresh and the full pass's leaves both read them.
CHECK_IN_LOG = """latest AS (
    SELECT DISTINCT ON (c.key_result_id) c.key_result_id AS id, c.value, c.confidence
    FROM t JOIN check_ins c ON c.org_id = CAST(:org AS uuid) AND c.key_result_id = t.id
    WHERE NOT EXISTS (SELECT 1 FROM check_ins s
                      WHERE s.org_id = c.org_id AND s.supersedes_id = c.id)
    ORDER BY c.key_result_id, c.effective_at DESC, c.recorded_at DESC, c.id DESC
),
last AS (
    SELECT c.key_result_id AS id, max(c.recorded_at) AS at
    FROM t JOIN check_ins c ON c.org_id = CAST(:org AS uuid) AND c.key_result_id = t.id
    GROUP BY c.key_result_id
)"""
