"""The full recalculation alone (scores.py's (b) without the naive loop), repeated.

    .venv/bin/python -m bench.full_pass                  # 10k and 100k key results, 3 runs
    .venv/bin/python -m bench.full_pass --sizes 100000 --runs 5

Per size, one generated organisation (bench/generate.py) in a scratch database;
each run resets every score (scores.reset_scores), then times a pass that
changes every number (`all_changed_s`) and one that changes none
(`nothing_changed_s`, the repair cron's common case). `statements` counts the
pass's statements (SQLAlchemy's cursor executes). One JSON line per run, then
one per size with the best and median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.generate import Org, Spec, generate, scratch_database
from bench.scores import emit, reset_scores
from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.scores.service import full_recalculation


class Statements:
    """Counts the statements an engine sends."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._one)

    def _one(self, *_: Any) -> None:
        self.count += 1


async def one_pass(
    sm: async_sessionmaker[AsyncSession], org: Org, statements: Statements
) -> tuple[float, int, int]:
    """Seconds, changes and statements of one full recalculation."""
    before = statements.count
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        result = await full_recalculation(s, org.org_id)
    return time.perf_counter() - started, len(result.changes), statements.count - before


async def bench_size(
    sm: async_sessionmaker[AsyncSession], org: Org, runs: int, statements: Statements
) -> None:
    changed_s, same_s = [], []
    for run in range(runs):
        await reset_scores(sm, org.org_id)
        first, changes, first_statements = await one_pass(sm, org, statements)
        steady, unchanged, steady_statements = await one_pass(sm, org, statements)
        changed_s.append(first)
        same_s.append(steady)
        emit(
            bench="full_pass",
            key_results=org.counts["key_results"],
            run=run,
            all_changed_s=round(first, 3),
            changes=changes,
            statements=first_statements,
            nothing_changed_s=round(steady, 3),
            changes_after=unchanged,
            statements_nothing_changed=steady_statements,
        )
    emit(
        bench="full_pass_summary",
        key_results=org.counts["key_results"],
        runs=runs,
        all_changed_best_s=round(min(changed_s), 3),
        all_changed_median_s=round(statistics.median(changed_s), 3),
        nothing_changed_best_s=round(min(same_s), 3),
        nothing_changed_median_s=round(statistics.median(same_s), 3),
    )


async def main(sizes: list[int], runs: int) -> None:
    async with scratch_database() as url:
        engine = create_engine(url, pool_size=2, app_role="okr_app")
        statements = Statements(engine)
        sm = create_sessionmaker(engine)
        try:
            for n in sizes:
                conn = await asyncpg.connect(url)
                org = await generate(conn, Spec(krs=n))
                await conn.close()
                await bench_size(sm, org, runs, statements)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--sizes",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[10_000, 100_000],
        help="key results per organisation, comma-separated (default 10000,100000)",
    )
    p.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    args = p.parse_args()
    asyncio.run(main(args.sizes, args.runs))
