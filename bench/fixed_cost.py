"""A request's fixed cost, with and without the document cache and persisted queries,
and the company tree's p95 under the cyclic GC's settings.

    .venv/bin/python -m bench.fixed_cost                  # in-process (ASGI) + uvicorn
    .venv/bin/python -m bench.fixed_cost --runs 500 --no-uvicorn
    .venv/bin/python -m bench.fixed_cost --no-uvicorn --runs 50 --tree-runs 40

Requests: `{ __typename }` and a small 3-level query (organization -> 5 teams ->
3 objectives each). Variants, alternated request by request so that a busy spell
of the machine weighs on all alike:

- `plain`: no document cache (DocumentCache taken out of the schema's extensions);
- `cached`: the document cache (okrgraph/schema/documents.py);
- `persisted`: the cache, and the request sends only the persisted query's hash.

In-process, the app is called through httpx.ASGITransport (the CPU per request then
includes the client's); over uvicorn, each variant is its own server process
(`--serve`, started by this script) reached over TCP with keep-alive, and the CPU
per request is the server process's alone (/proc/<pid>/stat). Every line carries
the machine's load (os.getloadavg). Data: bench/graph_data.py's default
organisation in `okr_bench_graph` (see bench/graph_api.py).

The GC lines run the company tree (bench/graph_queries.TREE_GRAPHQL, ~26k fields)
in-process with gc's defaults, after gc.freeze() and with raised thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.graph_api import (
    DEFAULT_URL,
    admin_token,
    emit,
    page_sizes,
    percentiles,
    prepare_database,
)
from bench.graph_data import Sizes, ensure_org
from bench.graph_queries import TREE_GRAPHQL
from okrgraph.api.app import create_app
from okrgraph.domain.config import settings
from okrgraph.domain.db import create_engine, create_sessionmaker
from okrgraph.embedded import free_port
from okrgraph.schema import schema
from okrgraph.schema.documents import DocumentCache

SMALL = """query Small { organization { teams(first: 5) { nodes { name
  objectives(first: 3) { nodes { title progress } } } } } }"""
QUERIES = {"typename": "{ __typename }", "small": SMALL}
VARIANTS = ("plain", "cached", "persisted")
GC_SETTINGS = {
    "default": (700, 10, 10),
    "freeze": (700, 10, 10),  # + gc.freeze() after warm-up
    "threshold": (50_000, 50, 100),
    "freeze+threshold": (50_000, 50, 100),
}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def use_document_cache(on: bool) -> None:
    """Put DocumentCache in the schema's extensions, or take it out."""
    without = [e for e in schema.extensions if e is not DocumentCache]
    if on:
        position = next(i for i, e in enumerate(without) if getattr(e, "__name__", "") ==
                        "RequestLimits") + 1  # fmt: skip
        without.insert(position, DocumentCache)
    schema.extensions = tuple(without)


def body(query: str, variant: str) -> dict[str, Any]:
    sha = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    return {"extensions": extensions} if variant == "persisted" else {"query": query}


def cpu_of(pid: int | None) -> float:
    """Seconds of CPU used so far by the process `pid` (this one when None)."""
    if pid is None:
        return time.process_time()
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115, PTH123
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def alternate(
    calls: dict[str, Callable[[], Awaitable[object]]],
    pids: dict[str, int | None],
    runs: int,
    warmup: int,
    switch: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[str, Any]]:
    """Latency and CPU per call of each variant, the variants taking turns."""
    for _ in range(warmup):
        for name, call in calls.items():
            switch(name)
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    cpu = dict.fromkeys(calls, 0.0)
    for _ in range(runs):
        for name, call in calls.items():
            switch(name)
            cpu_before, start = cpu_of(pids[name]), time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - start)
            cpu[name] += cpu_of(pids[name]) - cpu_before
    return {
        name: {**percentiles(seen), "cpu_ms": round(cpu[name] / runs * 1000, 2)}
        for name, seen in samples.items()
    }


def post(client: httpx.AsyncClient, url: str, query: str, variant: str) -> Callable[[], Any]:
    async def call() -> None:
        response = await client.post(url, json=body(query, variant))
        if "errors" in response.text:
            raise RuntimeError(f"{variant}: {response.text[:300]}")

    return call


async def in_process(app: Any, token: str, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        for name, query in QUERIES.items():
            await c.post("/graphql", json={"query": query, **body(query, "persisted")})
            calls = {v: post(c, "/graphql", query, v) for v in VARIANTS}
            figures = await alternate(calls, dict.fromkeys(VARIANTS), args.runs, args.warmup,
                                      lambda v: use_document_cache(v != "plain"))  # fmt: skip
            emit(measure="fixed_cost", transport="asgi", query=name, runs=args.runs,
                 load=load(), **figures, note="cpu_ms includes httpx's client side")  # fmt: skip
        use_document_cache(True)
        if not args.no_gc:
            await gc_pauses(c, args)


async def gc_pauses(client: httpx.AsyncClient, args: argparse.Namespace) -> None:
    """The company tree's latency with each GC setting (gc.freeze() is undone after)."""
    variables = {"teams": Sizes().teams, **page_sizes(Sizes()), "checkIns": 2}
    payload = {"query": TREE_GRAPHQL, "variables": variables}
    for name, thresholds in GC_SETTINGS.items():
        gc.set_threshold(*thresholds)
        gc.collect()
        for _ in range(args.warmup):
            await client.post("/graphql", json=payload)
        if name.startswith("freeze"):
            gc.freeze()
        collections = sum(s["collections"] for s in gc.get_stats())
        samples, cpu = [], time.process_time()
        for _ in range(args.tree_runs):
            start = time.perf_counter()
            response = await client.post("/graphql", json=payload)
            samples.append(time.perf_counter() - start)
            assert "errors" not in response.text[:100], response.text[:300]
        emit(measure="tree_gc", gc=name, thresholds=thresholds, runs=args.tree_runs,
             load=load(), **percentiles(samples),
             cpu_ms=round((time.process_time() - cpu) / args.tree_runs * 1000, 1),
             collections=sum(s["collections"] for s in gc.get_stats()) - collections,
             frozen=gc.get_freeze_count())  # fmt: skip
        gc.unfreeze()
    gc.set_threshold(*GC_SETTINGS["default"])


async def over_uvicorn(owner_url: str, token: str, args: argparse.Namespace) -> None:
    ports = {v: free_port() for v in VARIANTS}
    servers = {
        v: subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
            [
                sys.executable,
                "-m",
                "bench.fixed_cost",
                "--serve",
                str(ports[v]),
                "--variant",
                v,
                "--database",
                owner_url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for v in VARIANTS
    }
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            urls = {v: f"http://127.0.0.1:{p}/graphql" for v, p in ports.items()}
            for url in urls.values():
                await started(client, url)
            for name, query in QUERIES.items():
                for url in urls.values():
                    await client.post(url, json={"query": query, **body(query, "persisted")})
                calls = {v: post(client, urls[v], query, v) for v in VARIANTS}
                pids: dict[str, int | None] = {v: s.pid for v, s in servers.items()}
                figures = await alternate(calls, pids, args.runs, args.warmup)
                emit(measure="fixed_cost", transport="uvicorn", query=name, runs=args.runs,
                     load=load(), **figures, note="cpu_ms: the server process's")  # fmt: skip
    finally:
        for server in servers.values():
            server.terminate()
            server.wait()


async def started(client: httpx.AsyncClient, url: str) -> None:
    for _ in range(300):
        try:
            await client.get(url.replace("/graphql", "/healthz"))
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def serve(args: argparse.Namespace) -> None:
    """One variant's server (a child of this script)."""
    import uvicorn

    use_document_cache(args.variant != "plain")
    cfg = settings.model_copy(update={"database_url": args.database, "redis_url": None})
    app = create_app(cfg)
    uvicorn.run(app, host="127.0.0.1", port=args.serve, log_level="warning", lifespan="on")


async def run(args: argparse.Namespace) -> None:
    owner_url = await prepare_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    plain_url = make_url(owner_url).set(drivername="postgresql")
    org_id = await ensure_org(plain_url.render_as_string(hide_password=False), Sizes())
    token = await admin_token(owner_url, org_id)
    cfg = settings.model_copy(update={"database_url": owner_url, "redis_url": None})
    engine = create_engine(owner_url, cfg=cfg)
    app = create_app(cfg, sessionmaker=create_sessionmaker(engine))
    try:
        if not args.uvicorn_only:
            async with app.router.lifespan_context(app):
                await in_process(app, token, args)
        if not args.no_uvicorn:
            await over_uvicorn(owner_url, token, args)
    finally:
        await engine.dispose()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=300, help="timed requests per variant and query")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--tree-runs", type=int, default=30)
    p.add_argument("--no-uvicorn", action="store_true")
    p.add_argument("--uvicorn-only", action="store_true")
    p.add_argument("--no-gc", action="store_true", help="skip the tree's GC measurements")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # a child server's port
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--database", help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        serve(arguments)
    else:
        asyncio.run(run(arguments))
