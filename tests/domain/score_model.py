"""An independent model of DESIGN.md section 3, for the score property tests.

It reads only what people and integrations wrote (check-ins, KPI measurements,
the graph, the cycles' dates, the organisation's time zone) and derives every
number itself: current values and confidences from the check-in log (latest
`effective_at` among those nobody superseded), KPI values from measurements,
expected progress from the calendar. It shares no code with the service (not its
SQL, not `scoring`, not `cycle_pace`), so agreeing with it means something.
Frozen rows (a final score, or a closed cycle) keep their stored numbers and
count in their parents with their final score.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Value = tuple[float, str]
EPS = 1e-9


async def _rows(session: AsyncSession, table: str, org: uuid.UUID) -> list[Any]:
    result = await session.execute(
        text(f"SELECT * FROM {table} WHERE org_id = CAST(:org AS uuid)"), {"org": org}
    )
    return list(result)


def expected_progress(starts_on: Any, ends_on: Any, at: datetime, tz: ZoneInfo) -> float:
    begin = datetime.combine(starts_on, time(), tz).astimezone(UTC)
    finish = datetime.combine(ends_on + timedelta(days=1), time(), tz).astimezone(UTC)
    fraction = (at - begin).total_seconds() / (finish - begin).total_seconds()
    return min(1.0, max(0.0, fraction))


def status(progress: float, expected: float, stretch: bool, confidence: int | None) -> str:
    low = confidence is not None and confidence <= 3
    if expected < 0.1:
        return "AT_RISK" if low else "NOT_STARTED"
    pace = progress / ((0.7 if stretch else 1.0) * expected)
    if pace >= 0.9 - EPS:
        return "AT_RISK" if low else "ON_TRACK"
    if pace >= 0.6 - EPS:
        return "AT_RISK"
    return "OFF_TRACK"


def mean(terms: list[tuple[float, float]]) -> float:
    """Weighted mean of (weight, value); zero total weight or nothing -> 0."""
    total = sum(w for w, _ in terms if w > 0)
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, sum(w * min(1.0, max(0.0, v)) for w, v in terms if w > 0) / total))


def kr_score(kind: str, start: float, target: float | None, current: float | None) -> float:
    if current is None:
        return 0.0
    if kind == "MILESTONE":
        return 1.0 if current == 1 else 0.0
    if target is None:
        return 0.0
    if kind == "ABOVE":
        return 1.0 if current >= target else 0.0
    if kind == "BELOW":
        return 1.0 if current <= target else 0.0
    return min(1.0, max(0.0, (current - start) / (target - start)))


async def model(session: AsyncSession, org: uuid.UUID, at: datetime) -> dict[uuid.UUID, Value]:
    """id -> (score or progress, status) of every key result and objective at `at`."""
    tz_name = await session.scalar(
        text("SELECT timezone FROM organizations WHERE id = CAST(:org AS uuid)"), {"org": org}
    )
    tz = ZoneInfo(tz_name or "UTC")
    cycles = {c.id: c for c in await _rows(session, "cycles", org)}
    krs = {k.id: k for k in await _rows(session, "key_results", org)}
    objectives = {o.id: o for o in await _rows(session, "objectives", org)}
    edges = [a for a in await _rows(session, "alignments", org) if a.contributes]
    check_ins = await _rows(session, "check_ins", org)
    superseded = {c.supersedes_id for c in check_ins if c.supersedes_id is not None}
    latest: dict[uuid.UUID, Any] = {}
    for c in check_ins:
        if c.id in superseded:
            continue
        best = latest.get(c.key_result_id)
        if best is None or (c.effective_at, c.recorded_at, c.id) > (
            best.effective_at, best.recorded_at, best.id,
        ):  # fmt: skip
            latest[c.key_result_id] = c
    measurements = await _rows(session, "kpi_measurements", org)
    kpi_latest: dict[uuid.UUID, Any] = {}
    for m in measurements:
        best = kpi_latest.get(m.kpi_id)
        if best is None or (m.measured_at, m.recorded_at, m.id) > (
            best.measured_at, best.recorded_at, best.id,
        ):  # fmt: skip
            kpi_latest[m.kpi_id] = m
    kpi_of = {link.key_result_id: link.kpi_id for link in await _rows(session, "kpi_links", org)}

    def expected(cycle_id: uuid.UUID) -> float:
        c = cycles[cycle_id]
        return expected_progress(c.starts_on, c.ends_on, at, tz)

    def frozen(cycle_id: uuid.UUID, final_score: float | None) -> bool:
        return final_score is not None or cycles[cycle_id].state == "CLOSED"

    memo: dict[uuid.UUID, Value] = {}

    def children(parent: uuid.UUID) -> list[tuple[float, float]]:
        return [
            (a.weight, contribution(a.child_objective_id))
            for a in edges
            if (a.parent_objective_id or a.parent_key_result_id) == parent
            and objectives[a.child_objective_id].state != "CANCELLED"
        ]

    def kr(kid: uuid.UUID) -> Value:
        if kid not in memo:
            k = krs[kid]
            cycle = objectives[k.objective_id].cycle_id
            if frozen(cycle, k.final_score):
                memo[kid] = (k.score, k.status)
            else:
                confidence = None
                if k.progress_driver == "CHILDREN":
                    score = mean(children(kid))
                else:
                    if k.progress_driver == "KPI":
                        m = kpi_latest.get(kpi_of.get(kid))  # type: ignore[arg-type]
                        current = m.value if m is not None else None
                    else:
                        c = latest.get(kid)
                        current = c.value if c is not None else None
                        confidence = c.confidence if c is not None else None
                    score = kr_score(k.kind, k.start_value, k.target_value, current)
                memo[kid] = (score, status(score, expected(cycle), k.stretch, confidence))
        return memo[kid]

    def objective(oid: uuid.UUID) -> Value:
        if oid not in memo:
            o = objectives[oid]
            if frozen(o.cycle_id, o.final_score):
                memo[oid] = (o.progress, o.status)
            else:
                own = [
                    (k.weight, k.final_score if k.final_score is not None else kr(k.id)[0])
                    for k in krs.values()
                    if k.objective_id == oid and k.state != "CANCELLED"
                ]
                terms = {
                    "KEY_RESULTS": own,
                    "CHILDREN": children(oid),
                    "BOTH": own + children(oid),
                }[o.progress_driver]
                progress = mean(terms)
                memo[oid] = (progress, status(progress, expected(o.cycle_id), False, None))
        return memo[oid]

    def contribution(oid: uuid.UUID) -> float:
        o = objectives[oid]
        return o.final_score if o.final_score is not None else objective(oid)[0]

    for kid in krs:
        kr(kid)
    for oid in objectives:
        objective(oid)
    return memo
