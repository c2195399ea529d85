"""The score roll-up (DESIGN.md sections 3 and 4), set-based, bottom-up.

`recalculate` takes what changed (key results and/or objectives), finds every
ancestor through key results -> objectives -> contributing alignments (one
recursive CTE), and recomputes level by level with one UPDATE per level and
kind, never a statement per row. Only values that changed are written, each
with a score_history row and a `score.changed` outbox event. Frozen items
(final score set, or cycle CLOSED) never change; a frozen child counts with
its final score. `full_recalculation` runs the same statements over every
node of the organisation, after re-deriving current values from the logs.
Callers run inside one tenant-scoped transaction; nothing here commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.kpis.service import refresh_kpis, sync_kpi_key_results
from okrgraph.domain.outbox.service import (
    SCORE_CHANGED,
    Claimed,
    claim_recalc_events,
    consume_all_pending,
    emit,
    mark_failed,
    mark_processed,
    recalc_payload,
)
from okrgraph.domain.scores import sql
from okrgraph.domain.scores.changes import ScoreChange as ScoreChange
from okrgraph.domain.scores.queries import (
    CyclePace,
    all_levels,
    cycle_pace,
    levels_above,
    nodes_of_cycles,
)

log = logging.getLogger(__name__)

EVENT_BATCH = 5_000
FULL_PASS_TIMEOUT_S = 280  # under the worker's job_timeout (300 s)


@dataclass
class RecalcResult:
    # Every committed change to announce: those the consumed events' own services
    # wrote (a check-in's key result), then the roll-up's.
    changes: list[ScoreChange] = field(default_factory=list)
    nodes: int = 0  # key results and objectives recomputed
    events: int = 0  # outbox events consumed
    busy: bool = False  # another roll-up of the organisation held the lock: nothing done
    through: datetime | None = None  # the newest event consumed (its created_at)


_PACE = """
pace AS (
    SELECT * FROM unnest(CAST(:cycle_ids AS uuid[]), CAST(:expected AS float8[]),
                         CAST(:closed AS boolean[])) AS p(cycle_id, expected, closed)
)"""

# A computed value differs from the row's (`calc` holds both).
_CHANGED = (
    f"abs(calc.value - calc.old_value) > {sql.SAME_SCORE!r} OR calc.status <> calc.old_status"
)

# Write the changed rows' history and events; return them, and (`stale`) the rows
# that needed a change but were changed by another transaction after this
# statement's snapshot. Every UPDATE below writes only over the row version its
# computation read (`xmin = calc.version`): waiting for a concurrent writer's row
# lock and then writing a value computed from the older snapshot (PostgreSQL
# re-checks the WHERE on the new version, but not the values) would put a value
# that was never true into the row and its history (issue 15). A stale row is
# recomputed from a fresh snapshot (`_run`).
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
SELECT id, value, status, old_value, old_status, false AS stale FROM upd
UNION ALL
SELECT calc.id, calc.value, calc.status, calc.old_value, calc.old_status, true FROM calc
WHERE ({changed}) AND calc.id NOT IN (SELECT id FROM upd)
"""


def _key_results_statement(targets: str) -> str:
    """Recompute the key results `targets` selects (a query of `id`s)."""
    return f"""
WITH {_PACE},
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
      AND ({_CHANGED})
    RETURNING k.id, calc.value, calc.status, calc.old_value, calc.old_status
),
{_RECORD.format(kind="KEY_RESULT", event=SCORE_CHANGED, changed=_CHANGED)}
"""


# The ids of one level (unique: the levels group them).
_KEY_RESULTS = _key_results_statement("SELECT x AS id FROM unnest(CAST(:ids AS uuid[])) x")
# Level 0 of a full pass, by predicate rather than 100k ids sent back and forth:
# every key result with no children to wait for.
_LEAF_SET = "key_results WHERE org_id = CAST(:org AS uuid) AND progress_driver <> 'CHILDREN'"
_LEAF_KEY_RESULTS = _key_results_statement(f"SELECT id FROM {_LEAF_SET}")

_OBJECTIVES = f"""
WITH {_PACE},
t AS (SELECT x AS id FROM unnest(CAST(:ids AS uuid[])) x),  -- unique ids: levels group them
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
      AND ({_CHANGED})
    RETURNING o.id, calc.value, calc.status, calc.old_value, calc.old_status
),
{_RECORD.format(kind="OBJECTIVE", event=SCORE_CHANGED, changed=_CHANGED)}
"""

# Current value, confidence and last check-in of check-in driven KRs, from the log.
_REFRESH_FROM_CHECK_INS = """
WITH t AS (
    SELECT k.id, k.xmin AS version FROM key_results k
    JOIN objectives o ON o.org_id = k.org_id AND o.id = k.objective_id
    WHERE k.org_id = CAST(:org AS uuid) AND k.progress_driver = 'CHECK_INS'
      AND k.final_score IS NULL AND o.cycle_id <> ALL(CAST(:closed AS uuid[]))
      AND (CAST(:all AS boolean) OR k.id = ANY(CAST(:ids AS uuid[])))
),
latest AS (
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
)
UPDATE key_results k
SET current_value = latest.value, confidence = latest.confidence, last_check_in_at = last.at
FROM latest JOIN last ON last.id = latest.id JOIN t ON t.id = latest.id
WHERE k.org_id = CAST(:org AS uuid) AND k.id = latest.id
  AND k.xmin = t.version  -- else a check-in committed meanwhile and wrote them itself
  AND (k.current_value IS DISTINCT FROM latest.value
       OR k.confidence IS DISTINCT FROM latest.confidence
       OR k.last_check_in_at IS DISTINCT FROM last.at)
"""


async def recalculate(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    key_result_ids: Collection[uuid.UUID] = (),
    objective_ids: Collection[uuid.UUID] = (),
    now: datetime | None = None,
    pace: CyclePace | None = None,
) -> RecalcResult:
    """Recompute the given nodes and every ancestor, bottom-up."""
    now = now or clock.now()
    if not key_result_ids and not objective_ids:
        return RecalcResult()
    # A few ids, again and again: PostgreSQL's custom plan for these statements
    # costs 3-4 ms each to make, its cached generic plan nothing (a leaf's four
    # levels on 133k nodes: 17-20 ms -> 6 ms in a fresh connection). The full pass,
    # with 100k ids, keeps custom plans sized to its lists.
    await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    levels = await levels_above(session, org_id, key_result_ids, objective_ids)
    result = await _roll_up(session, org_id, levels.levels, now, pace)
    await session.execute(text("SET LOCAL plan_cache_mode = auto"))
    return result


async def full_recalculation(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None
) -> RecalcResult:
    """Everything of the organisation, from the check-in and measurement logs up."""
    now = now or clock.now()
    await lock_scores(session, org_id)
    # A big organisation's pass writes 100k+ rows per statement: more than the
    # app's per-statement timeout allows; the job's own timeout still bounds it.
    # Restored afterwards: a close runs this pass inside a request's transaction.
    prior = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
    prior_mem = (await session.execute(text("SHOW work_mem"))).scalar_one()
    await session.execute(text(f"SET LOCAL statement_timeout = '{FULL_PASS_TIMEOUT_S}s'"))
    await session.execute(text("SET LOCAL work_mem = '64MB'"))  # sorts of whole logs
    # Before the pass, so that it covers them: an incremental job must not find
    # them pending after a full pass published the numbers that include them.
    consumed = await consume_all_pending(session, org_id, now)
    pace = await cycle_pace(session, org_id, now)
    await refresh_key_result_values(session, org_id, None, pace)
    await refresh_kpis(session, org_id, None)
    await sync_kpi_key_results(session, org_id, None, pace.closed_ids)
    levels = await all_levels(session, org_id)
    result = await _roll_up(session, org_id, levels.levels, now, pace, all_leaf_key_results=True)
    result.changes[:0] = _written(consumed.written)
    result.events, result.through = len(consumed.event_ids), consumed.through
    await session.execute(
        text("SELECT set_config('statement_timeout', :t, true), set_config('work_mem', :m, true)"),
        {"t": prior, "m": prior_mem},
    )
    return result


def _written(records: list[object]) -> list[ScoreChange]:
    """The changes consumed events wrote themselves (requests.py), to announce."""
    return [c for c in map(ScoreChange.from_record, records) if c is not None]


async def sync_kpis(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None
) -> RecalcResult:
    """All KPIs' latest values and health, into the KRs that follow them, rolled up."""
    now = now or clock.now()
    await lock_scores(session, org_id)
    pace = await cycle_pace(session, org_id, now)
    await refresh_kpis(session, org_id, None)
    changed = await sync_kpi_key_results(session, org_id, None, pace.closed_ids)
    return await recalculate(session, org_id, key_result_ids=changed, now=now, pace=pace)


async def lock_scores(session: AsyncSession, org_id: uuid.UUID, *, wait: bool = True) -> bool:
    """Serialise the organisation's roll-ups until the transaction ends.

    Two roll-ups of one organisation at once could each compute a parent from
    a snapshot the other is changing; with this lock the second one starts
    its statements after the first committed, and reads its results. With
    `wait=False`, returns False instead of waiting when the lock is taken.
    """
    # (JIT is off for every app connection, domain/db.py: it cost ~0.8 s a roll-up.)
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = await session.scalar(
        text(f"SELECT {fn}(hashtextextended('okr.scores:' || :org, 0))::text"),
        {"org": str(org_id)},
    )
    return wait or got == "true"


async def refresh_key_result_values(
    session: AsyncSession,
    org_id: uuid.UUID,
    key_result_ids: Collection[uuid.UUID] | None,
    pace: CyclePace,
) -> None:
    """Re-derive current value and confidence of check-in driven KRs from their log."""
    await session.execute(
        text(_REFRESH_FROM_CHECK_INS),
        {
            "org": org_id,
            "all": key_result_ids is None,
            "ids": list(key_result_ids or []),
            "closed": pace.closed_ids,
        },
    )


async def process_pending_events(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime | None = None, wait: bool = True
) -> RecalcResult:
    """Claim the org's pending recalculation events, roll up what they name, mark them.

    Takes the organisation's roll-up lock first (`lock_scores`): two jobs of
    one organisation take turns. With `wait=False` it returns at once with
    `busy` set when another transaction holds the lock. Idempotent: a second
    run finds nothing to do.
    """
    now = now or clock.now()
    if not await lock_scores(session, org_id, wait=wait):
        return RecalcResult(busy=True)
    claimed = await claim_recalc_events(session, org_id, EVENT_BATCH)
    if not claimed.event_ids:
        return RecalcResult()
    pace = await cycle_pace(session, org_id, now)
    result = await _isolating(session, org_id, claimed.events, now, pace)
    result.events = len(claimed.event_ids)
    result.through = claimed.through
    return result


async def _isolating(
    session: AsyncSession,
    org_id: uuid.UUID,
    events: list[Claimed],
    now: datetime,
    pace: CyclePace,
) -> RecalcResult:
    """`_process` the events together in a savepoint; should a row make that fail,
    the two halves apart, down to the single events that fail, which are set aside
    (DESIGN.md section 4: one row that cannot be computed never stops the rest)."""
    batch = Claimed()
    for one in events:
        batch.add(one)
    try:
        async with session.begin_nested():
            return await _process(session, org_id, batch, now, pace)
    except DBAPIError as exc:
        if not _is_data_error(exc):
            raise
        if len(events) == 1:
            await _set_aside(session, org_id, events[0], now, exc)
            # What its service wrote was committed with it: still announced.
            return RecalcResult(changes=_written(events[0].written))
    middle = len(events) // 2
    result = await _isolating(session, org_id, events[:middle], now, pace)
    rest = await _isolating(session, org_id, events[middle:], now, pace)
    result.changes.extend(rest.changes)
    result.nodes += rest.nodes
    return result


async def _process(
    session: AsyncSession, org_id: uuid.UUID, claimed: Claimed, now: datetime, pace: CyclePace
) -> RecalcResult:
    """Refresh what the events name, roll it up, mark the events processed.

    Named key results re-derive their current value from their source as the full
    pass does (check-ins, or the linked KPI: a driver may just have changed); a
    named cycle names all its nodes.
    """
    krs, objectives = set(claimed.key_result_ids), set(claimed.objective_ids)
    if claimed.cycle_ids:
        in_cycles = await nodes_of_cycles(session, org_id, claimed.cycle_ids)
        krs |= in_cycles.key_result_ids
        objectives |= in_cycles.objective_ids
    if krs:
        await refresh_key_result_values(session, org_id, krs, pace)
        await sync_kpi_key_results(session, org_id, None, pace.closed_ids, key_result_ids=krs)
    if claimed.kpi_ids:
        await refresh_kpis(session, org_id, claimed.kpi_ids)
        krs.update(await sync_kpi_key_results(session, org_id, claimed.kpi_ids, pace.closed_ids))
    result = await recalculate(
        session, org_id, key_result_ids=krs, objective_ids=objectives, now=now, pace=pace
    )
    result.changes[:0] = _written(claimed.written)
    await mark_processed(session, org_id, claimed.event_ids, now)
    return result


def _is_data_error(exc: DBAPIError) -> bool:
    """An error of the rows (a value out of range, a broken rule), not of the connection:
    retrying the events one by one can tell which subject causes it."""
    return not exc.connection_invalidated and not isinstance(exc, OperationalError | InterfaceError)


async def _set_aside(
    session: AsyncSession, org_id: uuid.UUID, claimed: Claimed, now: datetime, exc: DBAPIError
) -> None:
    """Mark a failing event processed with its failure; one concise log line, no SQL."""
    subjects = sorted(
        [f"key result {i}" for i in claimed.key_result_ids]
        + [f"objective {i}" for i in claimed.objective_ids]
        + [f"KPI {i}" for i in claimed.kpi_ids]
    )
    cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    failure = f"{', '.join(subjects) or 'nothing'}: {cause}"
    for event_id in claimed.event_ids:
        await mark_failed(session, org_id, event_id, now, failure)
    log.error("roll-up of org %s set aside event %s (%s)", org_id, claimed.event_ids[0], failure)


async def _roll_up(
    session: AsyncSession,
    org_id: uuid.UUID,
    levels: list[tuple[list[uuid.UUID], list[uuid.UUID]]],
    now: datetime,
    pace: CyclePace | None,
    *,
    all_leaf_key_results: bool = False,
) -> RecalcResult:
    """Recompute level by level; first every leaf key result when asked (a full pass)."""
    pace = pace or await cycle_pace(session, org_id, now)
    base = {
        "org": org_id,
        "now": now,
        "cycle_ids": pace.cycle_ids,
        "expected": pace.expected,
        "closed": pace.closed,
    }
    result = RecalcResult()
    if all_leaf_key_results:
        result.nodes += await session.scalar(text(f"SELECT count(*) FROM {_LEAF_SET}"), base) or 0
        await _run(session, result, "KEY_RESULT", _LEAF_KEY_RESULTS, base)
    for krs, objs in levels:
        for kind, ids, statement in (
            ("KEY_RESULT", krs, _KEY_RESULTS),
            ("OBJECTIVE", objs, _OBJECTIVES),
        ):
            if not ids:
                continue
            result.nodes += len(ids)
            await _run(session, result, kind, statement, {**base, "ids": ids})
    return result


STALE_RETRIES = 3


async def _run(
    session: AsyncSession, result: RecalcResult, kind: str, statement: str, params: dict[str, Any]
) -> None:
    """One level's statement; the rows another transaction changed after its snapshot
    (`stale`) are recomputed from a fresh one, a few times, then left to a new
    recalculation event (the next job) rather than overwritten with an old value."""
    for _ in range(STALE_RETRIES + 1):
        stale = []
        for r in await session.execute(text(statement), params):
            if r.stale:
                stale.append(r.id)
            else:
                result.changes.append(
                    ScoreChange(kind, r.id, r.value, r.status, r.old_value, r.old_status)
                )
        if not stale:
            return
        statement = _KEY_RESULTS if kind == "KEY_RESULT" else _OBJECTIVES
        params = {**params, "ids": stale}
    log.warning(
        "roll-up: %d %s rows kept changing under it; left to the next job", len(stale), kind
    )
    await request_again(session, params["org"], kind, stale)


ROLLUP_RETRY = "rollup.retry"


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
