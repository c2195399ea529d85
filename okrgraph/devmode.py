"""`okr dev`: embedded servers, migrations, the demo organisation, then the API
and the worker as child processes, all stopped in order on Ctrl-C or SIGTERM.
Once running, a child that dies (the API, the worker, embedded Redis) is
restarted after a backoff, with a message; the rest keeps serving.

Signals only set flags (and wake the main loop through a pipe); the main
thread does the stopping, so a signal never interrupts a half-started server.
The children run in their own process group (a Ctrl-C reaches only us, and we
stop the API and worker before the servers they use) and get SIGTERM if we
die without stopping them (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def say(message: str = "", *, err: bool = False) -> None:
    """Print and flush; never fail (a closed terminal must not stop a shutdown)."""
    try:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


async def seed_database(database_url: str) -> str | None:
    """Seed the demo organisation unless it exists; its admin token if created."""
    from okrgraph.domain.db import create_engine, create_sessionmaker
    from okrgraph.domain.seed import seed_demo

    engine = create_engine(database_url, pool_size=1)
    try:
        result = await seed_demo(create_sessionmaker(engine))
    finally:
        await engine.dispose()
    return result.admin_token


def dev_secret_keys(data_dir: Path) -> str:
    """The key that seals this data directory's webhook secrets: made once, kept in
    `secret-key` (mode 0600) beside the data it protects."""
    from okrgraph.domain.webhooks.secrets import new_key

    path = data_dir / "secret-key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(new_key() + "\n")
    return path.read_text().strip()


class Stop(Exception):
    """Leave `okr dev`: a signal asked for it, or a child process died while starting."""

    def __init__(self, code: int) -> None:
        self.code = code


RESTART_FIRST_S = 1.0  # the wait before restarting a child that died ...
RESTART_MAX_S = 30.0  # ... doubling with each quick death, up to this
STABLE_S = 30.0  # a child that ran this long before dying starts its backoff afresh


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code}, killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


@dataclass
class Child:
    """A process `okr dev` watches: how to (re)start it and its restart state."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes]
    server: bool = False  # a server (Redis) the others use: stopped after them, by its owner
    started_at: float = field(default_factory=time.monotonic)
    quick_deaths: int = 0
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """The children of `okr dev`, the signal flags, and how they all stop.

    While starting, a child's death stops everything (it is a setup problem to
    show, not to retry). Once running (`restarting`), a child that dies is
    restarted, with a message saying what died and how, after a backoff that
    doubles with each quick death so a child that fails at once does not spin.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self.force = False
        self.restarting = False
        self.children: dict[str, Child] = {}
        self._wake_r, wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(wake_w, False)
        self._wake_w = wake_w
        self._old_handlers: dict[int, Any] = {}

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return {name: c.proc for name, c in self.children.items() if not c.server}

    def __enter__(self) -> Supervisor:
        signal.set_wakeup_fd(self._wake_w)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)
        self._old_handlers[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(-1)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stop_requested:
            self.force = True  # a second Ctrl-C: don't wait for graceful exits
        self.stop_requested = True

    def check(self) -> None:
        """Raise Stop on a signal (or a death while starting); restart what is due."""
        if self.stop_requested:
            raise Stop(0)
        for child in self.children.values():
            if child.restart_at is None:
                code = child.proc.poll()
                if code is None:
                    continue
                if not self.restarting:
                    say(f"okr: the {child.name} exited (code {code}); stopping", err=True)
                    raise Stop(1)
                self._schedule(child, f"the {child.name} died ({describe_exit(code)})")
            elif time.monotonic() >= child.restart_at:
                self._restart(child)
                if self.stop_requested:
                    raise Stop(0)

    def _schedule(self, child: Child, what: str) -> None:
        now = time.monotonic()
        child.quick_deaths = child.quick_deaths + 1 if now - child.started_at < STABLE_S else 1
        delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** min(child.quick_deaths - 1, 10))
        child.restart_at = now + delay
        say(f"okr: {what}; restarting it in {delay:g} s", err=True)

    def _restart(self, child: Child) -> None:
        child.restarts += 1
        try:
            child.proc = child.start()
        except (OSError, RuntimeError) as exc:
            child.started_at = time.monotonic()
            self._schedule(child, f"the {child.name} did not restart ({exc})")
            return
        child.started_at, child.restart_at = time.monotonic(), None
        say(f"okr: restarted the {child.name} (pid {child.proc.pid}, restart {child.restarts})")

    def wait(self, timeout: float) -> None:
        """Sleep until a signal, a child's exit or a restart that is due, at most
        `timeout` seconds."""
        due = [c.restart_at for c in self.children.values() if c.restart_at is not None]
        if due:
            timeout = max(0.0, min(timeout, min(due) - time.monotonic()))
        select.select([self._wake_r], [], [], timeout)
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        from okrgraph.embedded import die_with_parent

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(  # noqa: S603
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=die_with_parent(),
            )

        self.children[name] = Child(name, start, start())

    def watch_server(
        self, name: str, proc: subprocess.Popen[bytes], start: Callable[[], subprocess.Popen[bytes]]
    ) -> None:
        """Watch a server started elsewhere (embedded Redis); `start` starts it again."""
        self.children[name] = Child(name, start, proc, server=True)

    def stop_children(self, grace: float = 15.0) -> None:
        procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(p.poll() is None for p in procs):
            if self.force or time.monotonic() > deadline:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                break
            self.wait(deadline - time.monotonic())


def wait_ready(url: str, sup: Supervisor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        sup.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready in {timeout:.0f} s")
        sup.wait(0.1)  # nothing to await: the API tells only when asked


async def worker_health(redis_url: str) -> str:
    """Enqueue the no-op health job and wait for the worker to run it."""
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        job = await pool.enqueue_job("health")
        if job is None:
            return "not enqueued"
        return str(await job.result(timeout=15, poll_delay=0.05))
    except Exception as exc:
        return f"failed ({type(exc).__name__}: {exc})"
    finally:
        await pool.aclose()


def run_dev(sup: Supervisor, host: str, port: int, data_dir: Path) -> int:
    """Start everything, wait for a signal or a child's death, stop everything;
    the exit code (0 when a signal asked to stop)."""
    from okrgraph.domain.config import settings
    from okrgraph.domain.migrate import migrate as run_migrate
    from okrgraph.embedded import EmbeddedPostgres, EmbeddedRedis

    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    code = 0
    try:
        database_url = settings.database_url
        if not database_url:
            say(f"starting embedded PostgreSQL in {data_dir / 'pg'} ...")
            started.append(pg := EmbeddedPostgres(data_dir / "pg"))
            database_url = pg.start()
            sup.check()
        redis_url = settings.redis_url
        if not redis_url:
            say(f"starting embedded Redis in {data_dir / 'redis'} ...")
            started.append(rd := EmbeddedRedis(data_dir / "redis"))
            redis_url = rd.start(avoid={port})

            def restart_redis(rd: EmbeddedRedis = rd) -> subprocess.Popen[bytes]:
                rd.start()  # on the same port: the children's REDIS_URL stays right
                assert rd.process is not None
                return rd.process

            assert rd.process is not None
            sup.watch_server("embedded Redis", rd.process, restart_redis)
            sup.check()
        say("migrating ...")
        asyncio.run(run_migrate(database_url))
        sup.check()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "OKR_DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "OKR_REDIS_URL": redis_url,
            "OKR_HOST": host,
            "OKR_PORT": str(port),
            "OKR_DEV": "1",
            "OKR_SECRET_KEYS": settings.secret_keys or dev_secret_keys(data_dir),
        }
        mail = dev_mail(data_dir)
        if mail.file:
            env["OKR_MAIL_FILE"] = mail.file
        okr = [sys.executable, "-m", "okrgraph"]
        sup.spawn("API server", [*okr, "serve"], env)
        sup.spawn("worker", [*okr, "worker"], env)
        # Seeding while the children start: nobody knows the URL before it's done.
        token_file = data_dir / "demo-admin-token"
        if (token := asyncio.run(seed_database(database_url))) is not None:
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
            say("seeded the demo organisation")
        local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
        base = f"http://{local}:{port}"
        wait_ready(f"{base}/readyz", sup)
        health = asyncio.run(worker_health(redis_url))
        sup.check()
        _banner(base, health, token_file, data_dir, mail.where)
        sup.restarting = True
        while True:
            sup.check()
            sup.wait(5.0)
    except Stop as stop:
        code = stop.code
    except (RuntimeError, OSError) as exc:
        say(f"okr dev failed: {exc}", err=True)
        code = 1
    except Exception as exc:  # a migration or seed error: still stop what runs
        say(f"okr dev failed: {type(exc).__name__}: {exc}", err=True)
        code = 1
    say("\nstopping okrgraph ...")
    sup.stop_children()
    for server in reversed(started):
        server.stop()
    say("stopped")
    return code


@dataclass(frozen=True)
class DevMail:
    file: str | None  # OKR_MAIL_FILE for the worker (None: SMTP is configured)
    where: str  # for the banner


def dev_mail(data_dir: Path) -> DevMail:
    """Where `okr dev`'s e-mail goes: the configured SMTP server, else an mbox file
    (OKR_MAIL_FILE, by default <data dir>/mail.mbox) any mail reader opens."""
    from okrgraph.domain.config import settings

    if settings.smtp_host:
        return DevMail(None, f"SMTP {settings.smtp_host}:{settings.smtp_port}")
    path = settings.mail_file or str(data_dir / "mail.mbox")
    return DevMail(path, path)


def _banner(base: str, health: str, token_file: Path, data_dir: Path, mail: str) -> None:
    saved = token_file.read_text().strip() if token_file.exists() else None
    say()
    say(f"okrgraph is running. GraphiQL: {base}/graphql")
    say(f"mail: {mail}")
    say(f"worker health job: {health}")
    if saved:
        say(f"demo admin token: {saved}")
        say(f'  (GraphiQL headers: {{"Authorization": "Bearer {saved}"}})')
    else:
        say("demo admin token: not saved; make one with")
        say("  okr token create --org demo --person ada@acme.example --name dev --scope admin")
    say(f"data: {data_dir}. Ctrl-C stops everything.")
