"""Reads of the alignment graph: ancestors and descendants through both kinds of
edge (child objective -> parent objective, child objective -> parent key result
-> that key result's objective)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.graph.queries import Order, Page, page_of
from okrgraph.domain.models import Objective
from okrgraph.domain.models.enums import Level, ObjectiveState, Status

EDGES = """
    SELECT a.child_objective_id AS child,
           coalesce(a.parent_objective_id, kr.objective_id) AS parent
    FROM alignments a
    LEFT JOIN key_results kr
      ON kr.org_id = a.org_id AND kr.id = a.parent_key_result_id
"""

WALK = {
    "up": ("e.child = ANY(:ids)", "e.child", "e.parent", "e.child = w.id"),
    "down": ("e.parent = ANY(:ids)", "e.parent", "e.child", "e.parent = w.id"),
}


async def related_objectives(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    direction: Literal["up", "down"],
    page: Page | None = None,
) -> dict[uuid.UUID, list[tuple[uuid.UUID, int]]]:
    """For each objective, its ancestors ("up") or descendants ("down") with the
    shortest distance, nearest first (by distance, then id). The graph is a DAG,
    so the walk ends. With a page, at most `first + 1` per objective after the
    keyset position `(distance, id)` (the extra one says a page follows)."""
    start_cond, start_col, next_col, join_cond = WALK[direction]
    params: dict[str, object] = {"ids": list(ids)}
    where, limit = "", ""
    if page is not None:
        limit = "WHERE rank <= :first + 1"
        params["first"] = page.first
        if page.after is not None:
            where = "HAVING (min(depth), id) > (:after_depth, :after_id)"
            params["after_depth"], params["after_id"] = page.after
    sql = text(
        f"""
        WITH RECURSIVE e AS ({EDGES}),
        walk(start, id, depth) AS (
            SELECT {start_col}, {next_col}, 1 FROM e WHERE {start_cond}
            UNION
            SELECT w.start, {next_col}, w.depth + 1 FROM walk w JOIN e ON {join_cond}
        ),
        nearest AS (
            SELECT start, id, min(depth) AS depth FROM walk GROUP BY start, id {where}
        ),
        ranked AS (
            SELECT start, id, depth,
                   row_number() OVER (PARTITION BY start ORDER BY depth, id) AS rank
            FROM nearest
        )
        SELECT start, id, depth FROM ranked {limit} ORDER BY start, depth, id
        """
    )
    result: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for start, id, depth in await session.execute(sql, params):
        result[start].append((id, depth))
    return result


async def list_objectives(
    session: AsyncSession,
    *,
    page: Page,
    order: Order,
    cycle_id: uuid.UUID | None = None,
    level: Level | None = None,
    owner_team_id: uuid.UUID | None = None,
    owner_person_id: uuid.UUID | None = None,
    status: Status | None = None,
    state: ObjectiveState | None = None,
) -> list[Objective]:
    """A page of objectives matching every filter given."""
    filters = {
        Objective.cycle_id: cycle_id,
        Objective.level: level,
        Objective.owner_team_id: owner_team_id,
        Objective.owner_person_id: owner_person_id,
        Objective.status: status,
        Objective.state: state,
    }
    where = [column == value for column, value in filters.items() if value is not None]
    return await page_of(session, Objective, where=where, order=order, page=page)
