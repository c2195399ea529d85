"""Where webhook URLs may point: a guard against server-side request forgery.

An endpoint's URL is checked when it is created or changed: its host is
resolved, and every address it resolves to must be a public one. A loopback,
private, link-local, shared (100.64/10), multicast, reserved or unspecified
address is refused, and so is a host that does not resolve (it could later
resolve to anything). Resolving catches the spellings of an address that are
not literal IPs (`localhost`, `2130706433`, `0x7f.1`). An organisation that
allows private URLs (`okr dev`, tests, an on-premise receiver) skips the check.
The rule on addresses is the sender's (`addresses.address_allowed`), which
checks again when it connects (DNS can change).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.access import require_admin
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, ValidationFailed
from okrgraph.domain.models import Organization
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.organizations.queries import current_organization
from okrgraph.domain.webhooks.addresses import IPAddress, address_allowed

RESOLVE_TIMEOUT_S = 5.0


async def resolve(host: str) -> list[IPAddress]:
    """Every address `host` resolves to (a literal IP to itself); [] when it does not."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except (OSError, UnicodeError, TimeoutError):
        return []
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


async def require_allowed_url(session: AsyncSession, url: str, field: str = "input.url") -> None:
    """Refuse (URL_NOT_ALLOWED) a well-formed http(s) URL whose host is not public,
    unless the transaction's organisation allows private webhook URLs."""
    organization = await current_organization(session)
    if organization.allow_private_webhook_urls:
        return
    host = urlsplit(url).hostname or ""
    addresses = await resolve(host)
    if not addresses:
        raise ValidationFailed(
            field, f"The host {host!r} does not resolve.", ErrorCode.URL_NOT_ALLOWED
        )
    refused = [a for a in addresses if not address_allowed(a, False)]
    if refused:
        raise ValidationFailed(
            field,
            f"The host {host!r} is (or resolves to) {refused[0]}, which is not a public "
            "address; an admin may allow private URLs with setWebhookPolicy.",
            ErrorCode.URL_NOT_ALLOWED,
        )


async def set_webhook_policy(
    session: AsyncSession, principal: Principal, *, allow_private_urls: bool
) -> Organization:
    """Allow (or stop allowing) webhook URLs to non-public addresses (admins).
    Existing endpoints keep their URLs; the sender applies the setting when it connects."""
    require_admin(principal)
    organization = await current_organization(session)
    if organization.allow_private_webhook_urls != allow_private_urls:
        organization.allow_private_webhook_urls = allow_private_urls
        await session.flush()
        record_audit(
            session,
            principal,
            "organization.webhook_policy_changed",
            SubjectType.ORGANIZATION,
            organization.id,
            {"allow_private_webhook_urls": allow_private_urls},
        )
    return organization
