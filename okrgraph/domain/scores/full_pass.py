"""The full recalculation's roll-up (service.full_recalculation), every node at once.

The same computations as the incremental path (rollup.py), level by level, but
the levels' UPDATEs only keep their changed rows in a temporary table: one
statement at the end writes every history row and `score.changed` event from it.
Two reasons: 2 statements instead of 2 per level, and a plan that cannot go
quadratic. Per level, the history's "after the subject's last record" subquery
ran once per changed row; on an organisation whose history was empty when the
statement was planned, PostgreSQL read it by a sequential scan per row of a
table the same statement was filling (100k key results: 7.4 s of a 14 s pass).
At the end the changes are one table with its true size, joined once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.outbox.service import SCORE_CHANGED
from okrgraph.domain.scores.queries import CyclePace
from okrgraph.domain.scores.rollup import (
    ANSWER,
    LEVEL_IDS,
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
_LEAF_KEY_RESULTS = key_results_statement(f"SELECT id FROM {_LEAF_SET}", _keep("KEY_RESULT"))
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
