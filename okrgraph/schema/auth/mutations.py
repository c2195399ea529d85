"""Creating and revoking API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth import service
from okrgraph.domain.auth.tokens import Principal
from okrgraph.schema import bounds
from okrgraph.schema.auth.types import ApiToken
from okrgraph.schema.context import Info
from okrgraph.schema.node import input_kwargs, parse_id
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.type(description="A new token and, this once, its secret.")
class CreateApiTokenSuccess:
    token: ApiToken = strawberry.field(description="The token.")
    secret: str | None = strawberry.field(
        description="The bearer secret (`okr_...`), shown only in the response that created "
        "the token: store it now. Null when an `idempotencyKey` replays the first call."
    )


@strawberry.type(description="The token after the change.")
class ApiTokenSuccess:
    token: ApiToken = strawberry.field(description="The token.")


CreateApiTokenResult = Annotated[
    CreateApiTokenSuccess | UserErrors,
    strawberry.union("CreateApiTokenResult", description="CreateApiTokenSuccess or a user error."),
]
ApiTokenResult = Annotated[
    ApiTokenSuccess | UserErrors,
    strawberry.union("ApiTokenResult", description="ApiTokenSuccess or a user error."),
]


@strawberry.input(description="A new API token.")
class CreateApiTokenInput:
    name: str = bounds.text("What it is for.", validation.NAME)
    scopes: list[str] = bounds.text(
        "Some of `read`, `write`, `admin`: no wider than the holder's role allows "
        "(VIEWER: read, write, where write changes only their own inbox; MEMBER: read, "
        "write; ADMIN: all) nor than the calling token.",
        validation.SHORT_TEXT,
        each=True,
    )
    person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose token (admins only for others; default: yours)."
    )
    integration_name: str | None = bounds.text(
        "Or the integration it is for (admins only).", validation.NAME, default=None
    )
    expires_at: datetime | None = bounds.moment(
        "When it stops working (default: never).", default=None
    )


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        description="Create an API token: for yourself (scopes within your role), or, as "
        "an admin, for anyone or an integration. The secret is in this response only."
    )
    async def create_api_token(
        self, info: Info, input: CreateApiTokenInput, idempotency_key: str | None = None
    ) -> CreateApiTokenResult:
        secrets: dict[str, str] = {}

        async def action(session: AsyncSession, principal: Principal) -> Any:
            token, secret = await service.create_api_token(
                session, principal, **input_kwargs(input, ids={"person_id": "Person"})
            )
            secrets["secret"] = secret  # never stored, so a replay has none
            return token

        def success(row: Any) -> CreateApiTokenSuccess:
            return CreateApiTokenSuccess(token=ApiToken.from_row(row), secret=secrets.get("secret"))

        return await run_mutation(info, "createApiToken", input, idempotency_key, action, success)

    @strawberry.mutation(
        description="Revoke a token (your own, or any as an admin): its next request gets a "
        "401, its open websockets close and its subscriptions end. Revoking twice changes "
        "nothing."
    )
    async def revoke_api_token(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> ApiTokenResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.revoke_api_token(
                session, principal, parse_id(id, "ApiToken", "id")
            )

        return await run_mutation(
            info,
            "revokeApiToken",
            id,
            idempotency_key,
            action,
            lambda row: ApiTokenSuccess(token=ApiToken.from_row(row)),
        )
