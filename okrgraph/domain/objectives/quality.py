"""OKR quality checks (DESIGN.md section 6): warnings shown on the graph, never refusals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock

MAX_OBJECTIVES_PER_OWNER = 5
MIN_KEY_RESULTS, MAX_KEY_RESULTS = 2, 5
SILENT_PERIODS = 2  # reminder periods without a check-in


@dataclass(frozen=True)
class QualityFacts:
    level: str
    owner_objectives: int  # objectives of the same owner in the same cycle
    key_results: int
    without_target: int
    without_owner: int
    silent: int  # key results with no check-in for two reminder periods
    parents: int


@dataclass(frozen=True)
class QualityWarning:
    code: str
    message: str


_FACTS = text(
    """
    WITH o AS (SELECT * FROM objectives WHERE id = ANY(:ids)),
    kr AS (
        SELECT k.objective_id,
               count(*) AS total,
               count(*) FILTER (WHERE k.kind <> 'MILESTONE' AND k.target_value IS NULL)
                   AS no_target,
               count(*) FILTER (WHERE k.owner_person_id IS NULL) AS no_owner,
               count(*) FILTER (WHERE k.progress_driver = 'CHECK_INS'
                   AND coalesce(k.last_check_in_at, k.created_at)
                       < CAST(:now AS timestamptz)
                         - make_interval(days => org.reminder_cadence_days * :periods))
                   AS silent
        FROM key_results k JOIN organizations org ON org.id = k.org_id
        WHERE k.objective_id = ANY(:ids) AND k.state <> 'CANCELLED'
        GROUP BY k.objective_id
    )
    SELECT o.id, o.level,
           (SELECT count(*) FROM objectives s
             WHERE s.cycle_id = o.cycle_id AND s.state <> 'CANCELLED'
               AND ((o.owner_person_id IS NOT NULL AND s.owner_person_id = o.owner_person_id
                     AND s.level = 'INDIVIDUAL' AND o.level = 'INDIVIDUAL')
                 OR (o.level <> 'INDIVIDUAL' AND s.level = o.level
                     AND s.owner_team_id IS NOT DISTINCT FROM o.owner_team_id)))
               AS owner_objectives,
           coalesce(kr.total, 0), coalesce(kr.no_target, 0), coalesce(kr.no_owner, 0),
           coalesce(kr.silent, 0),
           (SELECT count(*) FROM alignments a WHERE a.child_objective_id = o.id) AS parents
    FROM o LEFT JOIN kr ON kr.objective_id = o.id
    """
)


async def quality_facts(
    session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime | None = None
) -> dict[uuid.UUID, QualityFacts]:
    params = {"ids": list(ids), "now": now or clock.now(), "periods": SILENT_PERIODS}
    return {row[0]: QualityFacts(row[1], *row[2:]) for row in await session.execute(_FACTS, params)}


def warnings(f: QualityFacts) -> list[QualityWarning]:
    out = []
    if f.owner_objectives > MAX_OBJECTIVES_PER_OWNER:
        out.append(
            QualityWarning(
                "TOO_MANY_OBJECTIVES",
                f"{f.owner_objectives} objectives for one owner in this cycle; "
                f"focus on at most {MAX_OBJECTIVES_PER_OWNER}.",
            )
        )
    if f.key_results < MIN_KEY_RESULTS:
        out.append(
            QualityWarning(
                "TOO_FEW_KEY_RESULTS",
                f"{f.key_results} key results; measure it with at least {MIN_KEY_RESULTS}.",
            )
        )
    if f.key_results > MAX_KEY_RESULTS:
        out.append(
            QualityWarning(
                "TOO_MANY_KEY_RESULTS",
                f"{f.key_results} key results; keep at most {MAX_KEY_RESULTS}.",
            )
        )
    if f.without_target:
        out.append(
            QualityWarning(
                "KEY_RESULT_WITHOUT_TARGET", f"{f.without_target} key result(s) without a target."
            )
        )
    if f.without_owner:
        out.append(
            QualityWarning(
                "KEY_RESULT_WITHOUT_OWNER", f"{f.without_owner} key result(s) without an owner."
            )
        )
    if f.silent:
        out.append(
            QualityWarning(
                "STALE_KEY_RESULT",
                f"{f.silent} key result(s) without a check-in for "
                f"{SILENT_PERIODS} reminder periods.",
            )
        )
    if f.level != "COMPANY" and f.parents == 0:
        out.append(
            QualityWarning("NOT_ALIGNED", "Aligned to nothing: link it to what it supports.")
        )
    return out
