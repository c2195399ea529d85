"""The weekly digest of a whole organisation: time and SQL statements, at 1,000 and
10,000 people, against a naive per-person loop over a sample.

    .venv/bin/python -m bench.digest            # 1,000 and 10,000 people (~1-2 min)
    .venv/bin/python -m bench.digest --people 1000 --sample 100

Works in a scratch database that is dropped afterwards. Organisations come from
bench/graph_data.py (per person: 2 objectives, 3 key results, 3 check-ins; a
team per 10 people, a KPI per 10 people), plus a score_history row per objective
10 days old, so every objective has a 7-day movement. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.generate import scratch_database
from bench.graph_data import Sizes, ensure_org
from okrgraph.domain.db import create_engine, create_sessionmaker, set_tenant
from okrgraph.domain.notifications.digest import collect_digests, digest_note, send_weekly_digest
from okrgraph.domain.notifications.notify import notify_each
from okrgraph.domain.outbox.after_commit import unit_of_work


def emit(**fields: Any) -> None:
    """One result line, with the machine's load (1-minute average) for context."""
    print(json.dumps({**fields, "load_1m": round(os.getloadavg()[0], 2)}), flush=True)


def sizes_for(people: int) -> Sizes:
    return Sizes(
        teams=max(1, people // 10),
        people=people,
        objectives=2 * people,
        key_results=3 * people,
        check_ins=3 * people,
        kpis=max(1, people // 10),
    )


async def populate(url: str, people: int) -> uuid.UUID:
    """The organisation, with a score_history row 10 days old per objective."""
    org_id = await ensure_org(url, sizes_for(people))
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO score_history (org_id, id, subject_type, subject_id, value, status,
                                       recorded_at)
            SELECT org_id, gen_random_uuid(), 'OBJECTIVE', id, greatest(progress - 0.1, 0),
                   status, now() - interval '10 days'
            FROM objectives WHERE org_id = $1
            """,
            org_id,
        )
        await conn.execute("ANALYZE score_history")
        return org_id
    finally:
        await conn.close()


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def naive(
    sm: async_sessionmaker[AsyncSession], org_id: uuid.UUID, now: datetime, sample: int
) -> tuple[float, int, int]:
    """One person at a time (their reads, their notify), over the first `sample`
    people, rolled back: seconds, statements and people."""
    week = "bench-naive"
    async with sm() as session:
        await session.begin()
        await set_tenant(session, org_id)
        query = text("SELECT id FROM people ORDER BY id LIMIT :n")
        people = list((await session.execute(query, {"n": sample})).scalars())
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        with counted(engine) as seen:
            started = time.perf_counter()
            for person in people:
                digest = (await collect_digests(session, [person], now))[person]
                if digest.sections():
                    note = digest_note(person, digest, week)
                    await notify_each(session, org_id, {person: note})
            seconds = time.perf_counter() - started
        await session.rollback()
    return seconds, len(seen), len(people)


async def set_based(
    engine: AsyncEngine, sm: async_sessionmaker[AsyncSession], org_id: uuid.UUID, now: datetime
) -> tuple[float, int, int]:
    """The organisation's digest as the cron sends it: seconds, statements, new rows."""
    with counted(engine) as seen:
        started = time.perf_counter()
        async with unit_of_work(sm, org_id) as session:
            new = await send_weekly_digest(session, org_id, now)
        seconds = time.perf_counter() - started
    return seconds, len(seen), new


async def bench_size(
    engine: AsyncEngine, sm: async_sessionmaker[AsyncSession], url: str, people: int, sample: int
) -> None:
    started = time.perf_counter()
    org_id = await populate(url, people)
    emit(bench="generate", people=people, seconds=round(time.perf_counter() - started, 2))
    now = datetime.now(UTC)
    now += timedelta(days=(7 - now.weekday()) % 7 or 7)  # next Monday, digest due (UTC)
    now = now.replace(hour=10, minute=0)
    naive_s, naive_statements, sampled = await naive(sm, org_id, now, sample)
    seconds, statements, new = await set_based(engine, sm, org_id, now)
    rerun_s, rerun_statements, again = await set_based(engine, sm, org_id, now)
    naive_estimate = naive_s / sampled * people
    emit(
        bench="weekly_digest",
        people=people,
        set_based_s=round(seconds, 3),
        statements=statements,
        statements_per_person=round(statements / people, 5),
        new_rows=new,
        naive_sample=sampled,
        naive_s=round(naive_s, 3),
        naive_statements_per_person=round(naive_statements / sampled, 2),
        naive_estimate_s=round(naive_estimate, 2),
        ratio=round(naive_estimate / seconds, 1),
        rerun_s=round(rerun_s, 3),
        rerun_statements=rerun_statements,
        rerun_new_rows=again,
    )


async def main(args: argparse.Namespace) -> None:
    async with scratch_database() as url:
        engine = create_engine(url, pool_size=2, app_role="okr_app")
        sm = create_sessionmaker(engine)
        try:
            for people in args.people:
                await bench_size(engine, sm, url, people, args.sample)
        finally:
            await engine.dispose()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--people", type=int, nargs="+", default=[1000, 10_000])
    p.add_argument("--sample", type=int, default=200, help="people in the naive loop")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
