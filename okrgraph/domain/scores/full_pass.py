"""The full recalculation's roll-up (service.full_recalculation), every node at once.

The same computations as the incremental path (rollup.py), level by level, but
the levels' UPDATEs only keep their changed rows in a temporary table: one
statement at the end writes every history row and `score.changed` event from it.
Two reasons: 2 statements instead of 2 per level, and a plan that cannot go
quadratic. Per level, the history's "after the subject's last record" subquery
ran once per changed row; on an organisation whose history was empty when the
statement was planned, PostgreSQL read it by a sequential scan per row of a
table the same statement was filling (100k key results: 7.4 s of a 14 s pass).
At the end the changes are one table with its true size, joined once. The
leaves' statement refreshes the check-in driven key results from their log too,
instead of a statement of its own before the pass that wrote each row once more.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.outbox.service import SCORE_CHANGED
from okrgraph.domain.scores import sql
from okrgraph.domain.scores.queries import CyclePace
from okrgraph.domain.scores.rollup import (
    ANSWER,
    CHANGED,
    LEVEL_IDS,
    PACE,
    RecalcResult,
    key_results_statement,
    objectives_statement,
    pace_params,
    run_statement,
)

# The pass's changed rows, until _RECORD writes their history and events.
_CREATE_CHANGES = """
CREATE TEMP TABLE IF NOT EXISTS pass_changes (
    kind text NOT NULL, id uuid NOT NULL, value float8 NOT NULL, status text NOT NULL,
    old_value float8 NOT NULL, old_status text NOT NULL
) ON COMMIT DROP
"""


def _keep(kind: str) -> str:
    return f"""
kept AS (
    INSERT INTO pass_changes (kind, id, value, status, old_value, old_status)
    SELECT '{kind}', id, value, status, old_value, old_status FROM upd
)
{ANSWER}"""


# Level 0, by predicate rather than 100k ids sent back and forth: every key
# result with no children to wait for.
_LEAF_SET = "key_results WHERE org_id = CAST(:org AS uuid) AND progress_driver <> 'CHILDREN'"

# The leaves' statement also re-derives the check-in driven ones' current value,
# confidence and last check-in from the log (what service.py's refresh does for
# the incremental path), so that a row gets one new version, not two.
# `relogged`: only the log's values changed, no history row, no event; a stale
# row that needed only that is left alone, as the refresh leaves it (the check-in
# that changed it wrote them itself). A stale row whose score changed is
# recomputed by rollup's statement, from a snapshot that has that check-in.
_LEAF_KEY_RESULTS = f"""
WITH {PACE},
t AS (
    SELECT k.id FROM key_results k
    JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
    JOIN pace p ON p.cycle_id = o.cycle_id
    WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver = 'CHECK_INS'
      AND k.final_score IS NULL AND NOT p.closed
),
{sql.CHECK_IN_LOG},
logged AS (SELECT latest.id, latest.value, latest.confidence, last.at
           FROM latest JOIN last ON last.id = latest.id),
vals AS (
    SELECT k.id, s.value, {sql.pace_status("s.value", "p.expected", "k.stretch", "v.confidence")}
           AS status, k.score AS old_value, k.status AS old_status, k.xmin AS version,
           v.current_value, v.confidence, v.last_check_in_at,
           (k.current_value IS DISTINCT FROM v.current_value
            OR k.confidence IS DISTINCT FROM v.confidence
            OR k.last_check_in_at IS DISTINCT FROM v.last_check_in_at) AS relogged
    FROM key_results k
    JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
    JOIN pace p ON p.cycle_id = o.cycle_id
    LEFT JOIN logged ON logged.id = k.id
    CROSS JOIN LATERAL (
        SELECT k.kind, k.start_value, k.target_value,
               CASE WHEN logged.id IS NULL THEN k.current_value ELSE logged.value END
                   AS current_value,
               CASE WHEN logged.id IS NULL THEN k.confidence ELSE logged.confidence END
                   AS confidence,
               CASE WHEN logged.id IS NULL THEN k.last_check_in_at ELSE logged.at END
                   AS last_check_in_at
    ) v
    CROSS JOIN LATERAL (SELECT {sql.key_result_score("v")} AS value) s
    WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver <> 'CHILDREN'
      AND k.final_score IS NULL AND NOT p.closed
),
calc AS (SELECT calc.*, ({CHANGED}) AS rescored FROM vals calc),
upd_all AS (
    UPDATE key_results k
    SET current_value = calc.current_value, confidence = calc.confidence,
        last_check_in_at = calc.last_check_in_at,
        score = CASE WHEN calc.rescored THEN calc.value ELSE k.score END,
        status = CASE WHEN calc.rescored THEN calc.status ELSE k.status END,
        score_updated_at = CASE WHEN calc.rescored THEN CAST(:now AS timestamptz)
                                ELSE k.score_updated_at END
    FROM calc
    WHERE k.org_id = CAST(:org AS uuid) AND k.id = calc.id AND k.xmin = calc.version
      AND (calc.rescored OR calc.relogged)
    RETURNING k.id, calc.value, calc.status, calc.old_value, calc.old_status, calc.rescored
),
upd AS (SELECT id, value, status, old_value, old_status FROM upd_all WHERE rescored),
{_keep("KEY_RESULT")}"""
_KEY_RESULTS = key_results_statement(LEVEL_IDS, _keep("KEY_RESULT"))
_OBJECTIVES = objectives_statement(_keep("OBJECTIVE"))

# rollup._RECORD's rows for all the pass's changes: the same history row (after
# the subject's last record) and event per changed row.
_RECORD = f"""
WITH last AS (
    SELECT h.subject_id AS id, max(h.recorded_at) AS at
    FROM pass_changes c
    JOIN score_history h ON h.org_id = CAST(:org AS uuid) AND h.subject_id = c.id
    GROUP BY h.subject_id
),
hist AS (
    INSERT INTO score_history (org_id, id, subject_type, subject_id, value, status, recorded_at)
    SELECT CAST(:org AS uuid), gen_random_uuid(), c.kind, c.id, c.value, c.status,
           GREATEST(CAST(:now AS timestamptz), last.at + interval '1 microsecond')
    FROM pass_changes c LEFT JOIN last ON last.id = c.id
)
INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload, created_at)
SELECT CAST(:org AS uuid), gen_random_uuid(), '{SCORE_CHANGED}', kind, id,
       jsonb_build_object('value', value, 'status', status,
                          'previous_value', old_value, 'previous_status', old_status),
       CAST(:now AS timestamptz)
FROM pass_changes
"""


async def roll_up_all(
    session: AsyncSession,
    org_id: uuid.UUID,
    levels: list[tuple[list[uuid.UUID], list[uuid.UUID]]],
    now: datetime,
    pace: CyclePace,
) -> RecalcResult:
    """Every leaf key result, then `levels` bottom-up (queries.all_levels), then the
    history and events of everything that changed."""
    base = pace_params(org_id, now, pace)
    await session.execute(text(_CREATE_CHANGES))
    await session.execute(text("TRUNCATE pass_changes"))
    result = RecalcResult()
    result.nodes += await session.scalar(text(f"SELECT count(*) FROM {_LEAF_SET}"), base) or 0
    await run_statement(session, result, "KEY_RESULT", _LEAF_KEY_RESULTS, base)
    for krs, objs in levels:
        for kind, ids, statement in (
            ("KEY_RESULT", krs, _KEY_RESULTS),
            ("OBJECTIVE", objs, _OBJECTIVES),
        ):
            if ids:
                result.nodes += len(ids)
                await run_statement(session, result, kind, statement, {**base, "ids": ids})
    if result.changes:
        await session.execute(text(_RECORD), base)
    await session.execute(text("TRUNCATE pass_changes"))
    return result
