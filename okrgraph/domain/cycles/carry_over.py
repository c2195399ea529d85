"""Carrying a closing cycle's missed objectives over into the next cycle.

Each missed objective is copied with its unfinished key results (per
`CarryOverPolicy`), the alignments that still make sense from the next cycle,
and its links to KPIs that are not archived. The copies keep a
`carried_over_from_id` to what they continue.

Set-based: a constant number of statements (INSERT ... SELECT), whatever the
number of copies; the copies' ids are drawn by PostgreSQL. The copied
objectives are passed from statement to statement as two arrays (old ids, new
ids); a copied key result is found as a key result of a copy.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles.service import get_cycle
from okrgraph.domain.key_results.definitions import check_target
from okrgraph.domain.kpis.catalog import KPI_LINKED
from okrgraph.domain.models import Cycle
from okrgraph.domain.models.enums import KeyResultKind
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.jobs import Dispatch, Recalculation
from okrgraph.domain.scores.queries import org_timezone
from okrgraph.domain.validation import MAX_ABS_NUMBER

DONE = 1.0 - 1e-9  # a key result at (about) 1.0 is finished and not carried over


class CarryOverPolicy(enum.Enum):
    CARRY_REMAINDER = "CARRY_REMAINDER"  # same start and target; current continues
    REBASELINE = "REBASELINE"  # starts at the old current value, same target
    CLOSE_AS_MISSED = "CLOSE_AS_MISSED"  # nothing carried over


@dataclass(frozen=True)
class CarriedOver:
    """The copies made: each objective copy's id by the id it continues, and the ids
    of the key result copies."""

    objectives: dict[uuid.UUID, uuid.UUID]
    key_results: list[uuid.UUID]


# The copied objectives, old id -> new id (the arrays :old and :new).
_COPIES = "copies AS (SELECT * FROM unnest(CAST(:old AS uuid[]), CAST(:new AS uuid[])) AS c(old_id, new_id))"  # noqa: E501
# Their copied key results, old id -> new id.
_KR_COPIES = """kr_copies AS (
    SELECT k.carried_over_from_id AS old_id, k.id AS new_id FROM key_results k
    WHERE k.org_id = CAST(:org AS uuid) AND k.objective_id = ANY(CAST(:new AS uuid[]))
)"""

# The cycle's MISSED objectives (graded just before) into the next cycle, ACTIVE.
_COPY_OBJECTIVES = """
WITH copied AS (
    INSERT INTO objectives (org_id, id, cycle_id, title, description, level, owner_team_id,
                            owner_person_id, state, progress_driver, status, progress,
                            carried_over_from_id)
    SELECT org_id, gen_random_uuid(), CAST(:next AS uuid), title, description, level,
           owner_team_id, owner_person_id, 'ACTIVE', progress_driver, 'NOT_STARTED', 0, id
    FROM objectives
    WHERE org_id = CAST(:org AS uuid) AND cycle_id = CAST(:cycle AS uuid) AND state = 'MISSED'
    RETURNING carried_over_from_id, id
)
SELECT carried_over_from_id, id FROM copied
"""

# The key results to copy: of a copied objective, counting, not finished; with the
# start they take (REBASELINE: the old current value) and whether their value goes on.
_TO_COPY = f"""
{_COPIES},
to_copy AS (
    SELECT k.*, c.new_id AS objective_copy_id, gen_random_uuid() AS copy_id,
           CASE WHEN CAST(:rebaseline AS boolean) AND k.current_value IS NOT NULL
                THEN k.current_value ELSE k.start_value END AS new_start,
           (CAST(:remainder AS boolean) AND k.current_value IS NOT NULL
            AND k.progress_driver = 'CHECK_INS') AS carries_value
    FROM key_results k JOIN copies c ON c.old_id = k.objective_id
    WHERE k.org_id = CAST(:org AS uuid) AND k.state <> 'CANCELLED'
      AND k.score < CAST(:done AS float8)
)"""

# key_results.definitions.check_target in SQL (a kind, its start and target): the
# first rows that may break it, by creation, for check_target itself to judge.
_TARGETS_TO_CHECK = f"""
WITH {_TO_COPY.strip()}
SELECT kind, new_start, target_value FROM to_copy
WHERE kind <> 'MILESTONE' AND (
    target_value IS NULL OR NOT abs(target_value) <= CAST(:max_abs AS float8)
    OR (kind = 'INCREASE' AND NOT target_value > new_start)
    OR (kind = 'DECREASE' AND NOT target_value < new_start))
ORDER BY created_at, id
LIMIT 10
"""

# The copies, and for those whose value goes on (CARRY_REMAINDER, a check-in driven
# key result with a value) a check-in of that value at the next cycle's start
# (:effective_at, never in the future) and the value on the copy.
_COPY_KEY_RESULTS = f"""
WITH {_TO_COPY.strip()},
copied AS (
    INSERT INTO key_results (org_id, id, objective_id, title, owner_person_id, kind, unit,
                             start_value, target_value, current_value, weight,
                             progress_driver, stretch, state, score, status, confidence,
                             carried_over_from_id, last_check_in_at)
    SELECT org_id, copy_id, objective_copy_id, title, owner_person_id, kind, unit, new_start,
           target_value, CASE WHEN carries_value THEN current_value END, weight,
           progress_driver, stretch, 'ACTIVE', 0, 'NOT_STARTED',
           CASE WHEN carries_value THEN confidence END, id,
           CASE WHEN carries_value THEN CAST(:now AS timestamptz) END
    FROM to_copy
),
checked_in AS (
    INSERT INTO check_ins (org_id, id, key_result_id, value, confidence, comment,
                           author_person_id, effective_at, recorded_at)
    SELECT org_id, gen_random_uuid(), copy_id, current_value, confidence, CAST(:comment AS text),
           CAST(:author AS uuid), CAST(:effective_at AS timestamptz), CAST(:now AS timestamptz)
    FROM to_copy WHERE carries_value
)
SELECT copy_id FROM to_copy
"""

# A copy supports its parent's copy when the parent (an objective or a key result) was
# carried over too, or the same parent when that lives in a cycle containing the next
# one (:reachable) and not in the closing cycle; else nothing.
_COPY_ALIGNMENTS = f"""
WITH {_COPIES}, {_KR_COPIES},
edges AS (
    SELECT a.org_id, a.weight, a.contributes, a.parent_objective_id, a.parent_key_result_id,
           child.new_id AS child_copy_id, parent.new_id AS parent_copy_id,
           kr.new_id AS kr_copy_id, coalesce(po.cycle_id, pko.cycle_id) AS parent_cycle_id
    FROM alignments a
    JOIN copies child ON child.old_id = a.child_objective_id
    LEFT JOIN copies parent ON parent.old_id = a.parent_objective_id
    LEFT JOIN kr_copies kr ON kr.old_id = a.parent_key_result_id
    LEFT JOIN objectives po ON po.org_id = a.org_id AND po.id = a.parent_objective_id
    LEFT JOIN key_results pk ON pk.org_id = a.org_id AND pk.id = a.parent_key_result_id
    LEFT JOIN objectives pko ON pko.org_id = pk.org_id AND pko.id = pk.objective_id
    WHERE a.org_id = CAST(:org AS uuid)
)
INSERT INTO alignments (org_id, id, child_objective_id, parent_objective_id,
                        parent_key_result_id, weight, contributes)
SELECT org_id, gen_random_uuid(), child_copy_id,
       coalesce(parent_copy_id, parent_objective_id),
       CASE WHEN parent_copy_id IS NULL THEN coalesce(kr_copy_id, parent_key_result_id) END,
       weight, contributes
FROM edges
WHERE parent_copy_id IS NOT NULL OR kr_copy_id IS NOT NULL
   OR (parent_cycle_id <> CAST(:cycle AS uuid)
       AND parent_cycle_id = ANY(CAST(:reachable AS uuid[])))
"""

# The copies follow the same (not archived) KPIs, as kpis.catalog.link_kpi links them
# (the closing admin may): the link, its audit entry, and for a key result the event
# asking for its value from the KPI (a KPI-driven key result keeps following it).
_COPY_KPI_LINKS = f"""
WITH {_COPIES}, {_KR_COPIES},
links AS (
    SELECT l.kpi_id, kr.new_id AS key_result_id, o.new_id AS objective_id
    FROM kpi_links l
    JOIN kpis p ON p.org_id = l.org_id AND p.id = l.kpi_id AND p.archived_at IS NULL
    LEFT JOIN kr_copies kr ON kr.old_id = l.key_result_id
    LEFT JOIN copies o ON o.old_id = l.objective_id
    WHERE l.org_id = CAST(:org AS uuid) AND (kr.new_id IS NOT NULL OR o.new_id IS NOT NULL)
),
linked AS (
    INSERT INTO kpi_links (org_id, id, kpi_id, key_result_id, objective_id)
    SELECT CAST(:org AS uuid), gen_random_uuid(), kpi_id, key_result_id, objective_id
    FROM links
),
audited AS (
    INSERT INTO audit_entries (org_id, id, actor_person_id, actor_token_id, action,
                               subject_type, subject_id, changes)
    SELECT CAST(:org AS uuid), gen_random_uuid(), CAST(:person AS uuid),
           CAST(:token AS uuid), CAST(:action AS text), 'KPI', kpi_id,
           jsonb_build_object('key_result_id', key_result_id, 'objective_id', objective_id)
    FROM links
),
announced AS (
    INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload)
    SELECT CAST(:org AS uuid), gen_random_uuid(), CAST(:action AS text), 'KPI', kpi_id,
           jsonb_build_object(
               'kpi_id', kpi_id::text, 'key_result_id', key_result_id::text,
               'recalc', jsonb_build_object('key_results', jsonb_build_array(key_result_id::text))
           )
    FROM links WHERE key_result_id IS NOT NULL
)
SELECT count(*) FILTER (WHERE key_result_id IS NOT NULL) FROM links
"""


async def carry_over(
    session: AsyncSession,
    principal: Principal,
    policy: CarryOverPolicy,
    cycle: Cycle,
    next_cycle: Cycle,
    now: datetime,
) -> CarriedOver:
    """Copy the cycle's MISSED objectives (graded just before) into `next_cycle` (none
    under CLOSE_AS_MISSED), with their unfinished key results, alignments and KPI links."""
    if policy is CarryOverPolicy.CLOSE_AS_MISSED:
        return CarriedOver(objectives={}, key_results=[])
    org = principal.org_id
    rows = await session.execute(
        text(_COPY_OBJECTIVES), {"org": org, "cycle": cycle.id, "next": next_cycle.id}
    )
    copies: dict[uuid.UUID, uuid.UUID] = {row[0]: row[1] for row in rows}
    if not copies:
        return CarriedOver(objectives={}, key_results=[])
    ids = {"org": org, "old": list(copies), "new": list(copies.values())}
    kr_copies = await _copy_key_results(session, principal, ids, policy, cycle, next_cycle, now)
    reachable = await _enclosing_cycles(session, next_cycle)
    await session.execute(
        text(_COPY_ALIGNMENTS), {**ids, "cycle": cycle.id, "reachable": list(reachable)}
    )
    await _copy_kpi_links(session, principal, ids)
    return CarriedOver(objectives=copies, key_results=kr_copies)


async def _copy_key_results(
    session: AsyncSession,
    principal: Principal,
    ids: dict[str, Any],
    policy: CarryOverPolicy,
    cycle: Cycle,
    next_cycle: Cycle,
    now: datetime,
) -> list[uuid.UUID]:
    """Copies of the carried objectives' unfinished key results, per policy."""
    tz = await org_timezone(session, principal.org_id)
    next_start, _ = scoring.cycle_bounds(next_cycle.starts_on, next_cycle.ends_on, tz)
    params = {
        **ids,
        "rebaseline": policy is CarryOverPolicy.REBASELINE,
        "remainder": policy is CarryOverPolicy.CARRY_REMAINDER,
        "done": DONE,
    }
    suspects = await session.execute(text(_TARGETS_TO_CHECK), {**params, "max_abs": MAX_ABS_NUMBER})
    for kind, start, target in suspects:
        check_target(KeyResultKind(kind), start, target)  # a rebaselined start, too
    rows = await session.execute(
        text(_COPY_KEY_RESULTS),
        {
            **params,
            "now": now,
            # at the next cycle's start, unless that is still ahead (no future check-ins)
            "effective_at": min(next_start, now),
            "comment": f"Carried over from {cycle.name}",
            "author": principal.person_id,
        },
    )
    return list(rows.scalars())


async def _enclosing_cycles(session: AsyncSession, cycle: Cycle) -> set[uuid.UUID]:
    """The cycle and every cycle containing it (a quarter's year)."""
    out = {cycle.id}
    parent_id = cycle.parent_cycle_id
    while parent_id is not None and parent_id not in out:
        out.add(parent_id)
        parent_id = (await get_cycle(session, parent_id)).parent_cycle_id
    return out


async def _copy_kpi_links(session: AsyncSession, principal: Principal, ids: dict[str, Any]) -> None:
    events = (
        await session.execute(
            text(_COPY_KPI_LINKS),
            {
                **ids,
                "person": principal.person_id,
                "token": principal.token_id,
                "action": KPI_LINKED,
            },
        )
    ).scalar_one()
    if events:  # what emit() asks after commit for each such event (outbox.service)
        buffer = AfterCommit.of(session)
        buffer.request(Recalculation(principal.org_id))
        buffer.request(Dispatch(principal.org_id))
