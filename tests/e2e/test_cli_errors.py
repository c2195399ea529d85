"""`okr` says clearly what is wrong and exits non-zero when it can't run:
a port in use, PostgreSQL or Redis unreachable, a database not migrated."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.db import async_url
from okrgraph.embedded import free_port
from tests.e2e.cli import okr

pytestmark = pytest.mark.e2e


async def test_dev_refuses_a_port_in_use_before_starting_anything(
    okr_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = await okr(
            "dev", "--port", str(port), "--data-dir", str(tmp_path / "d"), env=okr_env
        )
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use; choose another with --port" in out
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", ["serve", "worker"])
async def test_unreachable_postgres_is_a_clear_error(okr_env: dict[str, str], command: str) -> None:
    port = free_port()
    env = {**okr_env, "DATABASE_URL": f"postgresql://okr:secret@127.0.0.1:{port}/okr"}
    code, out = await okr(command, env=env)
    assert code == 1
    assert f"127.0.0.1:{port}/okr" in out
    assert "Connect call failed" in out
    assert "secret" not in out
    assert "Traceback" not in out


async def test_unmigrated_database_and_unreachable_redis(
    okr_env: dict[str, str], database_url: str, servers: Any
) -> None:
    async with empty_database(servers.postgres_url) as url:
        code, out = await okr(
            "serve", "--port", str(free_port()), env={**okr_env, "DATABASE_URL": url}
        )
    assert code == 1
    assert "run `okr migrate` first" in out

    redis_port = free_port()
    env = {
        **okr_env,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    code, out = await okr("worker", env=env)
    assert code == 1
    assert f"cannot connect to Redis at 127.0.0.1:{redis_port}/0" in out
    assert "Traceback" not in out


@asynccontextmanager
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"okr_empty_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("keys", "says"),
    [
        (None, "OKR_SECRET_KEYS is not set"),
        ("nope", "OKR_SECRET_KEYS: key 1 is not base64url of 32 bytes"),
    ],
)
async def test_serve_and_worker_refuse_to_start_without_a_secret_key(
    okr_env: dict[str, str], database_url: str, command: str, keys: str | None, says: str
) -> None:
    env = {k: v for k, v in okr_env.items() if k != "OKR_SECRET_KEYS"}
    env["DATABASE_URL"] = database_url
    if keys is not None:
        env["OKR_SECRET_KEYS"] = keys
    code, out = await okr(command, env=env)
    assert code == 2
    assert f"okr: {says}" in out
    assert "Traceback" not in out
