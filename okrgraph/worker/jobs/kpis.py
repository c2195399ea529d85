"""KPI job: every KPI-driven key result of an organisation takes its KPI's latest value."""

from __future__ import annotations

import uuid
from typing import Any

from okrgraph.domain.outbox.after_commit import unit_of_work
from okrgraph.domain.scores.service import sync_kpis
from okrgraph.worker.jobs.scores import announce


async def sync_kpi_key_results(ctx: dict[str, Any], org_id: str) -> dict[str, int]:
    """Latest values and health of all KPIs, into the KRs that follow them, rolled up.

    New measurements reach KRs through `kpi.measured` events and the
    recalculation job; this sweep repairs an organisation wholesale.
    """
    org = uuid.UUID(str(org_id))
    async with unit_of_work(ctx["sessionmaker"], org, ctx.get("redis")) as session:
        result = await sync_kpis(session, org)
        announce(session, org, result.changes)
    return {"nodes": result.nodes, "changes": len(result.changes)}
