"""The notifications the clock sends: check-ins due, cycles ending, the weekly digest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.notifications.digest import send_weekly_digest
from okrgraph.domain.notifications.schedules import announce_cycles_ending, remind_check_ins_due
from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.outbox.service import all_org_ids

log = logging.getLogger(__name__)

Schedule = Callable[[AsyncSession, uuid.UUID, datetime], Awaitable[int]]
SCHEDULES: dict[str, Schedule] = {
    "check_in_due": remind_check_ins_due,
    "cycle_ending": announce_cycles_ending,
    "weekly_digest": send_weekly_digest,
}


async def notification_schedules(ctx: dict[str, Any]) -> dict[str, int]:
    """Hourly sweep over every organisation: each schedule (domain/notifications/
    schedules.py, digest.py) in its own transaction, telling whoever is due at
    `now` in the organisation's time zone and was not told for the period yet.

    Idempotent through the notifications' dedup keys: a run again, a missed run
    made up by the next, or two workers at once tell each person once per period.
    One that fails is logged and counted and the others go on. `ctx["now"]` sets
    the clock (tests). Returns the new inbox items and sends per schedule, and
    "failed".
    """
    now: datetime = ctx.get("now") or clock.now()
    sessionmaker = ctx["sessionmaker"]
    async with sessionmaker() as session, session.begin():
        orgs = await all_org_ids(session)
    totals = dict.fromkeys(SCHEDULES, 0) | {"failed": 0}
    for org in orgs:
        for name, schedule in SCHEDULES.items():
            try:
                async with unit_of_work(sessionmaker, org, ctx.get("redis")) as session:
                    totals[name] += await schedule(session, org, now)
            except Exception:
                log.exception("schedule %s failed for organisation %s", name, org)
                totals["failed"] += 1
    return totals
