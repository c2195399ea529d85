"""Where a webhook may be sent: public addresses only, unless the organisation allows
private ones (`organizations.allow_private_webhook_urls`: tests, `okr dev`).

`address_allowed` is the one rule, used when an endpoint is created (its host as
given) and again at every send (every address its name resolves to then), so a
name that resolved to a public address at creation and to 127.0.0.1 later (DNS
rebinding) is refused. The sender connects to the address it checked, never
resolving the name a second time (transport.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The host resolves to an address webhooks may not reach (or to none)."""


def address_allowed(ip: IPAddress | str, allow_private: bool) -> bool:
    """Whether a webhook may be sent to `ip`: a public unicast address, or any address
    when the organisation allows private ones. Refused: loopback, private,
    link-local, multicast, reserved, unspecified and other non-global ranges
    (shared 100.64/10, documentation); an IPv4-mapped IPv6 address is judged as
    the IPv4 address it carries."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    refused = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
    return not refused


async def resolve_allowed(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Every address `host` resolves to, in resolver order; `AddressRefused` when
    it resolves to none or any of them is not allowed (all must be: a receiver's
    name should not mix public and private addresses)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise AddressRefused(f"could not resolve {host}: {exc.strerror}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise AddressRefused(f"could not resolve {host}")
    if not all(address_allowed(a, allow_private) for a in addresses):
        raise AddressRefused("address not allowed")
    return addresses
