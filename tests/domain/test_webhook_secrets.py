"""Webhook secrets at rest: a dump alone cannot sign. The stored column is ciphertext
bound to its endpoint; only the configured keys open it; keys rotate; migration
0004 erases plaintext secrets and disables their endpoints."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from okrgraph.devmode import dev_secret_keys
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import async_url, create_engine, create_sessionmaker, set_tenant
from okrgraph.domain.errors import ValidationFailed
from okrgraph.domain.migrate import migrate
from okrgraph.domain.models import WebhookEndpoint
from okrgraph.domain.notifications import slack
from okrgraph.domain.webhooks import catalog
from okrgraph.domain.webhooks.operations import reseal_all, reseal_org
from okrgraph.domain.webhooks.secrets import (
    Keyring,
    SecretKeyMissing,
    SecretUnreadable,
    keyring,
    new_key,
)
from tests.conftest import Servers, new_database
from tests.factories import make_org, make_webhook_endpoint

ORG, ENDPOINT = uuid.uuid4(), uuid.uuid4()
SECRET = catalog.new_secret()


def test_the_sealed_secret_is_not_the_secret_and_opens_to_it() -> None:
    ring = Keyring.parse(new_key())
    sealed = ring.seal(SECRET, ORG, ENDPOINT)
    assert not sealed.startswith("whsec")
    assert SECRET not in sealed
    assert SECRET.removeprefix("whsec_") not in sealed
    assert ring.open(sealed, ORG, ENDPOINT) == SECRET
    # A fresh nonce each time: sealing twice gives two ciphertexts.
    assert ring.seal(SECRET, ORG, ENDPOINT) != sealed


def test_a_wrong_key_fails_clearly() -> None:
    sealed = Keyring.parse(new_key()).seal(SECRET, ORG, ENDPOINT)
    other = Keyring.parse(new_key())
    with pytest.raises(SecretUnreadable, match=r"sealed under key \w+, which is not in OKR_"):
        other.open(sealed, ORG, ENDPOINT)


def test_a_sealed_secret_opens_only_for_its_endpoint_and_unaltered() -> None:
    ring = Keyring.parse(new_key())
    sealed = ring.seal(SECRET, ORG, ENDPOINT)
    with pytest.raises(SecretUnreadable, match="moved from another endpoint"):
        ring.open(sealed, ORG, uuid.uuid4())
    with pytest.raises(SecretUnreadable, match="moved from another endpoint"):
        ring.open(sealed, uuid.uuid4(), ENDPOINT)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretUnreadable):
        ring.open(flipped, ORG, ENDPOINT)
    with pytest.raises(SecretUnreadable, match="not a sealed secret"):
        ring.open(SECRET, ORG, ENDPOINT)


def test_keys_rotate_new_secrets_under_the_newest_old_ones_still_open() -> None:
    old, new = new_key(), new_key()
    before = Keyring.parse(old).seal(SECRET, ORG, ENDPOINT)
    rotated = Keyring.parse(f"{new}, {old}")
    assert rotated.open(before, ORG, ENDPOINT) == SECRET
    assert not rotated.is_current(before)
    after = rotated.seal(SECRET, ORG, ENDPOINT)
    assert rotated.is_current(after)
    assert Keyring.parse(new).open(after, ORG, ENDPOINT) == SECRET
    with pytest.raises(SecretUnreadable):
        Keyring.parse(old).open(after, ORG, ENDPOINT)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "OKR_SECRET_KEYS is not set"),
        (" , ", "OKR_SECRET_KEYS is not set"),
        ("short", "key 1 is not base64url of 32 bytes"),
        (f"{new_key()},{new_key()[:-4]}", "key 2 is not base64url of 32 bytes"),
        ("!" * 43, "key 1 is not base64url"),
    ],
)
def test_a_missing_or_malformed_key_setting_says_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(SecretKeyMissing, match=message):
        Keyring.parse(value)


async def test_reseal_moves_every_secret_to_the_newest_key(db: AsyncSession) -> None:
    org = await make_org(db)
    secrets = [catalog.new_secret() for _ in range(3)]
    endpoints = [await make_webhook_endpoint(db, org.id, secret=s) for s in secrets]
    old = keyring()
    new = Keyring.parse(f"{new_key()},{os.environ['OKR_SECRET_KEYS']}")
    done = await reseal_org(db, org.id, new)
    assert (done.resealed, done.current, done.unreadable) == (3, 0, [])
    again = await reseal_org(db, org.id, new)
    assert (again.resealed, again.current) == (0, 3)
    only_new = Keyring(new.keys[:1])
    for endpoint, secret in zip(endpoints, secrets, strict=True):
        assert catalog.signing_secret(endpoint, only_new) == secret
        with pytest.raises(SecretUnreadable):
            catalog.signing_secret(endpoint, old)


async def test_reseal_moves_the_slack_webhook_too_and_names_the_org_when_lost(
    db: AsyncSession,
) -> None:
    org = await make_org(db)
    url = "https://hooks.slack.com/services/T1/B2/s3cr3t"
    org.slack_webhook_sealed = keyring().seal(url, org.id, org.id)
    await db.flush()
    new = Keyring.parse(f"{new_key()},{os.environ['OKR_SECRET_KEYS']}")
    done = await reseal_org(db, org.id, new)
    assert (done.resealed, done.current, done.unreadable) == (1, 0, [])
    assert slack.webhook_url(org, Keyring(new.keys[:1])) == url
    org.slack_webhook_sealed = Keyring.parse(new_key()).seal(url, org.id, org.id)
    await db.flush()
    lost = await reseal_org(db, org.id, new)
    assert (lost.resealed, lost.unreadable) == (0, [org.id])


async def test_reseal_reports_what_no_key_opens(
    fresh_database: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=1)
        sm = create_sessionmaker(engine)
        try:
            async with sm() as session, session.begin():
                org = await make_org(session)
                lost = await make_webhook_endpoint(session, org.id)
                lost.secret_sealed = Keyring.parse(new_key()).seal(SECRET, org.id, lost.id)
                await make_webhook_endpoint(session, org.id)
            ring = Keyring.parse(f"{new_key()},{os.environ['OKR_SECRET_KEYS']}")
            done = await reseal_all(sm, ring)
        finally:
            await engine.dispose()
    assert (done.resealed, done.current, done.unreadable) == (1, 0, [lost.id])


def test_okr_dev_makes_its_key_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    key = dev_secret_keys(tmp_path / "data")
    path = tmp_path / "data" / "secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.parse(key).current_id
    assert dev_secret_keys(tmp_path / "data") == key


async def test_upgrade_erases_plaintext_secrets_and_disables_their_endpoints(
    servers: Servers,
) -> None:
    endpoint_id = uuid.uuid4()
    async with new_database(servers.postgres_url, migrated=False) as url:
        await migrate(url, "0003_auth")
        owner = create_async_engine(async_url(url))  # the schema owner, as migrations run
        try:
            org_id = uuid.uuid4()
            async with AsyncSession(owner) as session, session.begin():
                # Rows as of 0003, in SQL: today's models have columns it lacks.
                await session.execute(
                    text(
                        "INSERT INTO organizations (id, name, slug, cycle_cadence, rollup_mode,"
                        " reminder_cadence_days, timezone)"
                        " VALUES (:o, 'Old', :slug, 'QUARTER', 'WEIGHTED_MEAN', 7, 'UTC')"
                    ),
                    {"o": org_id, "slug": f"old-{org_id}"},
                )
                await session.execute(
                    text(
                        "INSERT INTO webhook_endpoints (org_id, id, url, secret)"
                        " VALUES (:o, :e, 'https://h.example.test', :s)"
                    ),
                    {"o": org_id, "e": endpoint_id, "s": SECRET},
                )
            await migrate(url)
            async with AsyncSession(owner) as session, session.begin():
                await set_tenant(session, org_id)
                dump = " ".join(
                    map(str, (await session.execute(text("SELECT * FROM webhook_endpoints"))).one())
                )
                endpoint = await session.get_one(WebhookEndpoint, (org_id, endpoint_id))
                assert endpoint.secret_sealed is None
                assert endpoint.enabled is False
                assert endpoint.disabled_at is not None
                assert SECRET.removeprefix("whsec_") not in dump
                # It cannot be enabled before it has a secret again; rotation gives it one.
                admin = system_principal(org_id)
                with pytest.raises(ValidationFailed) as refused:
                    await catalog.update_webhook_endpoint(session, admin, endpoint_id, enabled=True)
                assert refused.value.field == "input.enabled"
                _, secret = await catalog.rotate_webhook_secret(session, admin, endpoint_id)
                await catalog.update_webhook_endpoint(session, admin, endpoint_id, enabled=True)
                assert endpoint.enabled is True
                assert catalog.signing_secret(endpoint) == secret
        finally:
            await owner.dispose()
