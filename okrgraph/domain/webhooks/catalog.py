"""Webhook endpoints as admins manage them: create, change, disable/enable, rotate
the signing secret, and list them. Deliveries are the worker's business.

The secret follows the Standard Webhooks format: `whsec_` + base64 of 32 random
bytes. It is returned once (at creation and at rotation) and stored sealed
under the operator's key (`secrets.py`), never in plaintext; the API never
shows it again, and `signing_secret` is the one way back to it.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, Forbidden, ValidationFailed
from okrgraph.domain.graph.queries import Order, Page, page_of
from okrgraph.domain.lookup import get_row
from okrgraph.domain.models import WebhookEndpoint
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.validation import text_field
from okrgraph.domain.webhooks.secrets import Keyring, SecretUnreadable, keyring
from okrgraph.domain.webhooks.url_policy import require_allowed_url

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000
MAX_EVENT_TYPES = 50
EVENT_TYPE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
BY_CREATED = Order()


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def may_see_endpoints(principal: Principal | None) -> bool:
    return principal is not None and principal.is_admin


def well_formed_url(value: str, field: str = "input.url") -> str:
    """The URL, stripped: http(s) with a host, no spaces or credentials, bounded."""
    url = value.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(
            field,
            f"Give a URL of at most {MAX_URL_LENGTH} characters.",
            ErrorCode.TEXT_TOO_LONG,
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValidationFailed(
            field, "Must be an http:// or https:// URL with a host.", ErrorCode.INVALID_FORMAT
        )
    if any(c.isspace() for c in url) or parts.username or parts.password:
        raise ValidationFailed(
            field, "No spaces or credentials in the URL.", ErrorCode.INVALID_FORMAT
        )
    return url


def event_type_filter(values: list[str], field: str = "input.eventTypes") -> list[str]:
    """Event type names (`kpi.measured`), `prefix.*`, or `*`; empty means every event.
    The filter of an endpoint and of the live event stream (`field`: the input's path)."""
    if len(values) > MAX_EVENT_TYPES:
        raise ValidationFailed(field, f"At most {MAX_EVENT_TYPES} event types.", ErrorCode.TOO_MANY)
    out: list[str] = []
    for i, value in enumerate(values):
        value = value.strip()
        if len(value) > 64 or not EVENT_TYPE.match(value):
            raise ValidationFailed(
                f"{field}.{i}",
                "Use names such as `kpi.measured`, `kpi.*` or `*`.",
                ErrorCode.INVALID_FORMAT,
            )
        if value not in out:
            out.append(value)
    return out


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return await get_row(session, WebhookEndpoint, endpoint_id)


async def create_webhook_endpoint(
    session: AsyncSession,
    principal: Principal,
    *,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new, enabled endpoint; returns it with its signing secret (shown once).
    Its URL must point at a public address unless the organisation allows others
    (url_policy.py)."""
    require_admin(principal)
    url = well_formed_url(url)
    description = text_field(description, "input.description", max_length=2000, required=False)
    event_types = event_type_filter(event_types or [])
    await require_allowed_url(session, url)
    endpoint_id, secret = uuid.uuid4(), new_secret()
    endpoint = WebhookEndpoint(
        org_id=principal.org_id,
        id=endpoint_id,
        url=url,
        description=description,
        event_types=event_types,
        secret_sealed=keyring().seal(secret, principal.org_id, endpoint_id),
        enabled=True,
        failure_count=0,
    )
    session.add(endpoint)
    await session.flush()
    record_audit(
        session,
        principal,
        "webhook_endpoint.created",
        SubjectType.WEBHOOK_ENDPOINT,
        endpoint.id,
        {"url": endpoint.url, "event_types": endpoint.event_types},
    )
    return endpoint, secret


def signing_secret(endpoint: WebhookEndpoint, ring: Keyring | None = None) -> str:
    """The endpoint's plaintext `whsec_` secret, to sign a delivery with;
    `SecretUnreadable` when it has none or no configured key opens it."""
    if endpoint.secret_sealed is None:
        raise SecretUnreadable(f"endpoint {endpoint.id} has no signing secret; rotate it")
    return (ring or keyring()).open(endpoint.secret_sealed, endpoint.org_id, endpoint.id)


async def update_webhook_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    *,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling one (again) clears its failure count, so a receiver
    that was down gets a fresh start; disabling stops deliveries to it."""
    require_admin(principal)
    endpoint = await get_endpoint(session, endpoint_id)
    changes: dict[str, Any] = {}
    if url is not None:
        endpoint.url = changes["url"] = well_formed_url(url)
    if description is not None:
        endpoint.description = changes["description"] = text_field(
            description, "input.description", max_length=2000, required=False
        )
    if event_types is not None:
        endpoint.event_types = changes["event_types"] = event_type_filter(event_types)
    if "url" in changes:
        await require_allowed_url(session, endpoint.url)
    if enabled is True and not endpoint.enabled:
        if endpoint.secret_sealed is None:
            raise ValidationFailed(
                "input.enabled",
                "This endpoint has no signing secret (the upgrade to encrypted secrets "
                "erased it): give it one with rotateWebhookSecret, then enable it.",
                ErrorCode.SECRET_MISSING,
            )
        endpoint.enabled = changes["enabled"] = True
        endpoint.disabled_at = None
        endpoint.failure_count = 0
    elif enabled is False and endpoint.enabled:
        endpoint.enabled = changes["enabled"] = False
        endpoint.disabled_at = now or datetime.now(UTC)
    await session.flush()
    record_audit(
        session,
        principal,
        "webhook_endpoint.updated",
        SubjectType.WEBHOOK_ENDPOINT,
        endpoint.id,
        changes,
    )
    return endpoint


async def rotate_webhook_secret(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, effective for the next delivery; returns it once."""
    require_admin(principal)
    endpoint = await get_endpoint(session, endpoint_id)
    secret = new_secret()
    endpoint.secret_sealed = keyring().seal(secret, endpoint.org_id, endpoint.id)
    await session.flush()
    record_audit(
        session,
        principal,
        "webhook_endpoint.secret_rotated",
        SubjectType.WEBHOOK_ENDPOINT,
        endpoint.id,
    )
    return endpoint, secret


async def endpoints_page(
    session: AsyncSession, principal: Principal, page: Page, *, enabled: bool | None = None
) -> list[WebhookEndpoint]:
    """The organisation's endpoints, oldest first (admins only)."""
    if not may_see_endpoints(principal):
        raise Forbidden(
            "Only admins (with an `admin`-scoped token) see webhook endpoints.",
            ErrorCode.ADMIN_REQUIRED,
        )
    where = [] if enabled is None else [WebhookEndpoint.enabled.is_(enabled)]
    return await page_of(session, WebhookEndpoint, where=where, order=BY_CREATED, page=page)
