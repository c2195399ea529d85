"""closeCycle at scale: the whole close as one domain call, committed; prints JSON lines.

    .venv/bin/python -m bench.close_cycle                    # 1,000 and 10,000 objectives
    .venv/bin/python -m bench.close_cycle --objectives 1000 --dry-run
    .venv/bin/python -m bench.close_cycle --job          # as the worker's job, end to end
    .venv/bin/python -m bench.close_cycle --scores current   # the common case only

Each size is a generated organisation (bench/generate.py: one ACTIVE quarter,
three key results per objective, check-ins, alignments, KPI links; scores at
0, so the close's full recalculation rolls everything up and most objectives
are missed and carried over with their remainder) in a scratch database, closed
by `close_cycle` as the app role (RLS applies) in one transaction. That is the
worst case (`"scores": "stale"`: every number changes and the close's pass
writes every row). `--scores current` first commits a full recalculation, as
the incremental pipeline keeps a live organisation's scores, so the close's own
pass finds nothing to write: the common case. Both run by default, each on an
organisation of its own. The line
gives the seconds of the whole close and of each phase (the progress the
close reports: `RECALCULATING` is the score pipeline's full pass), the SQL
statements it ran, the copies made, and the machine's load. With `--dry-run`
a dry run of the same cycle comes first (a faithful preview: the real close in
a savepoint rolled back), so the two can be compared. With `--job` the cycle is
closed as closeCycle does a large one: `request_close` queues it (committed), then
the worker's `run_close_job` runs it (in this process, no Redis: what
close_cycle_job does), the line giving the seconds from the request to DONE
(the job's committed recalculation before the close included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.generate import Org, Spec, generate, scratch_database
from okrgraph.domain.auth.tokens import system_principal
from okrgraph.domain.cycles.close_jobs import request_close, run_close_job
from okrgraph.domain.cycles.closing import Closing, close_cycle
from okrgraph.domain.db import create_engine, create_sessionmaker, tenant_session
from okrgraph.domain.models import CloseJob
from okrgraph.domain.scores.service import full_recalculation


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def emit(**line: Any) -> None:
    print(json.dumps({**line, "load": load()}, default=str), flush=True)


class Phases:
    """The close's progress reports, timed: seconds per phase (a phase entered again is
    `<phase>_2`: the job's committed RECALCULATING, then the close's own)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.current: str | None = None
        self.since = self.started
        self.seconds: dict[str, float] = {}

    async def __call__(self, phase: str, counts: dict[str, int]) -> None:
        self._end()
        if phase in self.seconds:
            phase = f"{phase}_2"
        self.current, self.since = phase, time.perf_counter()

    def _end(self) -> None:
        if self.current is not None:
            self.seconds[self.current] = round(time.perf_counter() - self.since, 3)

    def done(self) -> dict[str, float]:
        self._end()
        self.current = None
        return self.seconds


class Statements:
    """Counts the SQL statements run on an engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine, self.count = engine, 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


async def timed_close(
    sm: async_sessionmaker[AsyncSession],
    org: Org,
    statements: Statements | None = None,
    *,
    dry_run: bool = False,
) -> tuple[Closing, dict[str, Any]]:
    """The close of the generated cycle as one domain call, committed (or a dry run)."""
    phases = Phases()
    if statements is not None:
        statements.take()
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        closing = await close_cycle(
            s, system_principal(org.org_id), org.cycle_id, dry_run=dry_run, progress=phases
        )
    seconds = round(time.perf_counter() - started, 2)
    figures = {
        "seconds": seconds,
        "phases": phases.done(),
        "statements": statements.take() if statements is not None else None,
        "objectives_graded": len(closing.objectives),
        "key_results_frozen": closing.key_results_frozen,
        "objectives_carried_over": closing.objectives_carried_over,
        "key_results_carried_over": closing.key_results_carried_over,
    }
    return closing, figures


async def timed_job(sm: async_sessionmaker[AsyncSession], org: Org) -> dict[str, Any]:
    """The close as the worker runs a large one: queued by request_close, then run;
    `phases` as the job reports them (RECALCULATING: its committed full pass, up to the
    close's own RECALCULATING_2; ANNOUNCING lasts up to the close's commit)."""
    phases = Phases()
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        job = await request_close(s, system_principal(org.org_id), org.cycle_id)
    requested = time.perf_counter() - started
    assert isinstance(job, CloseJob), "below ASYNC_CLOSE_OBJECTIVES: closed in the request"
    state = await run_close_job(sm, org.org_id, job.id, observe=phases)
    seconds = round(time.perf_counter() - started, 2)
    async with tenant_session(sm, org.org_id) as s:
        done = await s.get(CloseJob, (org.org_id, job.id))
    assert done is not None
    return {
        "seconds": seconds,
        "request_s": round(requested, 3),
        "phases": phases.done(),
        "state": state.value if state else None,
        "error": done.error,
        "objectives_graded": done.objectives_graded,
        "objectives_carried_over": done.objectives_carried_over,
        "key_results_carried_over": done.key_results_carried_over,
    }


async def bring_current(sm: async_sessionmaker[AsyncSession], org: Org) -> float:
    """A committed full recalculation (what the score pipeline leaves); its seconds."""
    started = time.perf_counter()
    async with tenant_session(sm, org.org_id) as s:
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        await full_recalculation(s, org.org_id)
    return round(time.perf_counter() - started, 2)


async def bench_close(
    url: str, objectives: int, *, scores: str, dry_run: bool, job: bool = False
) -> None:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        org = await generate(conn, Spec(krs=3 * objectives))
    finally:
        await conn.close()
    emit(measure="generate", seconds=round(time.perf_counter() - started, 1), **org.counts)
    engine = create_engine(url, pool_size=2, app_role="okr_app")
    statements = Statements(engine)
    try:
        sm = create_sessionmaker(engine)
        if scores == "current":
            seconds = await bring_current(sm, org)
            emit(measure="bring_current", objectives=org.objectives, seconds=seconds)
        if dry_run:
            _, figures = await timed_close(sm, org, statements, dry_run=True)
            emit(measure="close_cycle_dry_run", objectives=org.objectives, scores=scores, **figures)
        if job:
            figures = await timed_job(sm, org)
            emit(measure="close_cycle_job", objectives=org.objectives, scores=scores, **figures)
            return
        _, figures = await timed_close(sm, org, statements, dry_run=False)
        emit(
            measure="close_cycle",
            objectives=org.objectives,
            key_results=org.counts["key_results"],
            scores=scores,
            **figures,
        )
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    for objectives in args.objectives:
        for scores in args.scores:
            async with scratch_database() as url:
                await bench_close(
                    url, objectives, scores=scores, dry_run=args.dry_run, job=args.job
                )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--objectives", type=int, nargs="+", default=[1_000, 10_000])
    p.add_argument("--dry-run", action="store_true", help="a dry run of the cycle first")
    p.add_argument("--job", action="store_true", help="queued and run as the worker's job")
    p.add_argument(
        "--scores",
        nargs="+",
        choices=["stale", "current"],
        default=["stale", "current"],
        help="stale: scores at 0 (worst case); current: a committed full pass first",
    )
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
