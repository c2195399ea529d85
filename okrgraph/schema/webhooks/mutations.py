"""Managing webhook endpoints (admins)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.webhooks import catalog
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.node import input_kwargs, parse_id
from okrgraph.schema.payloads import UserErrors, run_mutation
from okrgraph.schema.webhooks.types import WebhookEndpoint


@strawberry.type(description="The endpoint and, this once, its signing secret.")
class WebhookSecretSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint.")
    secret: str | None = strawberry.field(
        description="The signing secret (`whsec_` + base64, Standard Webhooks), shown only "
        "in this response: store it now. Null when an `idempotencyKey` replays the first call."
    )


@strawberry.type(description="The endpoint after the change.")
class WebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint.")


WebhookSecretResult = Annotated[
    WebhookSecretSuccess | UserErrors,
    strawberry.union("WebhookSecretResult", description="WebhookSecretSuccess or a user error."),
]
WebhookEndpointResult = Annotated[
    WebhookEndpointSuccess | UserErrors,
    strawberry.union(
        "WebhookEndpointResult", description="WebhookEndpointSuccess or a user error."
    ),
]


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = bounds.text("An http:// or https:// URL.", validation.URL)
    description: str = bounds.text("What it is for.", 2000, default="")
    event_types: list[str] = bounds.text(
        "Event types to receive (`kpi.measured`, `kpi.*`, `*`); empty: all.",
        64,
        each=True,
        default_factory=list,
    )


@strawberry.input(description="Changes to a webhook endpoint; omitted fields stay.")
class UpdateWebhookEndpointInput:
    id: strawberry.ID = strawberry.field(description="The endpoint.")
    url: str | None = bounds.text("New URL.", validation.URL, default=None)
    description: str | None = bounds.text("New description.", 2000, default=None)
    event_types: list[str] | None = bounds.text(
        "New event types (empty: all).", 64, each=True, default=None
    )
    enabled: bool | None = strawberry.field(
        default=None,
        description="false: stop deliveries; true: resume them with the failure count reset.",
    )


def _secret_success(secrets: dict[str, str]) -> Any:
    def success(row: Any) -> WebhookSecretSuccess:
        return WebhookSecretSuccess(
            endpoint=WebhookEndpoint.from_row(row), secret=secrets.get("secret")
        )

    return success


def _endpoint(row: Any) -> WebhookEndpointSuccess:
    return WebhookEndpointSuccess(endpoint=WebhookEndpoint.from_row(row))


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register a webhook endpoint (admins). The signing secret is in this "
        "response only."
    )
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput, idempotency_key: str | None = None
    ) -> WebhookSecretResult:
        secrets: dict[str, str] = {}

        async def action(session: AsyncSession, principal: Principal) -> Any:
            endpoint, secrets["secret"] = await catalog.create_webhook_endpoint(
                session, principal, **input_kwargs(input)
            )
            return endpoint

        return await run_mutation(
            info,
            "createWebhookEndpoint",
            input,
            idempotency_key,
            action,
            _secret_success(secrets),
        )

    @strawberry.mutation(description="Change, disable or re-enable a webhook endpoint (admins).")
    async def update_webhook_endpoint(
        self, info: Info, input: UpdateWebhookEndpointInput, idempotency_key: str | None = None
    ) -> WebhookEndpointResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await catalog.update_webhook_endpoint(
                session,
                principal,
                parse_id(input.id, "WebhookEndpoint", "input.id"),
                **input_kwargs(input, skip={"id"}),
            )

        return await run_mutation(
            info, "updateWebhookEndpoint", input, idempotency_key, action, _endpoint
        )

    @strawberry.mutation(
        description="Give a webhook endpoint a new signing secret (admins); the old one stops "
        "signing at once. The new secret is in this response only."
    )
    async def rotate_webhook_secret(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> WebhookSecretResult:
        secrets: dict[str, str] = {}

        async def action(session: AsyncSession, principal: Principal) -> Any:
            endpoint, secrets["secret"] = await catalog.rotate_webhook_secret(
                session, principal, parse_id(id, "WebhookEndpoint", "id")
            )
            return endpoint

        return await run_mutation(
            info, "rotateWebhookSecret", id, idempotency_key, action, _secret_success(secrets)
        )
