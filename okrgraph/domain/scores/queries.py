"""Reads of the score roll-up: cycle pace, and the levels of the graph above a change."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.models import Cycle, Organization
from okrgraph.domain.models.enums import CycleState

# A longer path means a loop slipped into the alignment graph: stop climbing.
MAX_DEPTH = 64


async def org_timezone(session: AsyncSession, org_id: uuid.UUID) -> ZoneInfo:
    name = await session.scalar(select(Organization.timezone).where(Organization.id == org_id))
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class CyclePace:
    """Per cycle of the organisation: expected progress at `now`, and whether it is closed."""

    cycle_ids: list[uuid.UUID]
    expected: list[float]
    closed: list[bool]

    @property
    def closed_ids(self) -> list[uuid.UUID]:
        return [c for c, shut in zip(self.cycle_ids, self.closed, strict=True) if shut]


async def cycle_pace(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> CyclePace:
    """Expected progress of every cycle (scoring.expected_progress, in the org's time zone)."""
    tz = await org_timezone(session, org_id)
    rows = (
        await session.execute(
            select(Cycle.id, Cycle.starts_on, Cycle.ends_on, Cycle.state).where(
                Cycle.org_id == org_id
            )
        )
    ).all()
    return CyclePace(
        cycle_ids=[r.id for r in rows],
        expected=[scoring.expected_progress(r.starts_on, r.ends_on, now, tz) for r in rows],
        closed=[r.state is CycleState.CLOSED for r in rows],
    )


# Longest path from a changed node up to each ancestor: processing by increasing
# depth is bottom-up (an edge u -> v gives depth(v) >= depth(u) + 1). Edges up:
# KR -> its objective; objective -> parent objective (contributing alignment);
# objective -> parent KR (contributing alignment, the KR driven by CHILDREN).
_CLIMB = f"""
    SELECT n.kind, n.id, up.depth + 1
    FROM up
    JOIN LATERAL (
        SELECT 'O' AS kind, k.objective_id AS id FROM key_results k
        WHERE up.kind = 'K' AND k.org_id = CAST(:org AS uuid) AND k.id = up.id
        UNION ALL
        SELECT 'O', a.parent_objective_id FROM alignments a
        WHERE up.kind = 'O' AND a.org_id = CAST(:org AS uuid) AND a.child_objective_id = up.id
          AND a.contributes AND a.parent_objective_id IS NOT NULL
        UNION ALL
        SELECT 'K', a.parent_key_result_id FROM alignments a
        JOIN key_results pk ON pk.org_id = a.org_id AND pk.id = a.parent_key_result_id
        WHERE up.kind = 'O' AND a.org_id = CAST(:org AS uuid) AND a.child_objective_id = up.id
          AND a.contributes AND pk.progress_driver = 'CHILDREN'
    ) n ON true
    WHERE up.depth < {MAX_DEPTH}
"""

_LEVELS = f"""
WITH RECURSIVE up(kind, id, depth) AS (
    SELECT 'K', x, 0 FROM unnest(CAST(:krs AS uuid[])) x
    UNION ALL
    SELECT 'O', x, 0 FROM unnest(CAST(:objs AS uuid[])) x
    UNION
    {_CLIMB}
)
SELECT kind, id, max(depth) AS depth FROM up GROUP BY kind, id
"""


@dataclass
class Levels:
    """Nodes to recompute, bottom-up: levels[d] = (key result ids, objective ids)."""

    levels: list[tuple[list[uuid.UUID], list[uuid.UUID]]]

    @property
    def size(self) -> int:
        return sum(len(k) + len(o) for k, o in self.levels)


async def levels_above(
    session: AsyncSession,
    org_id: uuid.UUID,
    key_result_ids: Collection[uuid.UUID],
    objective_ids: Collection[uuid.UUID],
) -> Levels:
    """The changed nodes and all their ancestors, grouped by depth."""
    rows = await session.execute(
        text(_LEVELS),
        {"org": org_id, "krs": list(key_result_ids), "objs": list(objective_ids)},
    )
    return _group(rows)


@dataclass(frozen=True)
class CycleNodes:
    key_result_ids: set[uuid.UUID]
    objective_ids: set[uuid.UUID]


async def nodes_of_cycles(
    session: AsyncSession, org_id: uuid.UUID, cycle_ids: Collection[uuid.UUID]
) -> CycleNodes:
    """Every objective of the cycles and their key results (a cycle's dates moved)."""
    params = {"org": org_id, "cycles": list(cycle_ids)}
    objectives = await session.execute(
        text(
            "SELECT id FROM objectives WHERE org_id = CAST(:org AS uuid)"
            " AND cycle_id = ANY(CAST(:cycles AS uuid[]))"
        ),
        params,
    )
    krs = await session.execute(
        text(
            "SELECT k.id FROM key_results k JOIN objectives o"
            " ON o.org_id = k.org_id AND o.id = k.objective_id"
            " WHERE k.org_id = CAST(:org AS uuid) AND o.cycle_id = ANY(CAST(:cycles AS uuid[]))"
        ),
        params,
    )
    return CycleNodes({r[0] for r in krs}, {r[0] for r in objectives})


def _group(rows: object) -> Levels:
    levels: list[tuple[list[uuid.UUID], list[uuid.UUID]]] = []
    for kind, node_id, depth in rows:  # type: ignore[attr-defined]
        while len(levels) <= depth:
            levels.append(([], []))
        levels[depth][0 if kind == "K" else 1].append(node_id)
    return Levels(levels)
