"""The roll-up's statements and their runner (DESIGN.md sections 3 and 4).

One UPDATE per level and kind recomputes the key results or objectives of that
level, never a statement per row; only values that changed are written, each
with a score_history row and a `score.changed` outbox event. Frozen items
(final score set, or cycle CLOSED) never change; a frozen child counts with its
final score. `roll_up` runs the levels bottom-up; service.py decides which.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.models.enums import Status, SubjectType
from okrgraph.domain.outbox.service import ROLLUP_RETRY, SCORE_CHANGED, emit, recalc_payload
from okrgraph.domain.scores import sql
from okrgraph.domain.scores.queries import CyclePace, cycle_pace

log = logging.getLogger(__name__)


@dataclass
class RecalcResult:
    # Every committed change to announce: those the consumed events' own services
    # wrote (a check-in's key result), then the roll-up's.
    changes: list[ScoreChange] = field(default_factory=list)
    nodes: int = 0  # key results and objectives recomputed
    events: int = 0  # outbox events consumed
    busy: bool = False  # another roll-up of the organisation held the lock: nothing done
    through: datetime | None = None  # the newest event consumed (its created_at)


PACE = """
pace AS (
    SELECT * FROM unnest(CAST(:cycle_ids AS uuid[]), CAST(:expected AS float8[]),
                         CAST(:closed AS boolean[])) AS p(cycle_id, expected, closed)
)"""

# The ids of one level (unique: the levels group them).
LEVEL_IDS = "SELECT x AS id FROM unnest(CAST(:ids AS uuid[])) x"

# A computed value differs from the row's (`calc` holds both).
CHANGED = f"abs(calc.value - calc.old_value) > {sql.SAME_SCORE!r} OR calc.status <> calc.old_status"

# Write the changed rows' history and events; return them, and (`stale`) the rows
# that needed a change but were changed by another transaction after this
# statement's snapshot. Every UPDATE below writes only over the row version its
# computation read (`xmin = calc.version`): waiting for a concurrent writer's row
# lock and then writing a value computed from the older snapshot (PostgreSQL
# re-checks the WHERE on the new version, but not the values) would put a value
# that was never true into the row and its history (issue 15). A stale row is
# recomputed from a fresh snapshot (`run_statement`).
_RECORD = """
hist AS (
    INSERT INTO score_history (org_id, id, subject_type, subject_id, value, status, recorded_at)
    SELECT CAST(:org AS uuid), gen_random_uuid(), '{kind}', id, value, status,
           -- after the subject's last record: the history's order is the order its
           -- values became true (a writer that waited for this row may have
           -- stamped its record with a time after this job's start)
           GREATEST(CAST(:now AS timestamptz),
                    (SELECT max(h.recorded_at) + interval '1 microsecond' FROM score_history h
                     WHERE h.org_id = CAST(:org AS uuid) AND h.subject_id = upd.id))
    FROM upd
),
ev AS (
    INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload, created_at)
    SELECT CAST(:org AS uuid), gen_random_uuid(), '{event}', '{kind}', id,
           jsonb_build_object('value', value, 'status', status,
                              'previous_value', old_value, 'previous_status', old_status),
           CAST(:now AS timestamptz)
    FROM upd
)
"""

# A statement's answer: the rows it changed, and the stale ones (see above).
ANSWER = f"""SELECT id, value, status, old_value, old_status, false AS stale FROM upd
UNION ALL
SELECT calc.id, calc.value, calc.status, calc.old_value, calc.old_status, true FROM calc
WHERE ({CHANGED}) AND calc.id NOT IN (SELECT id FROM upd)
"""


def record_changes(kind: str) -> str:
    """The tail that writes a statement's changed rows' history and events itself."""
    return _RECORD.format(kind=kind, event=SCORE_CHANGED) + ANSWER


def key_results_statement(targets: str, record: str = record_changes("KEY_RESULT")) -> str:
    """Recompute the key results `targets` selects (a query of `id`s); `record` is the
    tail that follows the `upd` CTE (the changed rows' history and events, its answer)."""
    return f"""
WITH {PACE},
t AS ({targets}),
child AS (
    SELECT a.parent_key_result_id AS id,
           {sql.weighted_mean("a.weight", "coalesce(c.final_score, c.progress)")} AS value
    FROM t
    JOIN alignments a ON a.org_id = CAST(:org AS uuid) AND a.parent_key_result_id = t.id
    JOIN objectives c ON c.org_id = a.org_id AND c.id = a.child_objective_id
    WHERE a.contributes AND c.state <> 'CANCELLED'
    GROUP BY a.parent_key_result_id
),
calc AS (
    SELECT k.id, s.value, {sql.pace_status("s.value", "p.expected", "k.stretch", "k.confidence")}
           AS status, k.score AS old_value, k.status AS old_status, k.xmin AS version
    FROM t
    JOIN key_results k ON k.org_id = CAST(:org AS uuid) AND k.id = t.id
    JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
    JOIN pace p ON p.cycle_id = o.cycle_id
    LEFT JOIN child ON child.id = k.id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN k.progress_driver = 'CHILDREN' THEN coalesce(child.value, 0)
                    ELSE {sql.key_result_score("k")} END AS value
    ) s
    WHERE k.final_score IS NULL AND NOT p.closed
),
upd AS (
    UPDATE key_results k SET score = calc.value, status = calc.status,
                             score_updated_at = CAST(:now AS timestamptz)
    FROM calc
    WHERE k.org_id = CAST(:org AS uuid) AND k.id = calc.id AND k.xmin = calc.version
      AND ({CHANGED})
    RETURNING k.id, calc.value, calc.status, calc.old_value, calc.old_status
),
{record}
"""


_KEY_RESULTS = key_results_statement(LEVEL_IDS)


def objectives_statement(
    record: str = record_changes("OBJECTIVE"), targets: str = LEVEL_IDS
) -> str:
    """Recompute the objectives of one level (`targets`, unique ids; by default :ids);
    `record` as for key results."""
    return f"""
WITH {PACE},
t AS ({targets}),  -- unique ids: levels group them
terms AS (
    SELECT k.objective_id AS oid, 'K' AS src, k.weight AS w,
           coalesce(k.final_score, k.score) AS v
    FROM t JOIN key_results k ON k.org_id = CAST(:org AS uuid) AND k.objective_id = t.id
    WHERE k.state <> 'CANCELLED'
    UNION ALL
    SELECT a.parent_objective_id, 'C', a.weight, coalesce(c.final_score, c.progress)
    FROM t
    JOIN alignments a ON a.org_id = CAST(:org AS uuid) AND a.parent_objective_id = t.id
    JOIN objectives c ON c.org_id = a.org_id AND c.id = a.child_objective_id
    WHERE a.contributes AND c.state <> 'CANCELLED'
),
agg AS (
    SELECT o.id, {sql.weighted_mean("terms.w", "terms.v")} AS value
    FROM t
    JOIN objectives o ON o.org_id = CAST(:org AS uuid) AND o.id = t.id
    LEFT JOIN terms ON terms.oid = o.id
         AND ((terms.src = 'K' AND o.progress_driver <> 'CHILDREN')
              OR (terms.src = 'C' AND o.progress_driver <> 'KEY_RESULTS'))
    GROUP BY o.id
),
calc AS (
    SELECT o.id, agg.value, {sql.pace_status("agg.value", "p.expected")} AS status,
           o.progress AS old_value, o.status AS old_status, o.xmin AS version
    FROM agg
    JOIN objectives o ON o.org_id = CAST(:org AS uuid) AND o.id = agg.id
    JOIN pace p ON p.cycle_id = o.cycle_id
    WHERE o.final_score IS NULL AND NOT p.closed
),
upd AS (
    UPDATE objectives o SET progress = calc.value, status = calc.status,
                            score_updated_at = CAST(:now AS timestamptz)
    FROM calc
    WHERE o.org_id = CAST(:org AS uuid) AND o.id = calc.id AND o.xmin = calc.version
      AND ({CHANGED})
    RETURNING o.id, calc.value, calc.status, calc.old_value, calc.old_status
),
{record}
"""


_OBJECTIVES = objectives_statement()


async def roll_up(
    session: AsyncSession,
    org_id: uuid.UUID,
    levels: list[tuple[list[uuid.UUID], list[uuid.UUID]]],
    now: datetime,
    pace: CyclePace | None,
) -> RecalcResult:
    """Recompute level by level (full_pass.py has the full recalculation's own runner)."""
    pace = pace or await cycle_pace(session, org_id, now)
    base = pace_params(org_id, now, pace)
    result = RecalcResult()
    for krs, objs in levels:
        for kind, ids, statement in (
            ("KEY_RESULT", krs, _KEY_RESULTS),
            ("OBJECTIVE", objs, _OBJECTIVES),
        ):
            if not ids:
                continue
            result.nodes += len(ids)
            await run_statement(session, result, kind, statement, {**base, "ids": ids})
    return result


def pace_params(org_id: uuid.UUID, now: datetime, pace: CyclePace) -> dict[str, Any]:
    """The parameters every roll-up statement takes."""
    return {
        "org": org_id,
        "now": now,
        "cycle_ids": pace.cycle_ids,
        "expected": pace.expected,
        "closed": pace.closed,
    }


STALE_RETRIES = 3
_STATUSES = {s.value: s for s in Status}


async def run_statement(
    session: AsyncSession, result: RecalcResult, kind: str, statement: str, params: dict[str, Any]
) -> None:
    """One level's statement; the rows another transaction changed after its snapshot
    (`stale`) are recomputed from a fresh one, a few times, then left to a new
    recalculation event (the next job) rather than overwritten with an old value."""
    subject = SubjectType(kind)
    for _ in range(STALE_RETRIES + 1):
        stale = []
        # Plain tuples and a dict for the statuses: a full pass reads ~133k rows here.
        rows = (await session.execute(text(statement), params)).all()
        for node_id, value, status, old_value, old_status, is_stale in rows:
            if is_stale:
                stale.append(node_id)
            else:
                result.changes.append(
                    ScoreChange(
                        subject, node_id, value, _STATUSES[status], old_value, _STATUSES[old_status]
                    )
                )
        if not stale:
            return
        statement = _KEY_RESULTS if kind == "KEY_RESULT" else _OBJECTIVES
        params = {**params, "ids": stale}
    log.warning(
        "roll-up: %d %s rows kept changing under it; left to the next job", len(stale), kind
    )
    await request_again(session, params["org"], kind, stale)


async def request_again(
    session: AsyncSession, org_id: uuid.UUID, kind: str, ids: list[uuid.UUID]
) -> None:
    """A recalculation event for rows this roll-up could not write (the relay or the
    next job picks it up)."""
    recalc = (
        recalc_payload(key_result_ids=ids)
        if kind == "KEY_RESULT"
        else recalc_payload(objective_ids=ids)
    )
    await emit(session, org_id=org_id, type=ROLLUP_RETRY, payload={"recalc": recalc})
    await session.flush()
