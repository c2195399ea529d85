"""The one rule for where webhooks may go (create time and send time alike)."""

from __future__ import annotations

import pytest

from okrgraph.domain.webhooks.addresses import AddressRefused, address_allowed, resolve_allowed

REFUSED = [
    "127.0.0.1",  # loopback
    "127.5.6.7",
    "::1",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "fd00::1",
    "169.254.169.254",  # link-local (cloud metadata)
    "fe80::1",
    "224.0.0.1",  # multicast
    "ff02::1",
    "240.0.0.1",  # reserved
    "0.0.0.0",  # unspecified
    "::",
    "100.64.0.1",  # shared address space (carrier-grade NAT): not global
    "192.0.2.1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_public_addresses_are_refused_unless_the_organisation_allows_them(ip: str) -> None:
    assert not address_allowed(ip, allow_private=False)
    assert address_allowed(ip, allow_private=True)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert address_allowed(ip, allow_private=False)


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    with pytest.raises(AddressRefused, match="address not allowed"):
        await resolve_allowed("localhost", 80, allow_private=False)
    assert [str(a) for a in await resolve_allowed("127.0.0.1", 80, allow_private=True)] == [
        "127.0.0.1"
    ]
    with pytest.raises(AddressRefused, match="could not resolve"):
        await resolve_allowed("no-such-host.invalid", 80, allow_private=True)
