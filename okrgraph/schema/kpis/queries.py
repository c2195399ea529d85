from __future__ import annotations

import strawberry

from okrgraph.domain.graph.queries import Order, page_of
from okrgraph.domain.models import Kpi as KpiRow
from okrgraph.schema.context import Info
from okrgraph.schema.kpis.types import Kpi
from okrgraph.schema.pagination import Connection, build_connection, page_args
from okrgraph.schema.permissions import CanRead

BY_NAME = Order("name")


@strawberry.type
class KpiQueries:
    @strawberry.field(permission_classes=[CanRead], description="KPIs, by name.")
    async def kpis(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Kpi]:
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await page_of(session, KpiRow, order=BY_NAME, page=page)
        return build_connection(rows, page, BY_NAME, Kpi.from_row)
