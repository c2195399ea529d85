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
The levels come from a climb over two temporary tables (the nodes with children
and their edges), a few hash joins, rather than a recursive CTE that probed the
indexes once per node and path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.outbox.service import SCORE_CHANGED
from okrgraph.domain.scores import sql
from okrgraph.domain.scores.queries import MAX_DEPTH, CyclePace
from okrgraph.domain.scores.rollup import (
    ANSWER,
    CHANGED,
    PACE,
    RecalcResult,
    key_results_statement,
    objectives_statement,
    pace_params,
    run_statement,
)

# The pass's temporary tables (a transaction may run two passes: IF NOT EXISTS,
# emptied first): the changed rows, until _RECORD writes their history and
# events; the nodes with children (objectives, CHILDREN-driven key results) with
# their level, and the edges between them, for the climb.
_TEMP_TABLES = (
    """CREATE TEMP TABLE IF NOT EXISTS pass_changes (
    kind text NOT NULL, id uuid NOT NULL, value float8 NOT NULL, status text NOT NULL,
    old_value float8 NOT NULL, old_status text NOT NULL
) ON COMMIT DROP""",
    """CREATE TEMP TABLE IF NOT EXISTS pass_nodes (
    kind text NOT NULL, id uuid NOT NULL, depth int NOT NULL
) ON COMMIT DROP""",
    """CREATE TEMP TABLE IF NOT EXISTS pass_edges (
    child_kind text NOT NULL, child_id uuid NOT NULL, kind text NOT NULL, id uuid NOT NULL
) ON COMMIT DROP""",
)
_EMPTY = "TRUNCATE pass_changes, pass_nodes, pass_edges"

# Every node with children starts at level 1 (above every other key result, level
# 0); each round lifts a node to one above its highest child, until none moves:
# the longest path up from a leaf, as queries.levels_above climbs from a change.
# Edges up, as queries._CLIMB: a key result to its objective, an objective to the
# objective or CHILDREN-driven key result a contributing alignment names.
_NODES = """
INSERT INTO pass_nodes (kind, id, depth)
SELECT 'K', id, 1 FROM key_results
WHERE org_id = CAST(:org AS uuid) AND progress_driver = 'CHILDREN'
UNION ALL
SELECT 'O', id, 1 FROM objectives WHERE org_id = CAST(:org AS uuid)
"""
_EDGES = """
INSERT INTO pass_edges (child_kind, child_id, kind, id)
SELECT 'K', n.id, 'O', k.objective_id FROM pass_nodes n
JOIN key_results k ON k.org_id = CAST(:org AS uuid) AND k.id = n.id
WHERE n.kind = 'K'
UNION ALL
SELECT 'O', a.child_objective_id, 'O', a.parent_objective_id FROM alignments a
WHERE a.org_id = CAST(:org AS uuid) AND a.contributes AND a.parent_objective_id IS NOT NULL
UNION ALL
SELECT 'O', a.child_objective_id, 'K', a.parent_key_result_id FROM alignments a
JOIN pass_nodes n ON n.kind = 'K' AND n.id = a.parent_key_result_id
WHERE a.org_id = CAST(:org AS uuid) AND a.contributes
"""
_CLIMB_ROUND = f"""
UPDATE pass_nodes p SET depth = up.depth
FROM (
    SELECT e.kind, e.id, max(n.depth) + 1 AS depth
    FROM pass_edges e JOIN pass_nodes n ON n.kind = e.child_kind AND n.id = e.child_id
    WHERE n.depth < {MAX_DEPTH}  -- a loop in the alignments: stop climbing
    GROUP BY e.kind, e.id
) up
WHERE p.kind = up.kind AND p.id = up.id AND p.depth < up.depth
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

# The log of the check-in driven key results not frozen (a closed cycle's are), read
# once for both: sql.CHECK_IN_LOG's `latest` and `last`, in a form that does not
# join the objectives (twice as fast at 100k key results; `vals` drops those of
# closed cycles).
_CHECK_IN_LOG = """
logs AS MATERIALIZED (
    SELECT c.key_result_id, c.id, c.value, c.confidence, c.effective_at, c.recorded_at
    FROM check_ins c
    WHERE c.org_id = CAST(:org AS uuid) AND c.key_result_id IN (
        SELECT k.id FROM key_results k
        WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver = 'CHECK_INS'
          AND k.final_score IS NULL)
),
latest AS (
    SELECT DISTINCT ON (c.key_result_id) c.key_result_id AS id, c.value, c.confidence
    FROM logs c
    WHERE NOT EXISTS (SELECT 1 FROM check_ins s
                      WHERE s.org_id = CAST(:org AS uuid) AND s.supersedes_id = c.id)
    ORDER BY c.key_result_id, c.effective_at DESC, c.recorded_at DESC, c.id DESC
),
last AS (SELECT key_result_id AS id, max(recorded_at) AS at FROM logs GROUP BY key_result_id)"""

# The leaves' statement also re-derives the check-in driven ones' current value,
# confidence and last check-in from the log (what service.py's refresh does for
# the incremental path), so that a row gets one new version, not two.
# `relogged`: only the log's values changed, no history row, no event; a stale
# row that needed only that is left alone, as the refresh leaves it (the check-in
# that changed it wrote them itself). A stale row whose score changed is
# recomputed by rollup's statement, from a snapshot that has that check-in.
_LEAF_KEY_RESULTS = f"""
WITH {PACE},
{_CHECK_IN_LOG},
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
    LEFT JOIN logged ON logged.id = k.id AND k.progress_driver = 'CHECK_INS'
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
# One level above the leaves, as the climb left it in pass_nodes.
_LEVEL = "SELECT id FROM pass_nodes WHERE kind = '{kind}' AND depth = CAST(:depth AS int)"
_KEY_RESULTS = key_results_statement(_LEVEL.format(kind="K"), _keep("KEY_RESULT"))
_OBJECTIVES = objectives_statement(_keep("OBJECTIVE"), _LEVEL.format(kind="O"))
_LEVEL_SIZES = (
    "SELECT depth, kind, count(*) AS n FROM pass_nodes GROUP BY depth, kind ORDER BY depth, kind"
)

# rollup._RECORD's rows for all the pass's changes: the same history row (after
# the subject's last record) and event per changed row. Time-ordered ids (sql.NEW_ID)
# and the history in subject order: each index takes its ~133k rows in key order,
# not at random leaves: 2.6-3.4 s -> 2.4-3.1 s at 100k, more as the logs grow (the
# history's insert alone into 133k rows: 2.2-2.4 s -> 1.0-1.3 s).
_RECORD = f"""
WITH last AS (
    SELECT h.subject_id AS id, max(h.recorded_at) AS at
    FROM pass_changes c
    JOIN score_history h ON h.org_id = CAST(:org AS uuid) AND h.subject_id = c.id
    GROUP BY h.subject_id
),
hist AS (
    INSERT INTO score_history (org_id, id, subject_type, subject_id, value, status, recorded_at)
    SELECT CAST(:org AS uuid), {sql.NEW_ID}, c.kind, c.id, c.value, c.status,
           GREATEST(CAST(:now AS timestamptz), last.at + interval '1 microsecond')
    FROM pass_changes c LEFT JOIN last ON last.id = c.id
    ORDER BY c.id
)
INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload, created_at)
SELECT CAST(:org AS uuid), {sql.NEW_ID}, '{SCORE_CHANGED}', kind, id,
       jsonb_build_object('value', value, 'status', status,
                          'previous_value', old_value, 'previous_status', old_status),
       CAST(:now AS timestamptz)
FROM pass_changes
"""


async def roll_up_all(
    session: AsyncSession, org_id: uuid.UUID, now: datetime, pace: CyclePace
) -> RecalcResult:
    """Every leaf key result, then the levels above them bottom-up, then the history
    and events of everything that changed."""
    base = pace_params(org_id, now, pace)
    for create in _TEMP_TABLES:
        await session.execute(text(create))
    await session.execute(text(_EMPTY))
    await _climb(session, base)
    result = RecalcResult()
    result.nodes += await session.scalar(text(f"SELECT count(*) FROM {_LEAF_SET}"), base) or 0
    await run_statement(session, result, "KEY_RESULT", _LEAF_KEY_RESULTS, base)
    for depth, kind, n in (await session.execute(text(_LEVEL_SIZES))).all():
        result.nodes += n
        statement, subject = (
            (_KEY_RESULTS, "KEY_RESULT") if kind == "K" else (_OBJECTIVES, "OBJECTIVE")
        )
        await run_statement(session, result, subject, statement, {**base, "depth": depth})
    if result.changes:
        await session.execute(text(_RECORD), base)
    await session.execute(text(_EMPTY))
    return result


async def _climb(session: AsyncSession, params: dict[str, Any]) -> None:
    """Every node with children into pass_nodes, with its level (1 up; level 0, the
    other key results, the leaves' statement selects by predicate)."""
    await session.execute(text(_NODES), params)
    await session.execute(text(_EDGES), params)
    await session.execute(text("ANALYZE pass_nodes, pass_edges"))
    for _ in range(MAX_DEPTH):
        moved = await session.execute(text(_CLIMB_ROUND))
        if not moved.rowcount:  # type: ignore[attr-defined]
            break
    # The levels' statements select from pass_nodes by depth: planned on the depths
    # before the climb (all 1), a level of 700 objectives estimated at 1 row was read
    # by a nested loop over every key result (193 s).
    await session.execute(text("ANALYZE pass_nodes"))
