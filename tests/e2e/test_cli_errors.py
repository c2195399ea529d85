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


# Every command and bad input: one line naming the setting or option and what is
# wrong, a non-zero exit, no traceback, no password. `{db}` is a migrated database.
LONG = "x" * 300
BAD_URL = "postgresql//nope:pw@"
MYSQL = "mysql://okr:pw@127.0.0.1:3306/okr"
DB_COMMANDS = [
    ["migrate"],
    ["seed"],
    ["serve", "--port", "{free}"],
    ["worker"],
    ["webhooks", "reseal"],
    ["org", "list"],
    ["org", "create", "--slug", "s", "--name", "n", "--admin-email", "a@b.example"],
    ["token", "create", "--org", "demo", "--name", "n", "--integration", "ci"],
    ["token", "list", "--org", "demo"],
    ["token", "revoke", "okr_abcdef", "--org", "demo"],
    ["dev", "--port", "{free}", "--data-dir", "{tmp}"],
]
CASES: list[tuple[list[str], dict[str, str], int, str]] = [
    *[(c, {"DATABASE_URL": BAD_URL}, 2, "okr: DATABASE_URL is not a URL") for c in DB_COMMANDS],
    *[(c, {"DATABASE_URL": MYSQL}, 2, "okr: DATABASE_URL is a mysql:// URL") for c in DB_COMMANDS],
    (["migrate"], {"DATABASE_URL": "postgresql://h:99999/x"}, 2, "DATABASE_URL: port 99999"),
    *[
        (c, {"DATABASE_URL": "{db}", "REDIS_URL": "http://pw@x"}, 2, "okr: REDIS_URL is a http://")
        for c in (["serve", "--port", "{free}"], ["worker"], ["worker", "--check"])
    ],
    (["serve", "--port", "70000"], {}, 2, "okr: serve: Invalid value for '--port'"),
    (["dev", "--port", "70000"], {}, 2, "okr: dev: Invalid value for '--port'"),
    (["serve"], {"OKR_PORT": "70000"}, 2, "okr: --port or OKR_PORT: port 70000 is not a TCP port"),
    (["serve"], {"OKR_PORT": "abc"}, 2, "okr: OKR_PORT: Input should be a valid integer"),
    (
        ["serve", "--host", "192.0.2.1", "--port", "{free}"],
        {},
        2,
        "okr: --host or OKR_HOST: host 192.0.2.1 is not an address of this machine",
    ),
    (["serve", "--host", "no-such-host.invalid"], {}, 2, "is not an address or a name"),
    (
        ["dev", "--port", "{free}", "--data-dir", "{tmp}"],
        {"OKR_HOST": "192.0.2.1"},
        2,
        "okr: OKR_HOST: host 192.0.2.1 is not an address of this machine",
    ),
    (
        ["token", "create", "--org", "demo", "--name", LONG, "--integration", "ci"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --name: At most 200 characters",
    ),
    (
        ["token", "create", "--org", "demo", "--name", "n", "--integration", LONG],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --integration: At most 200 characters",
    ),
    (
        ["token", "create", "--org", "demo", "--name", "n", "--person", f"{LONG * 2}@x.example"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --person: At most 320 characters",
    ),
    (
        [
            "token",
            "create",
            "--org",
            "demo",
            "--name",
            "n",
            "--integration",
            "ci",
            "--scope",
            "root",
        ],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --scope: Unknown scope 'root'",
    ),
    (
        ["org", "create", "--slug", LONG, "--name", "n", "--admin-email", "a@b.example"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --slug: At most 100 characters",
    ),
    (
        ["org", "create", "--slug", "Not A Slug", "--name", "n", "--admin-email", "a@b.example"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --slug: 'Not A Slug' is not a slug",
    ),
    (
        ["org", "create", "--slug", "ok", "--name", LONG, "--admin-email", "a@b.example"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --name: At most 200 characters",
    ),
    (
        ["org", "create", "--slug", "ok", "--name", "n", "--admin-email", "nobody"],
        {"DATABASE_URL": "{db}"},
        2,
        "okr: --admin-email: 'nobody' is not an e-mail address",
    ),
    (
        ["token", "list", "--org", "nope"],
        {"DATABASE_URL": "{db}"},
        1,
        "okr: no organisation with slug 'nope'",
    ),
    (
        ["token", "revoke", "not-a-token", "--org", "nope"],
        {"DATABASE_URL": "{db}"},
        1,
        "okr: no organisation with slug 'nope'",
    ),
    (["token", "list"], {}, 2, "okr: token list: Missing option '--org'"),
    (["org", "list", "--data-dir", "{tmp}"], {}, 1, "no embedded PostgreSQL there"),
    (["token", "list"], {"DATABASE_URL": "{db}"}, 2, "Missing option '--org'"),
    (["nope"], {}, 2, "okr: No such command 'nope'"),
]


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    CASES,
    ids=[" ".join(c[0])[:40] + f"|{c[3][:30]}" for c in CASES],
)
async def test_bad_input_is_one_line_and_a_non_zero_exit(
    okr_env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    code: int,
    says: str,
) -> None:
    fill = {"{db}": database_url, "{free}": str(free_port()), "{tmp}": str(tmp_path / "d")}
    args = [fill.get(a, a) for a in args]
    child_env = {**okr_env, **{k: fill.get(v, v) for k, v in env.items()}}
    got, out = await okr(*args, env=child_env)
    lines = out.strip().splitlines()
    assert (got, len(lines)) == (code, 1), out
    assert says in lines[0], out
    assert lines[0].startswith("okr: ")
    assert "Traceback" not in out
    assert ":pw@" not in out
    assert "pw@x" not in out
