"""okrgraph and PostGraphile side by side; prints one JSON line per measure.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m bench.peers [--quick]

Both servers run as real processes (bench/peer_servers.py) over one PostgreSQL database
(`okr_bench_peers`, the organisation of bench/graph_data.py generated once) and answer
equivalent GraphQL documents (bench/peer_queries.py; row counts checked equal first):
small 3-level query, team dashboard and company tree latency (median, p95; the servers
alternate within every run), then throughput of the small query with 8 client processes
and each server's CPU per request (psutil). `ratio` is okrgraph / PostGraphile. Then the
score pipeline through bench/scores.py (check-in -> converged, full pass, one leaf) and
closeCycle, in scratch databases. Every line carries the machine's load (1-minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import scores
from bench.close_cycle import timed_close
from bench.generate import Org, Spec, generate, scratch_database
from bench.graph_api import admin_token, page_sizes
from bench.graph_data import Sizes, ensure_org
from bench.graph_queries import DASHBOARD_GRAPHQL, TREE_GRAPHQL
from bench.peer_load import run_load
from bench.peer_queries import DASHBOARD_PG, SMALL_OKR, SMALL_PG, TREE_PG, entity_counts
from bench.peer_servers import (
    CACHE,
    POSTGRAPHILE_VERSION,
    Server,
    start_okrgraph,
    start_postgraphile,
)
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.domain.migrate import migrate
from okrgraph.schema.node import to_global_id

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "okr_bench_peers"
LOGS = CACHE / "logs"  # the servers' output
SMALL_PAGES = {"objectives": 5, "keyResults": 3}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def emit(**line: Any) -> None:
    print(json.dumps({**line, "load": load()}, default=str), flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
    }


def ratio(okr: float, peer: float) -> float | None:
    return round(okr / peer, 2) if peer else None


async def prepare(server_url: str, sizes: Sizes) -> tuple[str, uuid.UUID]:
    """The owner URL of `okr_bench_peers` (created and migrated when missing) and the
    organisation generated there for `sizes`."""
    url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    await migrate(url)
    return url, await ensure_org(url, sizes)


class Pair:
    """One read as both servers' requests, checked to answer the same rows."""

    def __init__(self, name: str, okr: dict[str, Any], peer: dict[str, Any]) -> None:
        self.name, self.requests = name, {"okrgraph": okr, "postgraphile": peer}

    async def check(self, client: httpx.AsyncClient, servers: list[Server]) -> dict[str, Any]:
        counts = {}
        for server in servers:
            body = await post(client, server, self.requests[server.name])
            if body.get("errors") or not body.get("data"):
                raise RuntimeError(f"{self.name} on {server.name}: {body.get('errors')}")
            counts[server.name] = dict(sorted(entity_counts(body["data"]).items()))
        if counts["okrgraph"] != counts["postgraphile"]:
            raise RuntimeError(f"{self.name}: different rows {counts}")
        return counts["okrgraph"]


async def post(client: httpx.AsyncClient, server: Server, request: dict[str, Any]) -> Any:
    response = await client.post(server.url, json=request, headers=server.headers)
    return response.json()


def pairs(org_id: uuid.UUID, team_id: uuid.UUID, sizes: Sizes) -> list[Pair]:
    pages = page_sizes(sizes)
    team, org = {"team": to_global_id("Team", team_id)}, {"org": str(org_id)}
    pg_team = {**org, "team": str(team_id)}
    dashboard = {**pages, "checkIns": 3}
    tree = {"teams": sizes.teams, **pages, "checkIns": 2}
    return [
        Pair("typename", {"query": "{ __typename }"}, {"query": "{ __typename }"}),
        Pair(
            "small",
            {"query": SMALL_OKR, "variables": {**team, **SMALL_PAGES}},
            {"query": SMALL_PG, "variables": {**pg_team, **SMALL_PAGES}},
        ),
        Pair(
            "dashboard",
            {"query": DASHBOARD_GRAPHQL, "variables": {**team, **dashboard}},
            {"query": DASHBOARD_PG, "variables": {**pg_team, **dashboard}},
        ),
        Pair(
            "tree",
            {"query": TREE_GRAPHQL, "variables": tree},
            {"query": TREE_PG, "variables": {**org, **tree}},
        ),
    ]


async def latency(
    client: httpx.AsyncClient, servers: list[Server], pair: Pair, runs: int, warmup: int
) -> dict[str, Any]:
    """Both servers' timings, alternating within each run (a busy spell weighs on both)."""
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    for i in range(warmup + runs):
        for server in servers if i % 2 else reversed(servers):
            started = time.perf_counter()
            await post(client, server, pair.requests[server.name])
            if i >= warmup:
                samples[server.name].append(time.perf_counter() - started)
    okr, peer = percentiles(samples["okrgraph"]), percentiles(samples["postgraphile"])
    return {
        "okrgraph": okr,
        "postgraphile": peer,
        "ratio_median": ratio(okr["median_ms"], peer["median_ms"]),
        "ratio_p95": ratio(okr["p95_ms"], peer["p95_ms"]),
        "runs": runs,
    }


def throughput(servers: list[Server], pair: Pair, clients: int, seconds: float) -> dict[str, Any]:
    """Requests per second and server CPU per request, one server at a time."""
    figures: dict[str, Any] = {}
    for server in servers:
        request = pair.requests[server.name]
        done = run_load(server.url, server.headers, request, clients, seconds, server.cpu_seconds)
        figures[server.name] = {
            "requests_per_s": round(done.per_second, 1),
            "cpu_ms_per_request": round(done.cpu_seconds * 1000 / max(1, done.requests), 2),
            "client_median_ms": done.median_ms(),
            "failures": done.failures,
            "load_after": load()[0],
        }
    okr, peer = figures["okrgraph"], figures["postgraphile"]
    return {
        **figures,
        "ratio": ratio(okr["requests_per_s"], peer["requests_per_s"]),
        "ratio_cpu_per_request": ratio(okr["cpu_ms_per_request"], peer["cpu_ms_per_request"]),
        "clients": f"{clients} processes, one keep-alive connection each",
        "seconds": seconds,
    }


async def team_of(owner_url: str, org_id: uuid.UUID, sizes: Sizes) -> uuid.UUID:
    """The team graph_api's dashboard reads (the first squad)."""
    conn = await asyncpg.connect(owner_url)
    try:
        name = f"Team {max(1, sizes.teams // 10) % sizes.teams:03}"
        found = await conn.fetchval(
            "SELECT id FROM teams WHERE org_id = $1 AND name = $2", org_id, name
        )
    finally:
        await conn.close()
    assert isinstance(found, uuid.UUID)
    return found


async def bench_reads(args: argparse.Namespace) -> None:
    sizes = Sizes()
    owner_url, org_id = await prepare(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), sizes)
    token = await admin_token(owner_url, org_id)
    team_id = await team_of(owner_url, org_id, sizes)
    servers = [start_okrgraph(owner_url, token, LOGS), start_postgraphile(owner_url, org_id, LOGS)]
    try:
        for server in servers:
            await asyncio.to_thread(server.wait_ready, "{ __typename }")
        emit(setup=sizes.__dict__, database=DATABASE, postgraphile=POSTGRAPHILE_VERSION,
             pids={s.name: s.process.pid for s in servers})  # fmt: skip
        reads = pairs(org_id, team_id, sizes)
        async with httpx.AsyncClient(timeout=60) as client:
            for pair in reads:
                rows = await pair.check(client, servers)
                runs = args.tree_runs if pair.name == "tree" else args.runs
                figures = await latency(client, servers, pair, runs, warmup=3)
                emit(measure=f"{pair.name}_latency", rows=rows, **figures)
        small = next(p for p in reads if p.name == "small")
        for i in range(args.throughput_rounds):  # who goes first alternates
            order = servers if i % 2 == 0 else servers[::-1]
            figures = await asyncio.to_thread(throughput, order, small, 8, args.seconds)
            emit(measure="small_throughput", **figures)
    finally:
        for server in servers:
            server.stop()


async def guarded(name: str, measure: Awaitable[Any]) -> None:
    """Run one bench/scores.py measure; a failure is a line, not the end of the run."""
    try:
        await measure
    except Exception as exc:  # noqa: BLE001 - reported and the run carries on
        emit(measure=name, error=f"{type(exc).__name__}: {exc}")


async def generated(url: str, spec: Spec) -> Org:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        org = await generate(conn, spec)
    finally:
        await conn.close()
    emit(measure="generate", seconds=round(time.perf_counter() - started, 1), **org.counts)
    return org


async def bench_close_cycle(
    url: str, sm: async_sessionmaker[AsyncSession], objectives: int
) -> None:
    """closeCycle (the whole close as one domain call, carry-over of the remainder into a
    new cycle, committed; bench/close_cycle.py) of a cycle with `objectives` objectives
    and three key results each; the seconds of each phase, RECALCULATING the full pass."""
    org = await generated(url, Spec(krs=3 * objectives))
    _, figures = await timed_close(sm, org)
    emit(
        measure="close_cycle",
        objectives=org.objectives,
        key_results=org.counts["key_results"],
        **{k: v for k, v in figures.items() if k != "statements"},
    )


def scores_emit(**fields: Any) -> None:
    emit(measure=fields.pop("bench"), **fields)


async def bench_scores(args: argparse.Namespace) -> None:
    """bench/scores.py's measures at this run's sizes, in a scratch database."""
    if "BENCH_REDIS_URL" not in os.environ:  # scores.py flushes it: not its default db
        scores.REDIS_URL = "redis://127.0.0.1:6379/11"
    scores.emit = scores_emit  # its lines with the load, named `measure`
    seconds = 15 if args.quick else 30
    async with scratch_database() as url:
        engine = create_engine(url, pool_size=20, app_role="okr_app")
        sm = create_sessionmaker(engine)
        try:
            for krs in (10_000,) if args.quick else (10_000, 100_000, 300_000):
                org = await generated(url, Spec(krs=krs))
                converged = scores.bench_latency(sm, url, org, rate=1, seconds=seconds)
                await guarded("check_in_to_converged", converged)
                if krs == 100_000:
                    await guarded("full_recalculation", scores.bench_full(sm, org, naive=False))
                    leaf = scores.bench_incremental(sm, org, runs=50, graph="generated")
                    await guarded("incremental_leaf", leaf)
            objectives = 1_000 if args.quick else 10_000
            await guarded("close_cycle", bench_close_cycle(url, sm, objectives))
        finally:
            await engine.dispose()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="reduced run, under 5 minutes")
    p.add_argument("--reads-only", action="store_true", help="only the side-by-side reads")
    p.add_argument("--scores-only", action="store_true", help="only the score pipeline")
    args = p.parse_args()
    args.runs = 30 if args.quick else 100
    args.tree_runs = 10 if args.quick else 30
    args.seconds = 10 if args.quick else 20
    args.throughput_rounds = 1 if args.quick else 3
    return args


async def main(args: argparse.Namespace) -> None:
    if not args.scores_only:
        await bench_reads(args)
    if not args.reads_only:
        await bench_scores(args)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
