"""Score pipeline benchmarks; prints one JSON object per line.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.scores [--quick|--latency]

(a) check-in -> converged roll-up latency (p50, p95) at 1 and 100 check-ins/s
    through a real `okr worker` process: commit + enqueue as the API does, the
    latency runs from the commit to the worker's message with numbers that
    include the check-in (the achieved rate says whether the writer kept up);
(b) full recalculation of 10k and 100k KRs, set-based vs a naive per-row
    Python loop (scoring.py + one UPDATE per row) over the same data;
(c) incremental recompute of one leaf's ancestors in the 100k-KR graph, as
    generated (a company objective reads ~1,000 children) and balanced (200
    company objectives: fan-in ~10 at every level, like the reference tree);
(d) short jobs per second through arq, its defaults vs WorkerSettings.
Works in a scratch database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio.client import PubSub
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.generate import Org, Spec, generate, scratch_database
from bench.score_reference import load_graph, roll_up
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.outbox.consumers import NOTIFIER, WEBHOOKS
from okrgraph.domain.outbox.jobs import recalculation_job
from okrgraph.domain.outbox.service import INTERNAL_EVENT_TYPES
from okrgraph.domain.scores.queries import cycle_pace, levels_above
from okrgraph.domain.scores.service import full_recalculation, recalculate
from okrgraph.domain.webhooks.secrets import new_key

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def emit(**fields: Any) -> None:
    """One result line, with the machine's load (1-minute average) for context."""
    print(json.dumps({**fields, "load_1m": round(os.getloadavg()[0], 2)}), flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def reset_scores(sm: async_sessionmaker[AsyncSession], org: uuid.UUID) -> None:
    async with tenant_session(sm, org) as s:
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        await s.execute(text("UPDATE key_results SET score = 0, status = 'NOT_STARTED'"))
        await s.execute(text("UPDATE objectives SET progress = 0, status = 'NOT_STARTED'"))


async def full_set_based(sm: async_sessionmaker[AsyncSession], org: Org) -> tuple[float, int]:
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        result = await full_recalculation(s, org.org_id)
    return time.perf_counter() - started, len(result.changes)


NAIVE_HISTORY = text(
    "INSERT INTO score_history (org_id, id, subject_type, subject_id, value, status) "
    "VALUES (:org, gen_random_uuid(), :t, :id, :v, :s)"
)
NAIVE_EVENT = text(
    "INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload) "
    "VALUES (:org, gen_random_uuid(), 'score.changed', :t, :id, "
    "jsonb_build_object('value', CAST(:v AS float8), 'status', CAST(:s AS text)))"
)


async def full_naive(sm: async_sessionmaker[AsyncSession], org: Org) -> float:
    """The same work row by row: load, compute in Python (scoring.py), then per changed
    row one UPDATE, one history row and one event, as the set-based path writes."""
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        now = datetime.now(UTC)
        graph = await load_graph(s, org.org_id)
        krs, objs = roll_up(graph, await cycle_pace(s, org.org_id, now))
        for table, column, kind, rows, old in (
            ("key_results", "score", "KEY_RESULT", krs, graph.krs),
            ("objectives", "progress", "OBJECTIVE", objs, graph.objectives),
        ):
            for node, (value, status) in rows.items():
                before = old[node]
                if getattr(before, column) == value and before.status == status.value:
                    continue
                params = {"org": org.org_id, "t": kind, "id": node, "v": value, "s": status.value}
                await s.execute(
                    text(f"UPDATE {table} SET {column} = :v, status = :s WHERE id = :id"), params
                )
                await s.execute(NAIVE_HISTORY, params)
                await s.execute(NAIVE_EVENT, params)
    return time.perf_counter() - started


async def bench_full(sm: async_sessionmaker[AsyncSession], org: Org, naive: bool) -> None:
    await reset_scores(sm, org.org_id)
    first, changed = await full_set_based(sm, org)  # every number changes
    steady, _ = await full_set_based(sm, org)  # nothing changes: the repair pass
    fields: dict[str, Any] = {
        "bench": "full_recalculation",
        "key_results": org.counts["key_results"],
        "objectives": org.counts["objectives"],
        "alignments": org.counts["alignments"],
        "set_based_s": round(first, 3),
        "set_based_no_change_s": round(steady, 3),
        "changed": changed,
    }
    if naive:
        await reset_scores(sm, org.org_id)
        slow = await full_naive(sm, org)
        fields.update(naive_per_row_s=round(slow, 3), ratio=round(slow / first, 1))
    emit(**fields)


# Terms an ancestor's recomputation reads: its key results and contributing children.
CHILDREN_READ = text(
    """
    SELECT (SELECT count(*) FROM key_results WHERE objective_id = ANY(CAST(:ids AS uuid[])))
         + (SELECT count(*) FROM alignments
            WHERE contributes AND (parent_objective_id = ANY(CAST(:ids AS uuid[]))
                                   OR parent_key_result_id = ANY(CAST(:ids AS uuid[]))))
    """
)


async def bench_incremental(
    sm: async_sessionmaker[AsyncSession], org: Org, runs: int, graph: str
) -> None:
    """One leaf's ancestors, recomputed `runs` times (the value flips between two)."""
    leaf = org.increase_leaf_krs[0]
    times, level_times = [], []
    nodes = levels = 0
    for i in range(runs):
        async with tenant_session(sm, org.org_id) as s:
            await s.execute(
                text("UPDATE key_results SET current_value = :v WHERE id = :id"),
                {"v": 10.0 + 40 * (i % 2), "id": leaf},
            )
            pace = await cycle_pace(s, org.org_id, datetime.now(UTC))
            started = time.perf_counter()
            found = await levels_above(s, org.org_id, [leaf], [])
            level_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = await recalculate(s, org.org_id, key_result_ids=[leaf], pace=pace)
            times.append(time.perf_counter() - started)
            nodes, levels = result.nodes, len(found.levels)
            ancestors = [i for krs, objs in found.levels for i in (*krs, *objs) if i != leaf]
            children_read = await s.scalar(CHILDREN_READ, {"ids": ancestors})
    emit(
        bench="incremental_leaf",
        graph=graph,
        graph_nodes=org.counts["key_results"] + org.counts["objectives"],
        children_read=children_read,
        ancestors_recomputed=nodes,
        levels=levels,
        runs=runs,
        p50_ms=round(statistics.median(times) * 1000, 2),
        p95_ms=round(pct(times, 0.95) * 1000, 2),
        find_ancestors_p50_ms=round(statistics.median(level_times) * 1000, 2),
    )


async def start_worker(url: str) -> asyncio.subprocess.Process:
    """An `okr worker` process on the benchmark's database and Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ("OKR_DATABASE_URL", "OKR_REDIS_URL")}
    env.update(DATABASE_URL=url, REDIS_URL=REDIS_URL)
    env.setdefault("OKR_SECRET_KEYS", new_key())  # the worker refuses to start without one
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "okrgraph",
        "worker",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Progress:
    """The worker's progress messages of one organisation: when each arrived, and the
    newest check-in (`through`) its numbers include."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.arrivals: list[tuple[float, float]] = []  # (arrival, through)
        self.wanted = float("inf")  # the `through` that ends the wait
        self.reached = asyncio.Event()

    async def listen(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                through = json.loads(message["data"])["through"]
                if through:
                    at = datetime.fromisoformat(through).timestamp()
                    self.arrivals.append((time.time(), at))
                    if at >= self.wanted:
                        self.reached.set()

    async def settle(self, through: float, seconds: float) -> None:
        """Wait, at most `seconds`, for a message including the check-in at `through`."""
        self.wanted = through
        self.reached.clear()
        if self.arrivals and self.arrivals[-1][1] >= through:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reached.wait(), seconds)

    def latencies(self, sent: list[float], committed: dict[float, float]) -> list[float]:
        """From each check-in's commit (the API's answer) to the first message with it."""
        latencies = []
        for at in sent:
            done = next((arrival for arrival, through in self.arrivals if through >= at), None)
            if done is not None:
                latencies.append(done - committed[at])
        return latencies


# Events some consumer has yet to take, or the roll-up to process.
UNTAKEN = text(
    """
    SELECT count(*) FROM outbox_events e
    WHERE (e.processed_at IS NULL AND e.payload ? 'recalc')
       OR (e.type <> ALL(CAST(:internal AS text[]))
           AND (SELECT count(*) FROM outbox_consumed c
                WHERE c.org_id = e.org_id AND c.event_id = e.id) < :consumers)
    """
)


async def consumers_drained(
    sm: async_sessionmaker[AsyncSession], org: uuid.UUID, seconds: float
) -> float | None:
    """Wait (at most `seconds`) until the roll-up and the outbox's consumers have taken
    every event: a generated organisation's first roll-up changes thousands of
    numbers (7,614 at 300k key results), and their events keep the worker busy
    for a while (4,500 dispatched and told in 5.9 s). The latency measured is the
    steady state's; how long that took, or None."""
    started = time.perf_counter()
    params = {"internal": sorted(INTERNAL_EVENT_TYPES), "consumers": len((WEBHOOKS, NOTIFIER))}
    quiet = 0  # for 2 s: the worker's startup crons (roll_cycles) may still emit some
    while time.perf_counter() - started < seconds:
        async with tenant_session(sm, org) as s:
            quiet = 0 if await s.scalar(UNTAKEN, params) else quiet + 1
        if quiet >= 10:
            return round(time.perf_counter() - started, 1)
        await asyncio.sleep(0.2)
    return None


async def bench_latency(
    sm: async_sessionmaker[AsyncSession],
    url: str,
    org: Org,
    rate: float,
    seconds: float,
    *,
    drain: bool = True,
) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.flushdb()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"okr:org:{org.org_id}:progress")
    worker = await start_worker(url)
    progress = Progress(pubsub)
    committed: dict[float, float] = {}  # check-in time -> commit time

    async def one(kr: uuid.UUID, value: float) -> float:
        async with tenant_session(sm, org.org_id) as s:
            now = datetime.now(UTC)  # with a connection in hand: no client-side queueing
            await record_check_in(
                s, principal=system_principal(org.org_id), key_result_id=kr, value=value, now=now
            )
        committed[now.timestamp()] = time.time()
        name, kwargs = recalculation_job(org.org_id)
        await pool.enqueue_job(name, **kwargs)
        return now.timestamp()

    listener = asyncio.create_task(progress.listen())
    leaves = org.increase_leaf_krs  # 0 -> 100: every new value below moves the score
    try:
        await progress.settle(await one(leaves[-1], 5.0 + rate), 60)  # warm-up: the worker answers
        # Without the drain: measured while the consumers still work through the
        # warm-up roll-up's events (an organisation's first roll-up, thousands).
        drained = await consumers_drained(sm, org.org_id, 120) if drain else None
        progress.arrivals.clear()
        count = max(1, int(rate * seconds))
        started = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kr = leaves[i % (len(leaves) - 1)]
            value = 20.0 + 50 * ((i // (len(leaves) - 1)) % 2) + i / 1000
            tasks.append(asyncio.create_task(one(kr, value)))
        sent = await asyncio.gather(*tasks)
        achieved = count / (time.perf_counter() - started)
        await progress.settle(max(sent), 30)
    finally:
        listener.cancel()
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 30)
        await pubsub.aclose()
        await redis.aclose()
        await pool.aclose()
    latencies = progress.latencies(sent, committed)
    emit(
        bench="check_in_to_converged",
        rate_per_s=rate,
        achieved_rate_per_s=round(achieved, 1),
        check_ins=len(sent),
        warm_up_events_drained_s=drained,
        converged=len(latencies),
        publishes=len(progress.arrivals),
        p50_ms=round(statistics.median(latencies) * 1000, 1) if latencies else None,
        p95_ms=round(pct(latencies, 0.95) * 1000, 1) if latencies else None,
    )


async def bench_arq(sm: async_sessionmaker[AsyncSession], jobs: int) -> None:
    """Short jobs per second through arq: its defaults vs WorkerSettings' tuning.

    Each job is a real `recalculate_scores` of an organisation with nothing
    pending (lock, claim, commit: a few milliseconds), the common case.
    """
    from arq import func
    from arq.worker import Worker

    from okrgraph.worker.jobs.scores import recalculate_scores
    from okrgraph.worker.settings import MAX_JOBS, POLL_DELAY_S

    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        for label, poll_delay, max_jobs in (
            ("arq defaults", 0.5, 10),
            ("okrgraph", POLL_DELAY_S, MAX_JOBS),
        ):
            await pool.flushdb()
            for _ in range(jobs):
                await pool.enqueue_job("recalculate_scores", str(uuid.uuid4()))
            worker = Worker(
                functions=[func(recalculate_scores, keep_result=0)],
                redis_pool=pool,
                burst=True,
                poll_delay=poll_delay,
                max_jobs=max_jobs,
                handle_signals=False,
                ctx={"sessionmaker": sm},
            )
            started = time.perf_counter()
            await worker.main()
            elapsed = time.perf_counter() - started
            emit(
                bench="arq_short_jobs",
                settings=label,
                poll_delay_s=poll_delay,
                max_jobs=max_jobs,
                jobs=jobs,
                jobs_per_s=round(jobs / elapsed, 1),
            )
    finally:
        await pool.flushdb()
        await pool.aclose()


async def main(args: argparse.Namespace) -> None:
    sizes = args.sizes or ([10_000] if args.quick or args.latency else [10_000, 100_000])
    everything = not (args.latency or args.leaf)
    seconds = args.seconds or (5 if args.quick else 20)
    async with scratch_database() as url:
        engine = create_engine(url, pool_size=20, app_role="okr_app")
        sm = create_sessionmaker(engine)
        try:
            for n in sizes:
                conn = await asyncpg.connect(url)
                started = time.perf_counter()
                org = await generate(conn, Spec(krs=n))
                await conn.close()
                emit(
                    bench="generate", seconds=round(time.perf_counter() - started, 2), **org.counts
                )
                if everything:
                    await bench_full(sm, org, naive=True)
                if everything or args.leaf:
                    await bench_incremental(sm, org, runs=50, graph="generated")
                if everything or args.latency:
                    await bench_latency(
                        sm, url, org, rate=1, seconds=seconds, drain=not args.no_drain
                    )
                if everything and n == 10_000:
                    await bench_latency(sm, url, org, rate=100, seconds=2 if args.quick else 5)
            if (everything and not args.quick) or args.leaf:
                # Top fan-in ~10 (200 company objectives over 2,000 team objectives)
                # rather than ~400: the shape of the reference tree.
                conn = await asyncpg.connect(url)
                balanced = await generate(conn, Spec(krs=max(sizes), company_objectives=200))
                await conn.close()
                await bench_incremental(sm, balanced, runs=50, graph="balanced")
            if everything:
                await bench_arq(sm, jobs=200 if args.quick else 1000)
        finally:
            await engine.dispose()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10k key results, shorter runs")
    p.add_argument("--latency", action="store_true", help="only (a), at 1 check-in/s")
    p.add_argument("--leaf", action="store_true", help="only (c), generated and balanced")
    p.add_argument(
        "--sizes",
        type=lambda v: [int(n) for n in v.split(",")],
        help="key results per organisation, comma-separated (default 10000,100000)",
    )
    p.add_argument("--seconds", type=float, help="length of a latency run (default 20)")
    p.add_argument(
        "--no-drain",
        action="store_true",
        help="(a) at once after the warm-up, while the outbox's consumers still drain its events",
    )
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
