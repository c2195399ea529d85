"""Executor benchmark: FastExecutionContext's plain-leaf shortcut on and off.

    .venv/bin/python -m bench.executor                 # graph_api's default organisation
    .venv/bin/python -m bench.executor --teams 20 --people 200 --objectives 800 \\
        --key-results 2400 --check-ins 12000 --kpis 40 --runs 20

The shortcut (okrgraph/schema/execution.py) completes a plain scalar field
without graphql-core's per-field machinery. It matters only for queries the
compiled path (okrgraph/schema/compiled) cannot take, so both queries here
select computed fields (explanation, forecast, expectedProgress, warnings,
asOf) besides plain ones: (a) one team's objectives and key results, (b) the
whole company tree; (c) is graph_api's plain tree kept from the compiled path
by a directive, the shortcut's best case. Each runs through the whole app (as bench/graph_api.py
does) with the shortcut on and off, alternating within each run; "off" keeps
the execution budget and the loop slicing, only every field takes
graphql-core's own path. Both answers are checked equal first.

Prints JSON lines: the setup, the machine's load, then per query the p50/p95
of each (wall, and this process's CPU time: the app runs in-process, PostgreSQL
does not), `ratio_median` / `ratio_p95` = off / on (above 1: the shortcut
earns), `saved_median_pct`, the field count, and the load after the query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from graphql import parse
from sqlalchemy import text
from sqlalchemy.engine import make_url
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from bench.graph_api import (
    DEFAULT_URL,
    Bench,
    admin_token,
    cost,
    count_fields,
    emit,
    page_sizes,
    percentiles,
    prepare_database,
    timed,
)
from bench.graph_data import Sizes, ensure_org
from bench.graph_queries import TREE_GRAPHQL as TREE
from okrgraph.api.app import create_app
from okrgraph.domain.config import settings
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.schema import schema
from okrgraph.schema.compiled.compiler import NotCompilable, compile_query
from okrgraph.schema.execution import FastExecutionContext
from okrgraph.schema.limits import MAX_COST
from okrgraph.schema.node import to_global_id

TEAM_GRAPHQL = """
query TeamComputed($team: ID!, $objectives: Int!, $keyResults: Int!, $at: DateTime!) {
  node(id: $team) {
    ... on Team {
      name
      objectives(first: $objectives) {
        nodes {
          title progress status expectedProgress
          before: progress(asOf: $at)
          warnings { code message }
          explanation { value rule terms(first: 10) { weight value source } }
          keyResults(first: $keyResults) {
            nodes {
              title kind start target current score status confidence expectedProgress
              before: score(asOf: $at)
              explanation { value rule terms { weight value source } }
              forecast { projectedValue projectedScore status points }
              checkIns(first: 3) { nodes { value confidence effectiveAt } }
            }
          }
        }
      }
    }
  }
}
"""

TREE_GRAPHQL = """
query TreeComputed($teams: Int!, $objectives: Int!, $keyResults: Int!) {
  organization {
    name
    teams(all: true, first: $teams) {
      nodes {
        name
        objectives(first: $objectives) {
          nodes {
            title progress status expectedProgress
            warnings { code }
            keyResults(first: $keyResults) {
              nodes {
                title score status
                forecast { projectedScore status }
                checkIns(first: 2) { nodes { value effectiveAt } }
              }
            }
          }
        }
      }
    }
  }
}
"""

# (c) graph_api's plain tree, but `teams` under a directive: no computed field,
# yet not compilable either (as a second page, `after:`, would not be). The
# shortcut's best case, for reference.
PLAIN_TREE_GRAPHQL = TREE.replace("teams(all: true, first: $teams)",
                                  "teams(all: true, first: $teams) @include(if: true)")  # fmt: skip


class WithoutFastLeaves(FastExecutionContext):
    """FastExecutionContext's budget and slicing, every field through graphql-core."""

    def _execute_fields(self, *args: Any) -> Any:
        return StrawberryGraphQLCoreExecutionContext.execute_fields(self, *args)

    def complete_iterable_value(self, *args: Any) -> Any:
        return StrawberryGraphQLCoreExecutionContext.complete_iterable_value(self, *args)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rounded(value: Any) -> Any:
    """Floats to 4 places: expectedProgress moves with the clock between two calls."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return round(value, 4) if isinstance(value, float) else value


def compiles(query: str, variables: dict[str, Any]) -> bool:
    try:
        compile_query(parse(query), None, variables)
    except NotCompilable:
        return False
    return True


async def through(bench: Bench, context: type, query: str, variables: dict[str, Any]) -> bytes:
    schema.execution_context_class = context
    return await bench.graphql(query, variables)


async def timed_with_cpu(
    calls: list[Callable[[], Awaitable[object]]], runs: int, warmup: int
) -> list[tuple[list[float], list[float]]]:
    """Wall and this process's CPU seconds per run of each call (alternating, as
    graph_api.timed does). CPU time leaves out PostgreSQL and most of the noise
    of other processes on the machine: what the shortcut can save is Python."""
    for _ in range(warmup):
        for call in calls:
            await call()
    samples: list[tuple[list[float], list[float]]] = [([], []) for _ in calls]
    for _ in range(runs):
        for call, (wall, cpu) in zip(calls, samples, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            await call()
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start)
    return samples


async def compare(
    bench: Bench, name: str, query: str, variables: dict[str, Any], runs: int, warmup: int
) -> None:
    assert not compiles(query, variables), f"{name} would take the compiled path"
    on = json.loads(await through(bench, FastExecutionContext, query, variables))
    off = json.loads(await through(bench, WithoutFastLeaves, query, variables))
    if "errors" in on or "errors" in off:
        emit(query=name, errors=[on.get("errors"), off.get("errors")])
        return
    (fast_wall, fast_cpu), (plain_wall, plain_cpu) = await timed_with_cpu(
        [
            lambda: through(bench, FastExecutionContext, query, variables),
            lambda: through(bench, WithoutFastLeaves, query, variables),
        ],
        runs,
        warmup,
    )
    schema.execution_context_class = FastExecutionContext
    fast, plain = percentiles(fast_wall), percentiles(plain_wall)
    fast_c, plain_c = percentiles(fast_cpu), percentiles(plain_cpu)
    emit(
        query=name,
        runs=runs,
        fast_on=fast,
        fast_off=plain,
        ratio_median=round(plain["median_ms"] / fast["median_ms"], 3),
        ratio_p95=round(plain["p95_ms"] / fast["p95_ms"], 3),
        saved_median_pct=round(100 * (1 - fast["median_ms"] / plain["median_ms"]), 1),
        cpu_on=fast_c,
        cpu_off=plain_c,
        cpu_ratio_median=round(plain_c["median_ms"] / fast_c["median_ms"], 3),
        cpu_saved_median_pct=round(100 * (1 - fast_c["median_ms"] / plain_c["median_ms"]), 1),
        fields=count_fields(on["data"]),
        same_json=rounded(on["data"]) == rounded(off["data"]),
        cost=cost(query, variables),
        max_cost=MAX_COST,
        load_after=load(),
    )


async def measure_all(bench: Bench, sizes: Sizes, args: argparse.Namespace) -> None:
    pages = page_sizes(sizes)
    team = to_global_id("Team", await bench_team(bench, sizes))
    (typename,) = await timed([lambda: bench.graphql("{ __typename }", {})], args.runs, 3)
    emit(query="typename", runs=args.runs, graphql=percentiles(typename), load=load())
    team_vars = {"team": team, **pages, "at": "2026-11-01T00:00:00Z"}
    await compare(bench, "team_computed", TEAM_GRAPHQL, team_vars, args.runs, args.warmup)
    tree_vars = {"teams": sizes.teams, **pages}
    tree_runs = args.tree_runs or args.runs
    await compare(bench, "tree_computed", TREE_GRAPHQL, tree_vars, tree_runs, args.warmup)
    plain = {**tree_vars, "checkIns": 2}
    await compare(bench, "tree_plain_uncompiled", PLAIN_TREE_GRAPHQL, plain, tree_runs, args.warmup)


async def bench_team(bench: Bench, sizes: Sizes) -> Any:
    """The team bench/graph_api.py's dashboard reads."""
    async with bench.engine.connect() as conn, conn.begin():
        await conn.execute(
            text("SELECT set_config('app.org_id', :o, true)"), {"o": str(bench.org_id)}
        )
        name = f"Team {max(1, sizes.teams // 10) % sizes.teams:03}"
        query = text("SELECT id FROM teams WHERE name = :n")
        return (await conn.execute(query, {"n": name})).scalar_one()


async def run(args: argparse.Namespace) -> None:
    sizes = Sizes(args.teams, args.people, args.objectives, args.key_results, args.check_ins,
                  args.kpis, args.seed)  # fmt: skip
    started = time.perf_counter()
    owner_url = await prepare_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    org_id = await ensure_org(
        make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False),
        sizes,
    )
    token = await admin_token(owner_url, org_id)
    emit(setup=sizes.__dict__, org_id=org_id, seconds=round(time.perf_counter() - started, 1),
         cpus=os.cpu_count(), load=load())  # fmt: skip
    cfg = settings.model_copy(update={"database_url": owner_url, "redis_url": None})
    engine = create_engine(owner_url, cfg=cfg)
    app = create_app(cfg, sessionmaker=create_sessionmaker(engine))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await measure_all(Bench(engine, client, org_id, token), sizes, args)
    finally:
        await engine.dispose()


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
    p.add_argument("--runs", type=int, default=30, help="timed runs per query and mode")
    p.add_argument("--tree-runs", type=int, default=0, help="timed runs of (b); 0: --runs")
    p.add_argument("--warmup", type=int, default=3)
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
