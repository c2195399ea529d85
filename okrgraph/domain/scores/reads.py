"""Reads behind the explainable numbers: the terms of a score, its history
(`asOf`, trends) and the check-in series a forecast projects.

Every function takes a batch of ids and returns a dict by id, for dataloaders.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.models.enums import Status

Terms = dict[uuid.UUID, list[scoring.Term]]

# Children aligned (contributing) to objectives or key results; cancelled ones left out.
_CHILD_TERMS = """
    SELECT a.{parent} AS parent, a.weight, c.progress, c.id
    FROM alignments a
    JOIN objectives c ON c.org_id = a.org_id AND c.id = a.child_objective_id
    WHERE a.{parent} = ANY(:ids) AND a.contributes AND c.state <> 'CANCELLED'
    ORDER BY a.created_at, a.id
"""


async def child_terms(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, of_key_results: bool = False
) -> Terms:
    """For each parent objective (or key result), its contributing children's terms."""
    parent = "parent_key_result_id" if of_key_results else "parent_objective_id"
    out: Terms = defaultdict(list)
    rows = await session.execute(text(_CHILD_TERMS.format(parent=parent)), {"ids": list(ids)})
    for parent_id, weight, progress, child_id in rows:
        out[parent_id].append(
            scoring.Term(weight, progress, scoring.SOURCE_CHILDREN, f"Objective:{child_id}")
        )
    return out


async def key_result_terms(session: AsyncSession, objective_ids: Sequence[uuid.UUID]) -> Terms:
    """For each objective, the terms of its key results (cancelled ones left out)."""
    sql = text(
        """
        SELECT objective_id, weight, score, id, progress_driver
        FROM key_results
        WHERE objective_id = ANY(:ids) AND state <> 'CANCELLED'
        ORDER BY created_at, id
        """
    )
    out: Terms = defaultdict(list)
    for objective_id, weight, score, kr_id, driver in await session.execute(
        sql, {"ids": list(objective_ids)}
    ):
        source = {"KPI": scoring.SOURCE_KPI, "CHILDREN": scoring.SOURCE_CHILDREN}.get(
            driver, scoring.SOURCE_CHECK_IN
        )
        out[objective_id].append(scoring.Term(weight, score, source, f"KeyResult:{kr_id}"))
    return out


async def values_as_of(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, tuple[float, Status]]:
    """Each subject's score/progress as last recorded at or before `at`."""
    sql = text(
        """
        SELECT DISTINCT ON (subject_id) subject_id, value, status
        FROM score_history
        WHERE subject_id = ANY(:ids) AND recorded_at <= :at
        ORDER BY subject_id, recorded_at DESC, id DESC
        """
    )
    rows = await session.execute(sql, {"ids": list(subject_ids), "at": at})
    return {sid: (value, Status(status)) for sid, value, status in rows}


async def check_in_series(
    session: AsyncSession, key_result_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[datetime, float]]]:
    """Each key result's effective check-ins (corrections replace what they correct),
    oldest first: the points a forecast fits."""
    sql = text(
        """
        SELECT c.key_result_id, c.effective_at, c.value
        FROM check_ins c
        WHERE c.key_result_id = ANY(:ids)
          AND NOT EXISTS (SELECT 1 FROM check_ins s
                          WHERE s.org_id = c.org_id AND s.supersedes_id = c.id)
        ORDER BY c.key_result_id, c.effective_at, c.id
        """
    )
    out: dict[uuid.UUID, list[tuple[datetime, float]]] = defaultdict(list)
    for kr_id, effective_at, value in await session.execute(sql, {"ids": list(key_result_ids)}):
        out[kr_id].append((effective_at, value))
    return out
