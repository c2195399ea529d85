"""Webhook benchmarks; prints one JSON object per line (each with the 1-minute load).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python -m bench.webhooks [--quick]

(a) fan-out: a burst of K check-ins committed at once in an organisation with 10
    endpoints (each asking for `checkin.created`) on one local receiver; a real
    `okr worker` process dispatches, signs, POSTs and records them. Events/s and
    deliveries/s from the first commit to the last arrival. Baseline, same run: a
    bare httpx loop POSTing as many signed bodies to the same receiver, as many at
    once as the sender does (`BATCH`): `ratio` = worker / bare.
(b) latency: check-ins at 1/s and 50/s (commit, then the follow-ups to Redis, as the
    API does) in an organisation with one endpoint; from each commit to the
    receiver's arrival of its `checkin.created` (p50, p95). Baseline, same
    check-ins: the score roll-up's latency (commit -> the worker's progress message
    including it, as bench/scores.py measures): `ratio_p50` = webhook / roll-up.
Works in a scratch database that is dropped afterwards; flushes BENCH_REDIS_URL's database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.generate import Org, Spec, generate, scratch_database
from bench.scores import REDIS_URL, Progress, emit, pct, start_worker
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.config import settings
from okrgraph.domain.db import create_engine, create_sessionmaker, set_tenant, tenant_session
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.domain.messages import progress_channel
from okrgraph.domain.models import Organization
from okrgraph.domain.outbox.after_commit import AfterCommit
from okrgraph.domain.outbox.service import CHECKIN_CREATED
from okrgraph.domain.webhooks.catalog import create_webhook_endpoint, new_secret
from okrgraph.domain.webhooks.delivery import BATCH, signed_headers
from okrgraph.domain.webhooks.secrets import new_key
from okrgraph.worker.jobs.webhooks import http_client
from tests.webhook_receiver import Receiver, Request, serving

SPEC = Spec(krs=600, teams=5, people=50, check_ins_per_kr=1, kpis=2, measurements_per_kpi=5)
WAIT_S = 60.0


@dataclass
class Bench:
    """What every measurement shares: the data, Redis and the receiver."""

    sm: async_sessionmaker[AsyncSession]
    queue: Any  # arq pool: the after-commit follow-ups go here, as from the API
    receiver: Receiver


async def add_endpoints(sm: async_sessionmaker[AsyncSession], org: Org, urls: list[str]) -> None:
    async with tenant_session(sm, org.org_id) as s:
        await s.execute(update(Organization).values(allow_private_webhook_urls=True))
        for url in urls:
            await create_webhook_endpoint(
                s, system_principal(org.org_id), url=url, event_types=[CHECKIN_CREATED]
            )


async def commit_check_in(
    b: Bench, org: Org, kr: uuid.UUID, value: float, now: datetime | None = None
) -> tuple[str, float]:
    """One check-in as the API makes it (commit, then the follow-ups to Redis); its id
    and the commit's wall-clock time."""
    async with b.sm() as s:
        async with s.begin():
            await set_tenant(s, org.org_id)
            check_in = await record_check_in(
                s, principal=system_principal(org.org_id), key_result_id=kr, value=value, now=now
            )
        committed = time.time()
        await AfterCommit.take(s).drain(b.queue)
    return str(check_in.id), committed


def check_in_id(request: Request) -> str:
    return str(json.loads(request.body)["data"].get("check_in_id"))


async def arrivals(b: Bench, ids: set[str], per_id: int) -> dict[str, float]:
    """Wait until each check-in has reached `per_id` endpoints; its last arrival."""
    last: dict[str, float] = {}
    hits = 0
    read = 0

    def done(requests: list[Request]) -> bool:
        nonlocal hits, read
        for r in requests[read:]:
            key = check_in_id(r)
            if key in ids:
                hits += 1
                last[key] = max(last.get(key, 0.0), r.arrived)
        read = len(requests)
        return hits >= len(ids) * per_id

    await b.receiver.until(done, WAIT_S)
    return last


async def bench_fan_out(b: Bench, org: Org, events: int, endpoints: int, bare: float) -> None:
    leaves = org.increase_leaf_krs
    writers = 10

    async def writer(k: int) -> list[tuple[str, float]]:
        return [
            await commit_check_in(b, org, leaves[i % len(leaves)], 20.0 + i % 50)
            for i in range(k, events, writers)
        ]

    started = time.time()
    done = [c for part in await asyncio.gather(*(writer(k) for k in range(writers))) for c in part]
    committed_s = time.time() - started
    last = await arrivals(b, {i for i, _ in done}, endpoints)
    elapsed = max(last.values()) - started
    emit(
        bench="webhook_fan_out",
        endpoints=endpoints,
        events=events,
        deliveries=events * endpoints,
        commit_burst_s=round(committed_s, 2),
        elapsed_s=round(elapsed, 2),
        events_per_s=round(events / elapsed, 1),
        deliveries_per_s=round(events * endpoints / elapsed, 1),
        bare_posts_per_s=round(bare, 1),
        ratio=round(events * endpoints / elapsed / bare, 3),
    )


async def bare_posts(url: str, n: int) -> float:
    """POSTs/s of signed bodies to `url`, BATCH at once, with the worker's client (in a
    process of its own, as the worker is: the receiver keeps this one's loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.webhooks", "--bare-posts", url, str(n), stdout=PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    return float(json.loads(out)["posts_per_s"])


async def post_in_batches(url: str, n: int) -> None:
    """The `--bare-posts` process: prints {"posts_per_s": ...}."""
    secret = new_secret()
    body = json.dumps({"type": CHECKIN_CREATED, "timestamp": "", "data": {}})

    async def post(client: Any, i: int) -> None:
        headers = signed_headers(secret, f"bare-{i}", int(time.time()), body)
        response = await client.post(url, content=body, headers=headers)
        response.raise_for_status()

    async with http_client() as client:
        await post(client, -1)  # connect first, as the worker's warm client has
        started = time.perf_counter()
        for first in range(0, n, BATCH):
            await asyncio.gather(*(post(client, i) for i in range(first, min(n, first + BATCH))))
        print(json.dumps({"posts_per_s": n / (time.perf_counter() - started)}))


async def bench_latency(b: Bench, org: Org, rate: float, seconds: float) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    pubsub = redis.pubsub()
    await pubsub.subscribe(progress_channel(org.org_id))
    progress = Progress(pubsub)
    listener = asyncio.create_task(progress.listen())
    lags: list[float] = []
    lag_probe = asyncio.create_task(loop_lag(lags))
    leaves = org.increase_leaf_krs
    committed: dict[str, float] = {}
    recorded_at: dict[float, float] = {}  # check-in time -> commit (for Progress)

    async def one(i: int) -> float:
        now = datetime.now(UTC)
        kr = leaves[i % len(leaves)]
        value = 20.0 + 50 * (i // len(leaves) % 2) + i / 1000
        check_in, at = await commit_check_in(b, org, kr, value, now)
        committed[check_in] = recorded_at[now.timestamp()] = at
        return now.timestamp()

    try:
        count = max(1, int(rate * seconds))
        started = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        sent = await asyncio.gather(*tasks)
        achieved = count / (time.perf_counter() - started)
        last = await arrivals(b, set(committed), 1)
        await progress.settle(max(sent), WAIT_S)
    finally:
        listener.cancel()
        lag_probe.cancel()
        await pubsub.aclose()
        await redis.aclose()
    webhook = [last[i] - committed[i] for i in committed]
    rollup = progress.latencies(list(sent), recorded_at)
    emit(
        bench="check_in_to_delivery",
        rate_per_s=rate,
        achieved_rate_per_s=round(achieved, 1),
        check_ins=count,
        p50_ms=round(statistics.median(webhook) * 1000, 1),
        p95_ms=round(pct(webhook, 0.95) * 1000, 1),
        rollup_p50_ms=round(statistics.median(rollup) * 1000, 1),
        rollup_p95_ms=round(pct(rollup, 0.95) * 1000, 1),
        ratio_p50=round(statistics.median(webhook) / statistics.median(rollup), 2),
        driver_loop_lag_p95_ms=round(pct(lags, 0.95) * 1000, 1),
    )


async def loop_lag(lags: list[float]) -> None:
    """How late this process's event loop wakes a 10 ms sleep: past a few ms, the
    driver itself (commits, enqueues, the receiver) is short of CPU."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started - 0.01)


async def warm_up(b: Bench, org: Org, endpoints: int) -> None:
    """One check-in delivered: the worker is up and its connections are made."""
    check_in, _ = await commit_check_in(b, org, org.increase_leaf_krs[-1], 99.0)
    await arrivals(b, {check_in}, endpoints)


async def main(quick: bool) -> None:
    # The worker unseals the endpoints' secrets with the key this process seals them with.
    os.environ["OKR_SECRET_KEYS"] = settings.secret_keys = settings.secret_keys or new_key()
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    async with scratch_database() as url, serving(keep_alive=True) as receiver:
        engine = create_engine(url, pool_size=20, app_role="okr_app")
        queue = await create_pool(RedisSettings.from_dsn(REDIS_URL))
        b = Bench(create_sessionmaker(engine), queue, receiver)
        conn = await asyncpg.connect(url)
        fan_out, single = await generate(conn, SPEC), await generate(conn, SPEC)
        await conn.close()
        await add_endpoints(b.sm, fan_out, [receiver.url_for(f"/fan/{i}") for i in range(10)])
        await add_endpoints(b.sm, single, [receiver.url_for("/one")])
        worker = await start_worker(url)
        try:
            await warm_up(b, fan_out, 10)
            await warm_up(b, single, 1)
            events = 100 if quick else 300
            bare = await bare_posts(receiver.url_for("/bare"), events * 10)  # worker idle
            await bench_latency(b, single, rate=1, seconds=5 if quick else 15)
            await bench_latency(b, single, rate=50, seconds=2 if quick else 5)
            await bench_fan_out(b, fan_out, events=events, endpoints=10, bare=bare)
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker.wait(), 30)
            await queue.aclose()
            await engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare-posts"]:
        asyncio.run(post_in_batches(sys.argv[2], int(sys.argv[3])))
    else:
        asyncio.run(main("--quick" in sys.argv))
