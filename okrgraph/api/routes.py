"""Health endpoints: /healthz (process up), /readyz (PostgreSQL and Redis reachable)."""

from __future__ import annotations

import asyncio

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
        raise RuntimeError("no Redis connection")
    await queue.ping()


async def readyz(request: Request) -> JSONResponse:
    checks = {"postgres": _check_postgres, "redis": _check_redis}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(request), READY_TIMEOUT_S)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status_code=200 if ready else 503,
    )
