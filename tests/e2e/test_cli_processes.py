"""`okr migrate`, `okr seed` and `okr serve` as real processes, as the README's
command table promises: migrate and seed are idempotent, serve refuses a taken
port and runs without Redis (writes land in the outbox; /readyz says 503)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from okrgraph.domain.db import async_url
from okrgraph.embedded import free_port
from tests.e2e.cli import okr
from tests.e2e.test_cli_errors import empty_database

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 60.0


async def _scalar(url: str, sql: str) -> Any:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def test_migrate_then_seed_each_twice(okr_env: dict[str, str], servers: Any) -> None:
    async with empty_database(servers.postgres_url) as url:
        env = {**okr_env, "DATABASE_URL": url}
        for _ in range(2):  # the second run finds everything done
            code, out = await okr("migrate", env=env)
            assert code == 0, out
            assert "Traceback" not in out
        assert await _scalar(url, "SELECT count(*) FROM alembic_version") == 1
        code, out = await okr("seed", env=env)
        assert code == 0, out
        token = out.split("admin token (shown once): ", 1)[1].split()[0]
        assert token.startswith("okr_")
        code, again = await okr("seed", env=env)
        assert code == 0, again
        assert "demo organisation already exists" in again
        assert token not in again
        assert await _scalar(url, "SELECT count(*) FROM organizations") == 1


async def test_serve_refuses_a_taken_port(okr_env: dict[str, str], database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = await okr(
            "serve", "--port", str(port), env={**okr_env, "DATABASE_URL": database_url}
        )
    assert code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in out
    assert "Traceback" not in out


class Serve:
    """`okr serve` in a subprocess; a thread collects its output lines. `started` is
    set once each of its `workers` processes has started its app (or it ended)."""

    def __init__(self, port: int, env: dict[str, str], workers: int = 1) -> None:
        self.lines: list[str] = []
        self.started = threading.Event()
        self.port, self.workers = port, workers
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "okrgraph",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],  # fmt: skip
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        startups = 0
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            startups += "Application startup complete" in line
            if startups >= self.workers:
                self.started.set()
        self.started.set()  # ended: the waiter looks at the exit code


@pytest.fixture
def serving() -> Iterator[list[Serve]]:
    runs: list[Serve] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            run.proc.terminate()
            try:
                run.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()


CHECK_IN = """mutation($input: CheckInInput!) { checkIn(input: $input) { __typename } }"""
# Key results a check-in may move: driven by check-ins, in an open cycle (which
# objective comes first is up to the ids the seed drew).
KEY_RESULTS = """{ objectives(first: 50) { nodes { cycle { state }
    keyResults(first: 20) { nodes { id progressDriver state } } } } }"""


@asynccontextmanager
async def demo_served(
    okr_env: dict[str, str], servers: Any, serving: list[Serve], workers: int = 1
) -> AsyncIterator[tuple[str, str, Serve]]:
    """A migrated, seeded empty database served by a real `okr serve` with no Redis:
    (its URL, the demo admin token, the server)."""
    async with empty_database(servers.postgres_url) as url:
        env = {**okr_env, "DATABASE_URL": url}
        assert (await okr("migrate", env=env))[0] == 0
        code, out = await okr("seed", env=env)
        assert code == 0, out
        token = out.split("admin token (shown once): ", 1)[1].split()[0]
        run = Serve(
            free_port(), {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, workers=workers
        )
        serving.append(run)
        assert run.started.wait(START_TIMEOUT_S), "\n".join(run.lines)
        assert run.proc.poll() is None, "\n".join(run.lines)
        yield url, token, run


async def test_serve_runs_without_redis(
    okr_env: dict[str, str], servers: Any, serving: list[Serve]
) -> None:
    async with demo_served(okr_env, servers, serving) as (url, token, run):
        base = f"http://127.0.0.1:{run.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503  # no Redis
            auth = {"Authorization": f"Bearer {token}"}
            found = await client.post("/graphql", json={"query": KEY_RESULTS}, headers=auth)
            kr = next(
                k["id"]
                for o in found.json()["data"]["objectives"]["nodes"]
                if o["cycle"]["state"] == "ACTIVE"
                for k in o["keyResults"]["nodes"]
                if k["progressDriver"] == "CHECK_INS" and k["state"] == "ACTIVE"
            )
            variables = {"input": {"keyResultId": kr, "value": 1}}
            response = await client.post(
                "/graphql", json={"query": CHECK_IN, "variables": variables}, headers=auth
            )
        assert response.json() == {"data": {"checkIn": {"__typename": "CheckInSuccess"}}}
        pending = "SELECT count(*) FROM outbox_events WHERE type = 'checkin.created'"
        assert await _scalar(url, pending) >= 1  # waits there for the worker's relay


async def test_serve_with_two_workers_answers_from_both_processes(
    okr_env: dict[str, str], servers: Any, serving: list[Serve]
) -> None:
    async with demo_served(okr_env, servers, serving, workers=2) as (_, token, run):
        workers = {line.rsplit("[", 1)[1].rstrip("]") for line in run.lines
                   if "Started server process [" in line}  # fmt: skip
        assert len(workers) == 2, "\n".join(run.lines)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.port}", timeout=10) as client:
            answers = await asyncio.gather(*(
                client.post("/graphql", json={"query": "{ organization { name } }"}, headers=auth)
                for _ in range(20)
            ))  # fmt: skip
        assert {a.json()["data"]["organization"]["name"] for a in answers} == {"Acme Rockets"}
