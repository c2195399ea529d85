"""The incremental roll-up reads what a change touches, not the organisation (issue 11).

Two organisations of the same shape, one 14 times the other (bench/graph_data.py,
with a backlog of pending `score.changed` events), in one database. One
recalculation event per organisation names a leaf key result, its objective and a
KPI that drives a key result; `process_pending_events` consumes it while every
statement it sends is recorded. Each recorded statement is then PREPAREd and run
under its GENERIC plan (plan_cache_mode = force_generic_plan: the plan
PostgreSQL may pick for any prepared statement after five runs, whatever the
parameters), with EXPLAIN ANALYZE: the rows its scans read must not grow with the
organisation, and no big table may be read by a sequential scan (see
`generic_reads` for the planner's settings). The score pipeline's outbox
statements must not read the backlog of other events either. PREPARE +
EXPLAIN EXECUTE rather than EXPLAIN (GENERIC_PLAN): the latter needs PostgreSQL
16, the CI's embedded server is 16, a developer's may be 15.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.graph_data import Sizes, ensure_org
from okrgraph.domain import clock
from okrgraph.domain.db import create_engine, tenant_session
from okrgraph.domain.outbox.service import consume_all_pending
from okrgraph.domain.scores.pending_events import process_pending_events
from tests.conftest import Servers, new_database

# The same shape at two sizes: 3 key results and 5 check-ins per objective, 9 team
# objectives per team, 45 per company objective; 300 and 4,200 key results.
SMALL = Sizes(teams=5, people=50, objectives=100, key_results=300, check_ins=1500, kpis=10)
LARGE = Sizes(teams=70, people=700, objectives=1400, key_results=4200, check_ins=21000, kpis=140)
BACKLOG_PER_KEY_RESULT = 3  # pending `score.changed` events, as after a few full passes

# Tables that grow with the organisation (cycles, teams and people are read whole:
# a handful of cycles, and neither is in the roll-up's statements).
BIG_TABLES = {
    "key_results",
    "objectives",
    "alignments",
    "check_ins",
    "kpis",
    "kpi_links",
    "kpi_measurements",
    "outbox_events",
    "score_history",
}
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    key_results: int
    engine: AsyncEngine  # the app role's, on the organisation's own database
    url: str  # the database's owner


@asynccontextmanager
async def generated(servers: Servers, sizes: Sizes) -> AsyncIterator[Org]:
    """An organisation alone in a database of its own: the planner's statistics
    (and a sequential scan's cost) are those of a database of that size."""
    async with new_database(servers.postgres_url) as url:
        org_id = await _generated(url, sizes)
        engine = create_engine(url, pool_size=1)
        try:
            yield Org(org_id, sizes.key_results, engine, url)
        finally:
            await engine.dispose()


@pytest.fixture(scope="module")
async def two_orgs(servers: Servers) -> AsyncIterator[tuple[Org, Org]]:
    async with generated(servers, SMALL) as small, generated(servers, LARGE) as large:
        yield small, large


async def _generated(url: str, sizes: Sizes) -> uuid.UUID:
    """The organisation, a KPI-driven key result, a backlog of other events, and one
    pending recalculation event naming a leaf, its objective and that KPI."""
    org_id = await ensure_org(url, sizes)
    conn = await asyncpg.connect(url)
    try:
        leaf, objective = await _one(
            conn,
            "SELECT k.id, k.objective_id FROM key_results k JOIN objectives o"
            " ON o.org_id = k.org_id AND o.id = k.objective_id"
            " WHERE k.org_id = $1 AND o.level = 'INDIVIDUAL' ORDER BY k.title LIMIT 1",
            org_id,
        )
        kpi, followed = await _one(
            conn,
            "SELECT kpi_id, key_result_id FROM kpi_links WHERE org_id = $1"
            " AND key_result_id IS NOT NULL ORDER BY created_at, id LIMIT 1",
            org_id,
        )
        await conn.execute(
            "UPDATE key_results SET progress_driver = 'KPI' WHERE org_id = $1 AND id = $2",
            org_id,
            followed,
        )
        await conn.execute(
            "INSERT INTO outbox_events (org_id, id, type, subject_type, subject_id, payload,"
            " created_at) SELECT org_id, gen_random_uuid(), 'score.changed', 'KEY_RESULT', id,"
            " '{\"value\": 0.5}', now() - interval '1 hour'"
            " FROM key_results, generate_series(1, $2) WHERE org_id = $1",
            org_id,
            BACKLOG_PER_KEY_RESULT,
        )
        recalc = {"key_results": [str(leaf)], "objectives": [str(objective)], "kpis": [str(kpi)]}
        await conn.execute(
            "INSERT INTO outbox_events (org_id, id, type, payload)"
            " VALUES ($1, gen_random_uuid(), 'check_in.recorded', $2::jsonb)",
            org_id,
            json.dumps({"recalc": recalc}),
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return org_id


async def _one(conn: asyncpg.Connection, query: str, *args: Any) -> asyncpg.Record:
    row = await conn.fetchrow(query, *args)
    assert row is not None
    return row


@dataclass(frozen=True)
class Sent:
    sql: str
    params: tuple[Any, ...]


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[Sent]]:
    """Every statement the engine sends meanwhile (but SET and transaction control)."""
    sent: list[Sent] = []

    def on_execute(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if not many and verb in {"SELECT", "WITH", "UPDATE", "INSERT", "DELETE"}:
            sent.append(Sent(statement, tuple(params or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


@dataclass
class Reads:
    """What a statement's scans read under its generic plan, summed over its runs."""

    rows: Counter[str] = field(default_factory=Counter)  # rows read per table
    seq_scans: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _scans(node: dict[str, Any], reads: Reads) -> None:
    table = node.get("Relation Name")
    if node["Node Type"] in SCANS and table:
        per_loop = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        reads.rows[table] += math.ceil(per_loop * node.get("Actual Loops", 1))
        if node["Node Type"] == "Seq Scan":
            reads.seq_scans.add(table)
    for child in node.get("Plans", []):
        _scans(child, reads)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        items = ("NULL" if v is None else '"' + _text(v).replace('"', '\\"') + '"' for v in value)
        return "{" + ",".join(items) + "}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def literal(value: Any) -> str:
    """A parameter as an untyped SQL literal (EXECUTE casts it to the parameter's type)."""
    return "NULL" if value is None else "'" + _text(value).replace("'", "''") + "'"


async def generic_reads(conn: asyncpg.Connection, sent: Sent) -> Reads:
    """Run `sent` once more under its generic plan, in a savepoint rolled back.

    With a big organisation's costs: at these sizes reading a whole table of a few
    thousand rows is the cheapest plan PostgreSQL can find for any statement,
    and it takes it; at 300k key results it takes an index when the statement's
    shape allows one. Without sequential and bitmap scans (and with an SSD's
    random_page_cost) it must show whether the shape does.
    """
    await conn.execute("SAVEPOINT okr_probe")
    try:
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        await conn.execute("SET LOCAL random_page_cost = 1.1")
        await conn.execute(f"PREPARE okr_probe AS {sent.sql}")
        args = ", ".join(literal(p) for p in sent.params)
        execute = f"EXECUTE okr_probe({args})" if sent.params else "EXECUTE okr_probe"
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}")
        await conn.execute("DEALLOCATE okr_probe")
    finally:
        await conn.execute("ROLLBACK TO SAVEPOINT okr_probe")
    reads = Reads()
    _scans((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"], reads)
    return reads


async def incremental_reads(org: Org) -> dict[str, Reads]:
    """Per statement of the incremental path (by its text): what it reads, generically."""
    engine = org.engine
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    per_statement: dict[str, Reads] = {}
    async with tenant_session(sessions, org.id) as session:
        with recording(engine) as sent:
            result = await process_pending_events(session, org.id)
        assert result.events == 1
        assert result.nodes > 0
        conn = await _driver(session)
        for one in sent:
            reads = await generic_reads(conn, one)
            into = per_statement.setdefault(one.sql, Reads())
            into.rows.update(reads.rows)
            into.seq_scans |= reads.seq_scans
        await session.rollback()  # the event stays pending for the next run
    return per_statement


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    raw = await (await session.connection()).get_raw_connection()
    conn = raw.driver_connection
    assert isinstance(conn, asyncpg.Connection)
    return conn


def _name(sql: str) -> str:
    return " ".join(sql.split())[:140]


async def test_incremental_statements_read_the_change_not_the_organisation(
    two_orgs: tuple[Org, Org],
) -> None:
    small, large = two_orgs
    few = await incremental_reads(small)
    many = await incremental_reads(large)
    assert few.keys() == many.keys()
    grows = large.key_results / small.key_results
    problems = []
    for sql, big in many.items():
        # Same shape, same change: a statement that reads only what the change
        # touches reads about as much in both; one scanning the organisation 14x.
        if big.total > 2 * few[sql].total + 50:
            problems.append(
                f"reads {few[sql].total} -> {big.total} rows as the organisation grows "
                f"{grows:.0f}x ({dict(big.rows)}): {_name(sql)}"
            )
        if big.seq_scans & BIG_TABLES:
            problems.append(f"Seq Scan on {sorted(big.seq_scans & BIG_TABLES)}: {_name(sql)}")
    assert not problems, "\n".join(problems)


async def test_the_pipelines_outbox_statements_skip_other_pending_events(
    two_orgs: tuple[Org, Org],
) -> None:
    """Thousands of `score.changed` events pending (processed_at NULL), one pending
    recalculation event: the full pass's consume_all_pending and the relay's
    okr_orgs_with_pending_recalc() read the one through ix_outbox_events_recalc_pending.
    (The incremental claim and mark are held to it by the test above.)"""
    _, large = two_orgs
    sessions = async_sessionmaker(large.engine, expire_on_commit=False, autoflush=False)
    async with tenant_session(sessions, large.id) as session:
        with recording(large.engine) as sent:
            consumed = await consume_all_pending(session, large.id, clock.now())
        assert len(consumed.event_ids) == 1
        reads = await generic_reads(await _driver(session), sent[-1])
        await session.rollback()
    assert reads.rows["outbox_events"] <= 2, _name(sent[-1].sql)
    owner = await asyncpg.connect(large.url)
    try:
        body = await owner.fetchval(
            "SELECT prosrc FROM pg_proc WHERE proname = 'okr_orgs_with_pending_recalc'"
        )
        async with owner.transaction():
            relay = Sent(body.replace("p_older_than", "CAST($1 AS interval)"), ("0 seconds",))
            reads = await generic_reads(owner, relay)
        backlog = await owner.fetchval("SELECT count(*) FROM outbox_events")
    finally:
        await owner.close()
    assert backlog > large.key_results * BACKLOG_PER_KEY_RESULT
    assert reads.rows["outbox_events"] <= 2, dict(reads.rows)
