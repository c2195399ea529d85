"""The two servers of bench/peers.py as real processes on free ports of 127.0.0.1.

- okrgraph: `python -m okrgraph serve` (uvicorn, one process, as shipped: its access
  log included, written to a log file) over the owner URL; requests act as the app role.
- PostGraphile 4 (`POSTGRAPHILE_VERSION`, installed with npm into `CACHE`, a benchmark
  dependency only) run by bench/postgraphile_server.js under node.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from okrgraph.domain.webhooks.secrets import new_key

POSTGRAPHILE_VERSION = "4.14.1"
CACHE = Path(os.environ.get("OKR_BENCH_CACHE", Path.home() / ".cache" / "okrgraph-bench"))
NODE_PROJECT = CACHE / f"postgraphile-{POSTGRAPHILE_VERSION}"
SERVER_JS = Path(__file__).with_name("postgraphile_server.js")


def ensure_postgraphile() -> Path:
    """node_modules with the pinned PostGraphile (npm install once)."""
    installed = NODE_PROJECT / "node_modules" / "postgraphile" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == POSTGRAPHILE_VERSION:
        return installed.parents[1]
    NODE_PROJECT.mkdir(parents=True, exist_ok=True)
    (NODE_PROJECT / "package.json").write_text('{"name": "okrgraph-bench-peers", "private": true}')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--save-exact",
         f"postgraphile@{POSTGRAPHILE_VERSION}"],
        cwd=NODE_PROJECT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return installed.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    url: str
    headers: dict[str, str]
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    stats: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.stats = psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its live children (worker processes)."""
        total = 0.0
        for process in [self.stats, *self.stats.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def wait_ready(self, query: str, timeout_s: float = 60) -> None:
        """Until the server answers `query` with data (it introspects or migrates first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.process.returncode}): {self.log.name}"
                )
            try:
                body = httpx.post(self.url, json={"query": query}, headers=self.headers).json()
                if "data" in body and not body.get("errors"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout_s} s: {self.log.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _log(logs: Path, name: str) -> IO[bytes]:
    logs.mkdir(parents=True, exist_ok=True)
    return (logs / f"{name}.log").open("wb")


def start_okrgraph(owner_url: str, token: str, logs: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=owner_url, OKR_SECRET_KEYS=new_key())
    log = _log(logs, "okrgraph")
    process = subprocess.Popen(
        [sys.executable, "-m", "okrgraph", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    return Server("okrgraph", f"http://127.0.0.1:{port}/graphql", headers, process, log)


def start_postgraphile(owner_url: str, org_id: Any, logs: Path) -> Server:
    node_modules = ensure_postgraphile()
    port = free_port()
    log = _log(logs, "postgraphile")
    process = subprocess.Popen(
        ["node", str(SERVER_JS), owner_url, str(port), str(org_id)],
        env={**os.environ, "NODE_PATH": str(node_modules), "NODE_ENV": "production"},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Server("postgraphile", f"http://127.0.0.1:{port}/graphql", {}, process, log)
