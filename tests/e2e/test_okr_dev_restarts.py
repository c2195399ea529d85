"""`okr dev` keeps serving when a child dies: the worker killed with SIGKILL is
restarted (with a message saying what died and how), so is embedded Redis, and a
check-in over HTTP still reaches its objective through the worker each time. With
no OKR_SECRET_KEYS it makes its own key, once, readable only by its owner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis.asyncio as aioredis

from okrgraph import devmode
from okrgraph.domain.messages import progress_channel
from okrgraph.schema.node import from_global_id
from tests.e2e.test_okr_dev import OkrDev, start, started

__all__ = ["started"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

CONVERGE_TIMEOUT_S = 60.0
KEY_RESULTS = """{
  organization { id }
  objectives(first: 50) {
    nodes { id keyResults(first: 10) { nodes { id kind start target progressDriver } } }
  }
}"""
CHECK_IN = """mutation($input: CheckInInput!) {
  checkIn(input: $input) { __typename }
}"""


def child(run: OkrDev, ends_with: str) -> psutil.Process:
    [found] = [
        p
        for p in psutil.Process(run.proc.pid).children()
        if " ".join(p.cmdline()).endswith(ends_with)
    ]
    return found


def redis_server(run: OkrDev) -> psutil.Process:
    [found] = [p for p in psutil.Process(run.proc.pid).children() if p.name() == "redis-server"]
    return found


def kill_and_await_restart(run: OkrDev, proc: psutil.Process, name: str) -> None:
    proc.send_signal(signal.SIGKILL)
    said = run.wait_for(f"okr: the {name} died")
    assert said == f"okr: the {name} died (exit code -9, killed by SIGKILL); restarting it in 1 s"
    assert run.wait_for(f"okr: restarted the {name}").startswith(f"okr: restarted the {name} (pid ")


async def next_change(pubsub: Any, subject: uuid.UUID) -> dict[str, Any]:
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is None:
            continue
        for change in json.loads(message["data"])["changes"]:
            if change["id"] == str(subject):
                return dict(change)
    raise AssertionError(f"no change of {subject} within {CONVERGE_TIMEOUT_S} s")


async def check_in_converges(run: OkrDev, token: str, fraction: float) -> None:
    """A check-in over HTTP at `fraction` of the way, and its objective's change
    published by the worker (awaited on the progress channel)."""
    redis_url = child(run, "-m okrgraph serve").environ()["REDIS_URL"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{run.port}", headers=headers, timeout=20
    ) as http:
        body = (await http.post("/graphql", json={"query": KEY_RESULTS})).json()
        parsed = from_global_id(body["data"]["organization"]["id"])
        assert parsed is not None
        objective, kr = next(
            (o["id"], k)
            for o in body["data"]["objectives"]["nodes"]
            for k in o["keyResults"]["nodes"]
            if k["kind"] == "INCREASE" and k["progressDriver"] == "CHECK_INS"
        )
        objective_id = from_global_id(objective)
        assert objective_id is not None
        client = aioredis.Redis.from_url(redis_url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(progress_channel(parsed[1]))
            value = kr["start"] + fraction * (kr["target"] - kr["start"])
            response = await http.post(
                "/graphql",
                json={
                    "query": CHECK_IN,
                    "variables": {"input": {"keyResultId": kr["id"], "value": value}},
                },
            )
            assert response.json()["data"]["checkIn"]["__typename"] == "CheckInSuccess"
            await next_change(pubsub, objective_id[1])
        finally:
            await pubsub.aclose()
            await client.aclose()


def test_okr_dev_restarts_a_killed_worker_and_redis_and_keeps_serving(
    started: list[OkrDev], okr_env: dict[str, str], data_dir: Path
) -> None:
    env = {k: v for k, v in okr_env.items() if k not in ("OKR_SECRET_KEYS", "OKR_SECRET_KEY")}
    run, token = start(started, data_dir, env)
    key_file = data_dir / "secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    api = child(run, "-m okrgraph serve")
    assert api.environ()["OKR_SECRET_KEYS"] == key_file.read_text().strip()

    worker = child(run, "-m okrgraph worker")
    kill_and_await_restart(run, worker, "worker")
    assert child(run, "-m okrgraph worker").pid != worker.pid
    asyncio.run(check_in_converges(run, token, 0.37))

    kill_and_await_restart(run, redis_server(run), "embedded Redis")
    asyncio.run(check_in_converges(run, token, 0.81))

    # The API served throughout; a stop still stops everything.
    assert child(run, "-m okrgraph serve").pid == api.pid
    assert run.stop(signal.SIGTERM) == 0
    assert run.lines[-1] == "stopped"


def test_a_child_that_dies_at_once_is_restarted_with_a_doubling_backoff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devmode, "RESTART_FIRST_S", 0.05)
    with devmode.Supervisor() as sup:
        sup.spawn("crasher", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
        sup.restarting = True
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while sup.children["crasher"].restarts < 4 and time.monotonic() < deadline:
            sup.check()
            sup.wait(1.0)  # wakes on the child's exit (SIGCHLD) or when a restart is due
        sup.children["crasher"].proc.wait()
    said = [line for line in capsys.readouterr().err.splitlines() if "crasher died" in line]
    assert said[:4] == [
        f"okr: the crasher died (exit code 3); restarting it in {delay:g} s"
        for delay in (0.05, 0.1, 0.2, 0.4)
    ]
