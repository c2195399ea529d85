"""The cycle roll: ended cycles are graded and, after the grading window, closed."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from okrgraph.domain import clock
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.cycles.rolling import close_if_due, due_to_close, org_today, start_grading
from okrgraph.domain.cycles.starting import take_kpi_starts
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.outbox.service import all_org_ids

log = logging.getLogger(__name__)


async def roll_cycles(ctx: dict[str, Any]) -> dict[str, int]:
    """Hourly sweep over every organisation, by the date in its own time zone:

    - KPI-driven key results of ACTIVE cycles that have begun take their start
      from their KPI, once (cycles/starting.py);
    - an ACTIVE cycle whose last day has passed moves to GRADING;
    - a GRADING cycle that ended `GRADING_DAYS` (14) or more days ago is closed
      (scores frozen, graded, missed objectives carried over with their
      remainder, the next cycle opened). The grading window is the time people
      have to write their reflections and last check-ins before the freeze.

    Idempotent: a missed run is made up by the next, and two runs at once move
    and close each cycle once. Each close is its own transaction; one that fails
    is logged and counted and the others go on. `ctx["now"]` sets the clock
    (tests). Returns {"graded": n, "closed": m, "failed": k}.
    """
    now: datetime = ctx.get("now") or clock.now()
    sessionmaker = ctx["sessionmaker"]
    async with sessionmaker() as session, session.begin():
        orgs = await all_org_ids(session)
    totals = {"graded": 0, "closed": 0, "failed": 0}
    for org in orgs:
        for key, n in (await roll_org_cycles(sessionmaker, org, now, ctx.get("redis"))).items():
            totals[key] += n
    return totals


async def roll_org_cycles(
    sessionmaker: async_sessionmaker[AsyncSession],
    org: uuid.UUID,
    now: datetime,
    queue: Any = None,
) -> dict[str, int]:
    principal = system_principal(org)
    async with unit_of_work(sessionmaker, org, queue) as session:
        today = await org_today(session, org, now)
        await take_kpi_starts(session, principal, now)
        graded = len(await start_grading(session, principal, today))
        due = await due_to_close(session, today)
    closed = failed = 0
    for cycle_id in due:
        try:
            async with unit_of_work(sessionmaker, org, queue) as session:
                closing = await close_if_due(session, principal, cycle_id, now, today)
        except Exception:
            log.exception("could not close cycle %s of organisation %s", cycle_id, org)
            failed += 1
            continue
        if closing is not None:
            closed += 1
            log.info("closed cycle %s of organisation %s", cycle_id, org)
    return {"graded": graded, "closed": closed, "failed": failed}
