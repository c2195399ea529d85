"""Graph API benchmark: GraphQL through the full ASGI app vs one SQL statement.

    .venv/bin/python -m bench.graph_api                # defaults: 50 teams ... 100 KPIs
    .venv/bin/python -m bench.graph_api --runs 50 --teams 20 --objectives 800
    .venv/bin/python -m bench.graph_api --profile tree.html   # pyinstrument, query (b)

Measures (a) one team's dashboard and (b) the whole company tree, each
through `create_app` (auth, limits, Strawberry, dataloaders, JSON) called
in-process over httpx.ASGITransport, against (c) one hand-written SQL
statement per query building the same JSON (checked equal first). Prints JSON
lines: the setup, then one line per query with median/p95 latencies, the
ratios GraphQL/SQL, the response's field count and its estimated cost.

The organisation is generated once into `okr_bench_graph` on the server of
`BENCH_DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/postgres)
and found again by its sizes on later runs.
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
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from graphql import parse
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bench.graph_data import Sizes, ensure_org
from bench.graph_queries import DASHBOARD_GRAPHQL, DASHBOARD_SQL, TREE_GRAPHQL, TREE_SQL
from okrgraph.api.app import create_app
from okrgraph.domain.auth.tokens import create_token
from okrgraph.domain.config import settings
from okrgraph.domain.db import async_url, create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.migrate import migrate
from okrgraph.schema import schema
from okrgraph.schema.limits import MAX_COST, query_cost
from okrgraph.schema.node import to_global_id

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "okr_bench_graph"


def emit(**line: Any) -> None:
    print(json.dumps(line, default=str), flush=True)


async def prepare_database(server_url: str) -> str:
    """The migrated scratch database's URL (created if missing)."""
    url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    plain = make_url(server_url).set(drivername="postgresql")
    conn = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    await migrate(url)
    return url


async def admin_token(owner_url: str, org_id: uuid.UUID) -> str:
    """A new read token of the generated organisation's admin (person 0)."""
    engine = create_async_engine(async_url(owner_url))
    try:
        async with tenant_session(async_sessionmaker(engine), org_id) as session:
            person = (
                await session.execute(
                    text(
                        "SELECT id FROM people WHERE email = 'person0000@bench.test'"
                        " AND org_id = :org"  # the owner bypasses RLS; other sizes share it
                    ),
                    {"org": org_id},
                )
            ).scalar_one()
            _, secret = await create_token(
                session, org_id, name=f"bench {datetime.now():%Y-%m-%d %H:%M:%S}",  # noqa: DTZ005
                scopes=["read"], person_id=person,
            )  # fmt: skip
    finally:
        await engine.dispose()
    return secret


def count_fields(value: Any) -> int:
    """Members of every object in a JSON value (scalars and nested objects alike)."""
    if isinstance(value, dict):
        return len(value) + sum(count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_fields(v) for v in value)
    return 0


def normalised(value: Any) -> Any:
    """Numbers as floats, timestamps as instants: Python's and PostgreSQL's JSON
    spell `1.0` and `+00:00` differently."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return round(float(value), 9)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def cost(query: str, variables: dict[str, Any]) -> int | None:
    """The request limits' estimate (`MAX_COST` refuses more)."""
    return query_cost(schema._schema, parse(query), variables)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
    }


async def timed(
    calls: list[Callable[[], Awaitable[object]]], runs: int, warmup: int
) -> list[list[float]]:
    """Seconds per run of each call; the calls alternate within a run, so that
    a busy spell of the machine weighs on all of them alike."""
    for _ in range(warmup):
        for call in calls:
            await call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, seen in zip(calls, samples, strict=True):
            start = time.perf_counter()
            await call()
            seen.append(time.perf_counter() - start)
    return samples


class Bench:
    """The app and the SQL path over one app-role engine, for one organisation."""

    def __init__(
        self, engine: AsyncEngine, client: httpx.AsyncClient, org_id: uuid.UUID, token: str
    ):
        self.engine = engine
        self.client = client
        self.org_id = org_id
        self.headers = {"Authorization": f"Bearer {token}"}

    async def graphql(self, query: str, variables: dict[str, Any]) -> bytes:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        return response.content

    async def sql(self, statement: str, params: dict[str, Any]) -> str:
        async with self.engine.connect() as conn, conn.begin():
            await conn.execute(
                text("SELECT set_config('app.org_id', :org, true)"), {"org": str(self.org_id)}
            )
            payload: str = (await conn.execute(text(statement), params)).scalar_one()
        return payload

    async def measure(
        self, name: str, query: str, variables: dict[str, Any], statement: str,
        params: dict[str, Any], runs: int, warmup: int,
    ) -> None:  # fmt: skip
        body = json.loads(await self.graphql(query, variables))
        if "errors" in body:
            emit(query=name, error=body["errors"], cost=cost(query, variables), max_cost=MAX_COST)
            return
        expected = json.loads(await self.sql(statement, params))
        api_samples, sql_samples = await timed(
            [lambda: self.graphql(query, variables), lambda: self.sql(statement, params)],
            runs,
            warmup,
        )
        api, sql = percentiles(api_samples), percentiles(sql_samples)
        emit(
            query=name,
            runs=runs,
            graphql=api,
            sql=sql,
            ratio_median=round(api["median_ms"] / sql["median_ms"], 1),
            ratio_p95=round(api["p95_ms"] / sql["p95_ms"], 1),
            fields=count_fields(body["data"]),
            response_bytes=len(json.dumps(body, separators=(",", ":"))),
            same_json=normalised(body["data"]) == normalised(expected),
            cost=cost(query, variables),
            max_cost=MAX_COST,
        )


def page_sizes(sizes: Sizes) -> dict[str, int]:
    """`first` arguments that cover the generated graph (see graph_data.build)."""
    company = max(1, sizes.objectives // 100)
    team_objectives = min(sizes.objectives - company, round(sizes.objectives * 0.45))
    return {
        "objectives": max(1, math.ceil(team_objectives / sizes.teams)),
        "keyResults": max(1, math.ceil(sizes.key_results / sizes.objectives)),
    }


async def run(args: argparse.Namespace) -> None:
    sizes = Sizes(args.teams, args.people, args.objectives, args.key_results, args.check_ins,
                  args.kpis, args.seed)  # fmt: skip
    started = time.perf_counter()
    owner_url = await prepare_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    org_id = await ensure_org(
        make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False),
        sizes,
        regenerate=args.regenerate,
    )
    token = await admin_token(owner_url, org_id)
    emit(setup=sizes.__dict__, org_id=org_id, database=DATABASE,
         seconds=round(time.perf_counter() - started, 1))  # fmt: skip

    cfg = settings.model_copy(update={"database_url": owner_url, "redis_url": None})
    engine = create_engine(owner_url, cfg=cfg)
    app = create_app(cfg, sessionmaker=create_sessionmaker(engine))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                bench = Bench(engine, client, org_id, token)
                await measure_all(bench, sizes, args)
    finally:
        await engine.dispose()


async def measure_all(bench: Bench, sizes: Sizes, args: argparse.Namespace) -> None:
    pages = page_sizes(sizes)
    departments = max(1, sizes.teams // 10)
    async with bench.engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT set_config('app.org_id', :o, true)"), {"o": str(bench.org_id)}
        )
        team_id = (
            await conn.execute(text("SELECT id FROM teams WHERE name = :n"),
                               {"n": f"Team {departments % sizes.teams:03}"})
        ).scalar_one()  # fmt: skip

    (typename,) = await timed([lambda: bench.graphql("{ __typename }", {})], args.runs, 3)
    baseline = percentiles(typename)
    emit(query="typename", runs=args.runs, graphql=baseline, note="auth + transaction + HTTP")

    dashboard = {"team": to_global_id("Team", team_id), **pages, "checkIns": 3}
    await bench.measure(
        "dashboard", DASHBOARD_GRAPHQL, dashboard, DASHBOARD_SQL,
        {"team": team_id, "objectives": pages["objectives"], "key_results": pages["keyResults"],
         "check_ins": 3},
        args.runs, args.warmup,
    )  # fmt: skip
    tree = {"teams": sizes.teams, **pages, "checkIns": 2}
    tree_params = {"teams": sizes.teams, "objectives": pages["objectives"],
                   "key_results": pages["keyResults"], "check_ins": 2}  # fmt: skip
    await bench.measure(
        "tree", TREE_GRAPHQL, tree, TREE_SQL, tree_params, args.tree_runs or args.runs, args.warmup
    )
    if args.profile:
        await profile(bench, tree, args.profile, args.profile_runs)


async def profile(bench: Bench, variables: dict[str, Any], path: str, runs: int) -> None:
    """pyinstrument over `runs` tree queries (pip install pyinstrument; not a dependency)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="enabled")
    with profiler:
        for _ in range(runs):
            await bench.graphql(TREE_GRAPHQL, variables)
    report = profiler.output_html() if path.endswith(".html") else profiler.output_text()
    Path(path).write_text(report)  # noqa: ASYNC240 - after the measurement
    emit(profile=path, runs=runs)


def parse_args() -> argparse.Namespace:
    sizes = Sizes()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--teams", type=int, default=sizes.teams)
    p.add_argument("--people", type=int, default=sizes.people)
    p.add_argument("--objectives", type=int, default=sizes.objectives)
    p.add_argument("--key-results", type=int, default=sizes.key_results)
    p.add_argument("--check-ins", type=int, default=sizes.check_ins)
    p.add_argument("--kpis", type=int, default=sizes.kpis)
    p.add_argument("--seed", type=int, default=sizes.seed)
    p.add_argument("--runs", type=int, default=30, help="timed runs per query (after warm-up)")
    p.add_argument("--tree-runs", type=int, default=0, help="timed runs of (b); 0: --runs")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--regenerate", action="store_true", help="drop and regenerate the org")
    p.add_argument("--profile", help="write a pyinstrument profile of (b) (.html or text)")
    p.add_argument("--profile-runs", type=int, default=5)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
