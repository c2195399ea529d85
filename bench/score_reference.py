"""The roll-up of section 3 computed row by row in Python with `scoring`.

The naive baseline of bench/scores.py (the service runs the set-based SQL;
the tests check it against their own model, tests/domain/score_model.py).
Loads one organisation's graph and evaluates every node by memoised recursion
over the DAG.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.models.enums import (
    KeyResultDriver,
    KeyResultKind,
    ObjectiveDriver,
    ObjectiveState,
    Status,
)
from okrgraph.domain.scores.queries import CyclePace

Value = tuple[float, Status]


@dataclass
class Graph:
    krs: dict[uuid.UUID, Any]  # rows of key_results
    objectives: dict[uuid.UUID, Any]  # rows of objectives
    alignments: list[Any]  # rows of alignments


async def load_graph(session: AsyncSession, org_id: uuid.UUID) -> Graph:
    params = {"org": org_id}
    krs = await session.execute(
        text("SELECT * FROM key_results WHERE org_id = CAST(:org AS uuid)"), params
    )
    objs = await session.execute(
        text("SELECT * FROM objectives WHERE org_id = CAST(:org AS uuid)"), params
    )
    edges = await session.execute(
        text("SELECT * FROM alignments WHERE org_id = CAST(:org AS uuid)"), params
    )
    return Graph({r.id: r for r in krs}, {r.id: r for r in objs}, list(edges))


def roll_up(graph: Graph, pace: CyclePace) -> tuple[dict[uuid.UUID, Value], dict[uuid.UUID, Value]]:
    """(key result id -> (score, status), objective id -> (progress, status)) by the rules."""
    expected = dict(zip(pace.cycle_ids, pace.expected, strict=True))
    closed = set(pace.closed_ids)
    krs_of: dict[uuid.UUID, list[Any]] = {}
    for k in graph.krs.values():
        krs_of.setdefault(k.objective_id, []).append(k)
    children_of: dict[uuid.UUID, list[Any]] = {}
    for a in graph.alignments:
        if a.contributes:
            parent = a.parent_objective_id or a.parent_key_result_id
            children_of.setdefault(parent, []).append(a)
    kr_memo: dict[uuid.UUID, Value] = {}
    obj_memo: dict[uuid.UUID, Value] = {}

    def child_terms(parent: uuid.UUID) -> list[scoring.Term]:
        terms = []
        for a in children_of.get(parent, []):
            child = graph.objectives[a.child_objective_id]
            if ObjectiveState(child.state) is not ObjectiveState.CANCELLED:
                terms.append(scoring.Term(a.weight, contribution_obj(child.id), "children"))
        return terms

    def kr_value(kid: uuid.UUID) -> Value:
        if kid not in kr_memo:
            k = graph.krs[kid]
            cycle = graph.objectives[k.objective_id].cycle_id
            if k.final_score is not None or cycle in closed:
                kr_memo[kid] = (k.score, Status(k.status))
            else:
                if KeyResultDriver(k.progress_driver) is KeyResultDriver.CHILDREN:
                    score = scoring.children_progress(child_terms(kid)).value
                else:
                    score = scoring.key_result_score(
                        KeyResultKind(k.kind), k.start_value, k.target_value, k.current_value
                    )
                status = scoring.status_from_pace(
                    score, expected[cycle], stretch=k.stretch, confidence=k.confidence
                )
                kr_memo[kid] = (score, status)
        return kr_memo[kid]

    def contribution_kr(kid: uuid.UUID) -> float:
        k = graph.krs[kid]
        return k.final_score if k.final_score is not None else kr_value(kid)[0]

    def obj_value(oid: uuid.UUID) -> Value:
        if oid not in obj_memo:
            o = graph.objectives[oid]
            if o.final_score is not None or o.cycle_id in closed:
                obj_memo[oid] = (o.progress, Status(o.status))
            else:
                kr_terms = [
                    scoring.Term(k.weight, contribution_kr(k.id), "key result")
                    for k in krs_of.get(oid, [])
                    if k.state != "CANCELLED"
                ]
                progress = scoring.objective_progress(
                    ObjectiveDriver(o.progress_driver), kr_terms, child_terms(oid)
                ).value
                obj_memo[oid] = (progress, scoring.status_from_pace(progress, expected[o.cycle_id]))
        return obj_memo[oid]

    def contribution_obj(oid: uuid.UUID) -> float:
        o = graph.objectives[oid]
        return o.final_score if o.final_score is not None else obj_value(oid)[0]

    for kid in graph.krs:
        kr_value(kid)
    for oid in graph.objectives:
        obj_value(oid)
    return kr_memo, obj_memo
