"""The migrations: up, down and up again on real PostgreSQL, and in step with
the models (Alembic's autogenerate finds nothing to do, and the catalog the
migrations build equals the one `create_all` builds from the models: check
constraints and partial indexes included, which autogenerate ignores).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Column, Integer, MetaData, String, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from okrgraph.domain.db import async_url, create_engine
from okrgraph.domain.migrate import alembic_config, migrate
from okrgraph.domain.models import Base
from tests.conftest import Servers, new_database

APP_TABLES = set(Base.metadata.tables)
APP_FUNCTIONS = {
    "okr_authenticate",
    "okr_current_org",
    "okr_organization_by_slug",
    "okr_organization_ids",
    "okr_orgs_with_pending_recalc",
}


async def schema_state(url: str) -> dict[str, Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:

            async def names(sql: str) -> set[str]:
                return set((await conn.execute(text(sql))).scalars())

            tables = await names("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            version = (
                set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
                if "alembic_version" in tables
                else set()
            )
            return {
                "tables": tables - {"alembic_version"},
                "version": version,
                "functions": await names(
                    "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
                ),
                "policies": await names("SELECT tablename || '.' || policyname FROM pg_policies"),
            }
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(servers: Servers) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with new_database(servers.postgres_url, migrated=False) as url:
        assert (await schema_state(url))["tables"] == set()

        await migrate(url)
        up = await schema_state(url)
        assert up["tables"] == APP_TABLES
        assert up["version"] == {head}
        assert up["functions"] >= APP_FUNCTIONS
        # tenant_isolation on every table, owner_lookup on api_tokens, organizations, people
        assert len(up["policies"]) == len(APP_TABLES) + 3

        await migrate(url, "base", down=True)
        down = await schema_state(url)
        assert down == {"tables": set(), "version": set(), "functions": set(), "policies": set()}

        await migrate(url)
        assert await schema_state(url) == up
        # The app role works on the re-created schema.
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                user = await conn.execute(text("SELECT current_user, count(*) FROM organizations"))
                assert tuple(user.one()) == ("okr_app", 0)
        finally:
            await engine.dispose()


def diff_against(metadata: MetaData) -> Any:
    def compare(sync_conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)  # type: ignore[no-any-return]

    return compare


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff_against(Base.metadata)) == []
    finally:
        await engine.dispose()


def altered_copy() -> MetaData:
    """The models with an extra column, a shorter string, one index less and a
    changed check constraint: what a model edit without a migration looks like."""
    copy = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(copy)
    teams = copy.tables["teams"]
    teams.append_column(Column("extra", Integer, nullable=True))
    teams.c.name.type = String(100)
    teams.indexes = {i for i in teams.indexes if i.name != "ix_teams_org_id_parent_team_id"}
    alignments = copy.tables["alignments"]
    for constraint in list(alignments.constraints):
        if constraint.name == "ck_alignments_weight_not_negative":
            alignments.constraints.remove(constraint)
    alignments.append_constraint(CheckConstraint("weight > 0", name="weight_not_negative"))
    return copy


def flatten(diff: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Alembic nests column modifications in lists; one tuple per change."""
    out: list[tuple[Any, ...]] = []
    for entry in diff:
        out.extend(flatten(entry) if isinstance(entry, list) else [entry])
    return out


async def test_autogenerate_comparison_sees_a_model_change(database_url: str) -> None:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            diff = flatten(await conn.run_sync(diff_against(altered_copy())))
    finally:
        await engine.dispose()
    kinds = {(d[0], d[3] if d[0] == "modify_type" else None) for d in diff}
    assert ("add_column", None) in kinds
    assert ("modify_type", "name") in kinds
    assert any(
        d[0] == "remove_index" and d[1].name == "ix_teams_org_id_parent_team_id" for d in diff
    )
    # Autogenerate does not see the changed check constraint: the catalog test below does.
    assert len(diff) == 3


CATALOG = {
    "columns": """
        SELECT c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind = 'r'
          AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'alembic_version'
    """,
    "constraints": """
        SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relname <> 'alembic_version'
    """,
    "indexes": """
        SELECT i.tablename || '.' || i.indexname, replace(i.indexdef, :schema || '.', '')
        FROM pg_indexes i WHERE i.schemaname = :schema AND i.tablename <> 'alembic_version'
    """,
}


async def catalog(conn: AsyncConnection, schema: str) -> dict[str, dict[str, str]]:
    """Columns, constraints and indexes of `schema`, as PostgreSQL prints them."""
    await conn.execute(text(f"SET LOCAL search_path TO {schema}"))  # unqualified names
    return {
        kind: {row[0]: row[1] for row in await conn.execute(text(sql), {"schema": schema})}
        for kind, sql in CATALOG.items()
    }


def catalog_diff(
    left: dict[str, dict[str, str]], right: dict[str, dict[str, str]]
) -> dict[str, Any]:
    out = {}
    for kind in CATALOG:
        a, b = left[kind], right[kind]
        changed = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        if changed:
            out[kind] = changed
    return out


async def test_migrated_catalog_equals_the_models_catalog(database_url: str) -> None:
    """`create_all` of the models in scratch schemas (in a transaction rolled back)."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn, conn.begin() as trans:
            built = {}
            for schema, metadata in (("from_models", Base.metadata), ("altered", altered_copy())):
                await conn.execute(text(f"CREATE SCHEMA {schema}"))
                await conn.execute(text(f"SET LOCAL search_path TO {schema}"))
                await conn.run_sync(metadata.create_all)
                built[schema] = await catalog(conn, schema)
            migrated = await catalog(conn, "public")
            await trans.rollback()
    finally:
        await engine.dispose()
    assert len(migrated["constraints"]) > 100
    assert catalog_diff(migrated, built["from_models"]) == {}
    # The comparison can fail: it sees every change of the altered copy.
    seen = catalog_diff(migrated, built["altered"])
    assert set(seen["columns"]) == {"teams.extra", "teams.name"}
    assert set(seen["indexes"]) == {"teams.ix_teams_org_id_parent_team_id"}
    assert set(seen["constraints"]) == {"alignments.ck_alignments_weight_not_negative"}
