"""`okr dev` as a newcomer runs it: embedded servers, demo data, GraphQL, and a
clean stop that leaves no process behind; a second run reuses the data."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from okrgraph.embedded import free_port

pytestmark = pytest.mark.e2e

OKR = [sys.executable, "-m", "okrgraph"]

START_TIMEOUT_S = 60.0
QUERY = "{ organization { id name slug } viewer { person { email } } }"


class OkrDev:
    """`okr dev` in a subprocess; its output is read by a thread, line by line."""

    def __init__(
        self, data_dir: Path, port: int, env: dict[str, str], okr: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*(okr or OKR), "dev", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # EOF: every holder of the pipe has exited

    def wait_for(self, prefix: str, timeout: float = START_TIMEOUT_S) -> str:
        """The first line starting with `prefix` (reading on from the last match)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} in time:\n{self.output}") from None
            if line is None:
                raise AssertionError(f"okr dev ended before {prefix!r}:\n{self.output}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def drain(self, timeout: float = 10.0) -> None:
        """Read the rest of the output, up to EOF."""
        deadline = time.monotonic() + timeout
        while (line := self._lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def postmaster(self) -> psutil.Process:
        """The PostgreSQL server, which pg_ctl starts detached (not our child)."""
        pid = int((self.data_dir / "pg/postmaster.pid").read_text().split()[0])
        return psutil.Process(pid)

    def process_tree(self) -> list[psutil.Process]:
        """okr dev's children (API, worker, redis-server) and PostgreSQL's processes."""
        postmaster = self.postmaster()
        return [
            *psutil.Process(self.proc.pid).children(recursive=True),
            postmaster,
            *postmaster.children(recursive=True),
        ]

    def stop(self, signum: signal.Signals) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=30)
        if signum != signal.SIGKILL:  # else its children may still hold the pipe
            self.drain()
        return code


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def graphql(port: int, token: str) -> Any:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def started() -> Iterator[list[OkrDev]]:
    """Every `okr dev` a test starts is killed at the end, whatever happened."""
    runs: list[OkrDev] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def start(
    runs: list[OkrDev], data_dir: Path, env: dict[str, str], okr: list[str] | None = None
) -> tuple[OkrDev, str]:
    """Start `okr dev` (`okr`: the command, else this venv's `python -m okrgraph`); wait
    until it says it runs; return it and its admin token."""
    run = OkrDev(data_dir, free_port(), env, okr)
    runs.append(run)
    url = run.wait_for("okrgraph is running.").split("GraphiQL: ")[1]
    assert url == f"http://127.0.0.1:{run.port}/graphql"
    assert run.wait_for("mail: ") == f"mail: {data_dir / 'mail.mbox'}"
    assert run.wait_for("worker health job:") == "worker health job: ok"
    token = run.wait_for("demo admin token:").split(": ", 1)[1]
    assert token.startswith("okr_")
    assert httpx.get(f"http://127.0.0.1:{run.port}/readyz", timeout=5).status_code == 200
    return run, token


def test_okr_dev_runs_stops_cleanly_and_reuses_its_data(
    started: list[OkrDev], okr_env: dict[str, str], data_dir: Path
) -> None:
    # 1. First run: embedded servers, migrations, the demo organisation; SIGTERM.
    first, token = start(started, data_dir, okr_env)
    assert "seeded the demo organisation" in first.output
    assert (data_dir / "demo-admin-token").read_text().strip() == token
    data = graphql(first.port, token)
    org_id = data["organization"].pop("id")
    assert data == {
        "organization": {"name": "Acme Rockets", "slug": "demo"},
        "viewer": {"person": {"email": "ada@acme.example"}},
    }

    # A second `okr dev` on the same directory is refused while the first runs.
    busy = subprocess.run(
        [*OKR, "dev", "--port", str(free_port()), "--data-dir", str(data_dir)],
        env=okr_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert busy.returncode == 1
    assert f"{data_dir} is in use by okr dev (pid {first.proc.pid})" in busy.stderr

    tree = first.process_tree()
    names = sorted(p.name() for p in tree)
    assert "redis-server" in names
    assert names.count("postgres") >= 2  # the postmaster and its background workers
    commands = [" ".join(p.cmdline()) for p in tree]
    assert sum(c.endswith("-m okrgraph serve") for c in commands) == 1
    assert sum(c.endswith("-m okrgraph worker") for c in commands) == 1

    assert first.stop(signal.SIGTERM) == 0
    assert "stopping okrgraph ..." in first.lines
    assert first.lines[-1] == "stopped"
    assert [p for p in tree if alive(p)] == []

    # 2. Again on the same data: no new seed, the first token still valid. Then
    # killed outright: its children follow it; PostgreSQL (detached) stays.
    second, second_token = start(started, data_dir, okr_env)
    assert "seeded the demo organisation" not in second.output
    assert second_token == token
    assert graphql(second.port, token)["organization"]["id"] == org_id
    children = psutil.Process(second.proc.pid).children(recursive=True)
    postmaster = second.postmaster()
    assert second.stop(signal.SIGKILL) == -signal.SIGKILL
    if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG
        gone, left = psutil.wait_procs(children, timeout=20)
        assert left == []
        assert len(gone) == 3  # API, worker, redis-server
    assert alive(postmaster)

    # 3. The next run adopts the leftover server, and Ctrl-C stops it too.
    third, _ = start(started, data_dir, okr_env)
    assert graphql(third.port, token)["organization"]["id"] == org_id
    tree = third.process_tree()
    assert postmaster in tree
    assert third.stop(signal.SIGINT) == 0
    assert third.lines[-1] == "stopped"
    assert [p for p in tree if alive(p)] == []
