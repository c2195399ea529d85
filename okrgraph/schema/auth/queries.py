from __future__ import annotations

import strawberry

from okrgraph.domain.auth import queries
from okrgraph.schema.auth.types import ApiToken
from okrgraph.schema.context import Info
from okrgraph.schema.pagination import Connection, build_connection, page_args
from okrgraph.schema.permissions import CanRead, require_principal


@strawberry.type
class AuthQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="API tokens, newest first: all of the organisation's for admins "
        "(with an `admin`-scoped token), your own for everyone else.",
    )
    async def api_tokens(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        include_revoked: bool = False,
    ) -> Connection[ApiToken]:
        principal = require_principal(info)
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await queries.tokens_page(
                session, principal, page, include_revoked=include_revoked
            )
        return build_connection(rows, page, queries.NEWEST_FIRST, ApiToken.from_row)
