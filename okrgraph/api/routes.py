"""Health endpoints: /healthz (process up), /readyz (PostgreSQL and Redis reachable)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

READY_TIMEOUT_S = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check_postgres(request: Request) -> None:
    async with request.app.state.sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _check_redis(request: Request) -> None:
    queue = request.app.state.queue
    if queue is None:
        raise RuntimeError("no Redis connection (reconnecting)")
    await queue.ping()


async def _outcome(check: Callable[[Request], Awaitable[None]], request: Request) -> str:
    try:
        await asyncio.wait_for(check(request), READY_TIMEOUT_S)
    except Exception as exc:  # TimeoutError for a stalled server
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def readyz(request: Request) -> JSONResponse:
    """Both checks at once, each within READY_TIMEOUT_S: a stalled server makes
    /readyz answer 503 in that time, never hang."""
    checks = {"postgres": _check_postgres, "redis": _check_redis}
    outcomes = await asyncio.gather(*(_outcome(check, request) for check in checks.values()))
    results = dict(zip(checks, outcomes, strict=True))
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status_code=200 if ready else 503,
    )
