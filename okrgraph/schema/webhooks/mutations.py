"""Managing webhook endpoints (admins)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.webhooks import catalog, redelivery, url_policy
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.node import input_kwargs, parse_id
from okrgraph.schema.organizations.types import Organization
from okrgraph.schema.payloads import UserErrors, run_mutation
from okrgraph.schema.webhooks.types import WebhookDelivery, WebhookEndpoint


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


@strawberry.type(description="The delivery, queued to be sent again.")
class WebhookDeliverySuccess:
    delivery: WebhookDelivery = strawberry.field(description="The delivery.")


@strawberry.type(description="The organisation with its webhook policy.")
class WebhookPolicySuccess:
    organization: Organization = strawberry.field(description="The organisation.")


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
WebhookDeliveryResult = Annotated[
    WebhookDeliverySuccess | UserErrors,
    strawberry.union(
        "WebhookDeliveryResult", description="WebhookDeliverySuccess or a user error."
    ),
]
WebhookPolicyResult = Annotated[
    WebhookPolicySuccess | UserErrors,
    strawberry.union("WebhookPolicyResult", description="WebhookPolicySuccess or a user error."),
]


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = bounds.text(
        "An http:// or https:// URL whose host is a public address (URL_NOT_ALLOWED "
        "otherwise, unless the organisation allows private URLs: setWebhookPolicy).",
        validation.URL,
    )
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
    url: str | None = bounds.text(
        "New URL (a public address, as at creation).", validation.URL, default=None
    )
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

    @strawberry.mutation(
        description="Send a delivery again, now, with the same `webhook-id` (admins); its "
        "attempts log goes on. ENDPOINT_DISABLED while its endpoint is disabled."
    )
    async def redeliver_webhook(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> WebhookDeliveryResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await redelivery.redeliver_webhook(
                session, principal, parse_id(id, "WebhookDelivery", "id")
            )

        return await run_mutation(
            info,
            "redeliverWebhook",
            id,
            idempotency_key,
            action,
            lambda row: WebhookDeliverySuccess(delivery=WebhookDelivery.from_row(row)),
        )

    @strawberry.mutation(
        description="Whether webhook URLs may point at loopback, private and link-local "
        "addresses (admins; off by default, on for `okr dev`'s demo organisation)."
    )
    async def set_webhook_policy(
        self, info: Info, allow_private_urls: bool, idempotency_key: str | None = None
    ) -> WebhookPolicyResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await url_policy.set_webhook_policy(
                session, principal, allow_private_urls=allow_private_urls
            )

        return await run_mutation(
            info,
            "setWebhookPolicy",
            {"allowPrivateUrls": allow_private_urls},
            idempotency_key,
            action,
            lambda row: WebhookPolicySuccess(organization=Organization.from_row(row)),
        )
