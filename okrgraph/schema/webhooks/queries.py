from __future__ import annotations

import strawberry

from okrgraph.domain.webhooks import catalog
from okrgraph.schema.context import Info
from okrgraph.schema.pagination import Connection, build_connection, page_args
from okrgraph.schema.permissions import CanRead, require_principal
from okrgraph.schema.webhooks.types import WebhookEndpoint


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Webhook endpoints, oldest first (admins with an `admin`-scoped token; "
        "anyone else gets a FORBIDDEN error).",
    )
    async def webhook_endpoints(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        enabled: bool | None = None,
    ) -> Connection[WebhookEndpoint]:
        principal = require_principal(info)
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await catalog.endpoints_page(session, principal, page, enabled=enabled)
        return build_connection(rows, page, catalog.BY_CREATED, WebhookEndpoint.from_row)
