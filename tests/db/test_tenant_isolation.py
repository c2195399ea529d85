"""Tenant isolation at the database (DESIGN.md section 2): row-level security
and composite foreign keys hold even if the application forgets its scoping.

Two organisations A and B each get a row in every tenant table; then, as the
application role with `app.org_id` = A, nothing of B can be read, written,
changed or referenced.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from okrgraph.domain.auth.tokens import hash_secret
from okrgraph.domain.db import create_engine, create_sessionmaker, set_tenant
from okrgraph.domain.models import ApiToken, Base, Objective, Organization
from okrgraph.domain.models.enums import Level, OrgRole
from tests.db.pg_errors import FOREIGN_KEY_VIOLATION, INSUFFICIENT_PRIVILEGE, pg_error
from tests.factories import FACTORIES, make_org, make_token

TABLES = Base.metadata.tables
TENANT_TABLES = sorted(t.name for t in Base.metadata.sorted_tables if "org_id" in t.c)
# History is appended, never rewritten (the app role has no UPDATE/DELETE).
APPEND_ONLY = ["audit_entries", "check_ins", "kpi_measurements", "score_history"]
Rows = dict[str, dict[str, Any]]


async def populate(session: AsyncSession, org_id: uuid.UUID) -> Rows:
    """One row (as column values) in every tenant table that has a factory."""
    rows: Rows = {}
    for name in TENANT_TABLES:
        if name not in FACTORIES:
            continue
        table = TABLES[name]
        made = await FACTORIES[name](session, org_id)
        query = select(table).where(table.c.org_id == org_id, table.c.id == made.id)  # type: ignore[attr-defined]
        rows[name] = dict((await session.execute(query)).mappings().one())
    return rows


@dataclass(frozen=True)
class TwoOrgs:
    a: uuid.UUID
    b: uuid.UUID
    rows_a: Rows
    rows_b: Rows


@pytest.fixture
async def orgs(db: AsyncSession) -> TwoOrgs:
    """A and B with a row in every tenant table; the transaction is left scoped to A."""
    a = await make_org(db)
    rows_a = await populate(db, a.id)
    b = await make_org(db)
    rows_b = await populate(db, b.id)
    await set_tenant(db, a.id)
    return TwoOrgs(a.id, b.id, rows_a, rows_b)


async def org_ids_visible(session: AsyncSession, table: Table) -> set[uuid.UUID]:
    column = table.c.id if table.name == "organizations" else table.c.org_id
    return set((await session.execute(select(column).distinct())).scalars())


async def refused(session: AsyncSession, statement: Any) -> DBAPIError | None:
    """Run `statement` in a savepoint; the database error, or None if it succeeded."""
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except DBAPIError as exc:
        return exc
    return None


async def test_every_tenant_table_is_covered(orgs: TwoOrgs) -> None:
    assert len(TENANT_TABLES) >= 23
    # A new tenant table without a factory (and so without these proofs) fails here.
    assert set(orgs.rows_a) == set(TENANT_TABLES)
    assert set(orgs.rows_b) == set(TENANT_TABLES)


async def test_every_tenant_table_is_under_forced_row_level_security(db: AsyncSession) -> None:
    rows = (
        await db.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid"
                "  AND pg_get_expr(p.polqual, p.polrelid) LIKE '%okr_current_org()%'"
                "  AND pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%okr_current_org()%')"
                " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
                " AND c.relkind = 'r' AND c.relname = ANY(:names)"
            ),
            {"names": [*TENANT_TABLES, "organizations"]},
        )
    ).all()
    expected = (True, True, 1)  # enabled, forced, one tenant policy
    assert {r[0]: tuple(r[1:]) for r in rows} == dict.fromkeys(
        [*TENANT_TABLES, "organizations"], expected
    )


async def test_app_role_neither_owns_the_tables_nor_bypasses_rls(db: AsyncSession) -> None:
    role = (
        await db.execute(
            text(
                "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            )
        )
    ).one()
    assert tuple(role) == ("okr_app", False, False)
    owned = (
        await db.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r"),
            {"r": "okr_app"},
        )
    ).scalar_one()
    assert owned == 0


async def test_select_shows_only_the_current_org(db: AsyncSession, orgs: TwoOrgs) -> None:
    for name in [*TENANT_TABLES, "organizations"]:
        assert await org_ids_visible(db, TABLES[name]) == {orgs.a}, name
    # The rows of B are there: switching the tenant shows them, and only them.
    await set_tenant(db, orgs.b)
    for name in [*TENANT_TABLES, "organizations"]:
        assert await org_ids_visible(db, TABLES[name]) == {orgs.b}, name


async def test_nothing_is_visible_without_a_tenant(db: AsyncSession, orgs: TwoOrgs) -> None:
    await set_tenant(db, None)
    for name in [*TENANT_TABLES, "organizations"]:
        assert await org_ids_visible(db, TABLES[name]) == set(), name
    table = TABLES["teams"]
    exc = await refused(db, insert(table).values({**orgs.rows_a["teams"], "id": uuid.uuid4()}))
    assert exc is not None
    assert pg_error(exc).sqlstate == INSUFFICIENT_PRIVILEGE


async def test_insert_of_a_row_of_another_org_is_refused(db: AsyncSession, orgs: TwoOrgs) -> None:
    wrong: dict[str, str] = {}
    for name in TENANT_TABLES:
        values = {**orgs.rows_b[name], "id": uuid.uuid4()}
        exc = await refused(db, insert(TABLES[name]).values(values))
        expected = f'new row violates row-level security policy for table "{name}"'
        if exc is None or expected not in pg_error(exc).message:
            wrong[name] = "inserted" if exc is None else pg_error(exc).message
    assert wrong == {}
    exc = await refused(db, insert(Organization).values(id=uuid.uuid4(), name="B2", slug="b2"))
    assert exc is not None
    assert "row-level security" in pg_error(exc).message


async def test_moving_a_row_to_another_org_is_refused(db: AsyncSession, orgs: TwoOrgs) -> None:
    wrong: dict[str, str] = {}
    for name in sorted(set(TENANT_TABLES) - set(APPEND_ONLY)):
        table = TABLES[name]
        move = (
            update(table)
            .where(table.c.org_id == orgs.a, table.c.id == orgs.rows_a[name]["id"])
            .values(org_id=orgs.b)
        )
        exc = await refused(db, move)
        if exc is None or "row-level security" not in pg_error(exc).message:
            wrong[name] = "moved" if exc is None else pg_error(exc).message
    assert wrong == {}


async def test_reference_to_a_row_of_another_org_is_refused(
    db: AsyncSession, orgs: TwoOrgs
) -> None:
    """Every composite foreign key: A's new row pointing at B's row fails; at A's own, works."""
    checked, wrong = 0, {}
    for name in TENANT_TABLES:
        for fk in TABLES[name].foreign_key_constraints:
            target = fk.referred_table.name
            if target == "organizations":
                continue
            pairs = {(e.parent.name, e.column.name) for e in fk.elements}
            assert ("org_id", "org_id") in pairs, f"{fk.name} is not composite with org_id"
            (column,) = [e.parent.name for e in fk.elements if e.parent.name != "org_id"]
            nested = await db.begin_nested()  # the control: A's own row is accepted
            await FACTORIES[name](db, orgs.a, **{column: orgs.rows_a[target]["id"]})
            await nested.rollback()
            try:
                async with db.begin_nested():
                    await FACTORIES[name](db, orgs.a, **{column: orgs.rows_b[target]["id"]})
            except DBAPIError as exc:
                error = pg_error(exc)
                if (error.sqlstate, error.constraint) != (FOREIGN_KEY_VIOLATION, fk.name):
                    wrong[fk.name] = error.message
            else:
                wrong[fk.name] = "accepted"
            checked += 1
    assert wrong == {}
    assert checked >= 35  # the composite foreign keys of the initial schema


async def test_objective_of_a_cannot_live_in_a_cycle_of_b(db: AsyncSession, orgs: TwoOrgs) -> None:
    exc = await refused(
        db,
        insert(Objective).values(
            org_id=orgs.a, cycle_id=orgs.rows_b["cycles"]["id"], level=Level.COMPANY, title="x"
        ),
    )
    assert exc is not None
    error = pg_error(exc)
    assert error.sqlstate == FOREIGN_KEY_VIOLATION
    assert error.constraint == "fk_objectives_org_id_cycle_id_cycles"


async def test_update_and_delete_of_another_orgs_rows_touch_nothing(
    db: AsyncSession, orgs: TwoOrgs
) -> None:
    for name in sorted(set(TENANT_TABLES) - set(APPEND_ONLY)):
        table = TABLES[name]
        own, theirs = orgs.rows_a[name]["id"], orgs.rows_b[name]["id"]
        touch = update(table).values(id=table.c.id)
        assert (await db.execute(touch.where(table.c.id == own))).rowcount == 1, name  # type: ignore[attr-defined]
        assert (await db.execute(touch.where(table.c.id == theirs))).rowcount == 0, name  # type: ignore[attr-defined]
        assert (await db.execute(touch.where(table.c.org_id == orgs.b))).rowcount == 0, name  # type: ignore[attr-defined]
        gone = await db.execute(delete(table).where(table.c.org_id == orgs.b))
        assert gone.rowcount == 0, name  # type: ignore[attr-defined]
    renamed = await db.execute(
        update(Organization).where(Organization.id == orgs.b).values(name="taken over")
    )
    assert renamed.rowcount == 0  # type: ignore[attr-defined]
    await set_tenant(db, orgs.b)
    for name in TENANT_TABLES:
        table = TABLES[name]
        query = select(func.count()).where(table.c.id == orgs.rows_b[name]["id"])
        assert (await db.execute(query.select_from(table))).scalar_one() == 1, name
    assert (await db.execute(select(Organization.name))).scalar_one() != "taken over"


@pytest.mark.parametrize("name", APPEND_ONLY)
async def test_append_only_tables_refuse_update_and_delete(
    db: AsyncSession, orgs: TwoOrgs, name: str
) -> None:
    table = TABLES[name]
    own = orgs.rows_a[name]["id"]
    for statement in (
        update(table).where(table.c.id == own).values(id=table.c.id),
        delete(table).where(table.c.id == own),
    ):
        exc = await refused(db, statement)
        assert exc is not None
        error = pg_error(exc)
        assert error.sqlstate == INSUFFICIENT_PRIVILEGE
        assert f"permission denied for table {name}" in error.message
    # Appending stays allowed.
    assert (
        await refused(db, insert(table).values({**orgs.rows_a[name], "id": uuid.uuid4()})) is None
    )


async def test_authenticate_works_across_orgs_and_exposes_only_that_token(
    db: AsyncSession,
) -> None:
    a = await make_org(db)
    await make_token(db, a.id, role=OrgRole.ADMIN, scopes=["admin"])
    b = await make_org(db)
    token_b, secret_b = await make_token(db, b.id, role=OrgRole.VIEWER, scopes=["read"])
    await make_token(db, b.id, role=OrgRole.ADMIN, scopes=["admin"])  # a neighbour, not returned
    await set_tenant(db, a.id)
    # Under A, B's token row is invisible...
    hidden = await db.execute(select(ApiToken.id).where(ApiToken.id == token_b.id))
    assert hidden.first() is None
    # ...yet okr_authenticate finds it by its hash, and returns that one token:
    # its org, its own fields and its person's role, nothing more.
    expected = {
        "org_id": b.id,
        "token_id": token_b.id,
        "scopes": ["read"],
        "person_id": token_b.person_id,
        "integration_name": None,
        "org_role": "VIEWER",
        "person_archived_at": None,
        "expires_at": None,
        "revoked_at": None,
        "last_used_at": None,
    }
    authenticate = text("SELECT * FROM okr_authenticate(:h)")
    found = await db.execute(authenticate, {"h": hash_secret(secret_b)})
    assert [dict(row) for row in found.mappings()] == [expected]
    # The call leaves the tenant as it was: B stays invisible.
    assert (await db.execute(select(func.count()).select_from(ApiToken))).scalar_one() == 1
    await set_tenant(db, None)
    again = await db.execute(authenticate, {"h": hash_secret(secret_b)})
    assert [dict(row) for row in again.mappings()] == [expected]
    # Only the exact hash finds anything: no unknown secret, no prefix, no pattern.
    for guess in (hash_secret("okr_unknown"), hash_secret(secret_b)[:-1], "%", ""):
        assert (await db.execute(authenticate, {"h": guess})).all() == [], guess


async def test_org_lookups_work_across_orgs_and_expose_only_ids(db: AsyncSession) -> None:
    a = await make_org(db)
    b = await make_org(db)
    await set_tenant(db, a.id)
    assert (await db.execute(select(Organization.id))).scalars().all() == [a.id]
    by_slug = text("SELECT okr_organization_by_slug(:s)")
    found = await db.execute(by_slug, {"s": b.slug})
    assert list(found.keys()) == ["okr_organization_by_slug"]
    assert found.scalars().all() == [b.id]
    for unknown in ("no-such-org", b.slug.upper(), "%"):
        assert (await db.execute(by_slug, {"s": unknown})).scalar_one() is None, unknown
    listed = set((await db.execute(text("SELECT okr_organization_ids()"))).scalars())
    assert {a.id, b.id} <= listed


async def backend_pid(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@pytest.fixture
async def one_connection_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An app-role engine with a single pooled connection, so it is reused."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def test_app_role_survives_rollback_on_a_reused_connection(
    one_connection_engine: AsyncEngine,
) -> None:
    async with one_connection_engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        with pytest.raises(DBAPIError):
            await conn.execute(text("SELECT 1 / 0"))
        await conn.rollback()
        await conn.execute(text("RESET ALL"))
        await conn.execute(text("RESET ROLE"))
        assert (await conn.execute(text("SELECT current_user"))).scalar_one() == "okr_app"
    async with one_connection_engine.connect() as conn:
        reused = await conn.execute(text("SELECT pg_backend_pid(), current_user"))
        assert tuple(reused.one()) == (pid, "okr_app")


async def test_tenant_setting_does_not_leak_to_the_next_transaction(
    fresh_database: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    """Committed data of A; after a transaction scoped to A ends (commit or
    rollback), the next transaction on the same connection sees nothing."""
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with sessionmaker() as s, s.begin():
                org = await make_org(s)
                await populate(s, org.id)
            for end in ("commit", "rollback"):
                async with sessionmaker() as s:
                    await s.begin()
                    pid = await backend_pid(s)
                    await set_tenant(s, org.id)
                    for name in [*TENANT_TABLES, "organizations"]:
                        assert await org_ids_visible(s, TABLES[name]) == {org.id}, name
                    await (s.commit() if end == "commit" else s.rollback())
                async with sessionmaker() as s, s.begin():
                    assert await backend_pid(s) == pid
                    current = await s.execute(text("SELECT okr_current_org()"))
                    assert current.scalar_one() is None
                    for name in [*TENANT_TABLES, "organizations"]:
                        assert await org_ids_visible(s, TABLES[name]) == set(), (end, name)
        finally:
            await engine.dispose()
