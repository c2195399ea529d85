"""Operator commands: `okr org create|list`, `okr token create|list|revoke`.

Each works on DATABASE_URL, or with `--data-dir` on the embedded PostgreSQL of
an `okr dev` data directory (a running one's server, never a second one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from okrgraph.cli_checks import USAGE, check_database, configured_database_url, fail, require
from okrgraph.devmode import say

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

token_app = typer.Typer(help="API tokens.", no_args_is_help=True, rich_markup_mode="markdown")
org_app = typer.Typer(
    help="Organisations (operators).", no_args_is_help=True, rich_markup_mode="markdown"
)


DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Work on the embedded database of `okr dev --data-dir DIR` instead of "
        "DATABASE_URL: a running okr dev's server, or (when none runs) started for "
        "this command and stopped after."
    ),
]


@contextmanager
def operator_database(data_dir: Path | None, command: str) -> Iterator[str]:
    """The database URL an operator command works on: DATABASE_URL, or the
    embedded PostgreSQL of an `okr dev` data directory (never a second server
    on it); checked to be reachable and migrated."""
    from okrgraph.embedded import dev_database

    if data_dir is None:
        url = configured_database_url()
        require(check_database(url))
        yield url
        return
    where = data_dir.expanduser().resolve()
    with dev_database(where, f"okr {command}") as db:
        if db.started:
            say(f"okr: okr dev is not running on {where}; started its database for this", err=True)
        require(check_database(db.url))
        yield db.url


def with_sessions(url: str, use: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `use(sessionmaker)` on an engine of the app role, disposed after."""
    from okrgraph.domain.db import create_engine, create_sessionmaker

    async def run() -> T:
        engine = create_engine(url, pool_size=1)
        try:
            return await use(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def when(at: Any) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


@org_app.command("create")
def org_create(
    slug: Annotated[str, typer.Option(help="Short unique name: a-z, 0-9, hyphens.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    admin_email: Annotated[str, typer.Option(help="E-mail of its first admin.")],
    admin_name: Annotated[
        str | None, typer.Option(help="The admin's name (default: the e-mail's local part).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an organisation with a first ADMIN person and print that admin's
    token (`okr_...`, admin scope), shown once: the only output on stdout, so
    `TOKEN=$(okr org create ...)` keeps it."""
    from okrgraph.domain.organizations.operations import create_organization

    with operator_database(data_dir, "org create") as url:
        created = with_sessions(
            url,
            lambda sm: create_organization(
                sm,
                slug=slug,
                name=name,
                admin_email=admin_email,
                admin_name=admin_name,
                fields={
                    "slug": "--slug",
                    "name": "--name",
                    "admin_email": "--admin-email",
                    "admin_name": "--admin-name",
                },
            ),
        )
    say(
        f"created organisation {created.slug} ({created.org_id}); "
        f"admin token of {admin_email.strip().lower()}, shown once:",
        err=True,
    )
    say(created.admin_token)


@org_app.command("list")
def org_list(data_dir: DataDir = None) -> None:
    """List every organisation: slug, name, people, live tokens, created, id."""
    from okrgraph.domain.organizations.operations import list_organizations

    with operator_database(data_dir, "org list") as url:
        orgs = with_sessions(url, list_organizations)
    rows = [["SLUG", "NAME", "PEOPLE", "TOKENS", "CREATED", "ID"]]
    for o in orgs:
        rows.append(
            [o.slug, o.name, str(o.people), str(o.live_tokens), when(o.created_at), str(o.id)]
        )
    table(rows)


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
    person: Annotated[str | None, typer.Option(help="E-mail of the person it acts as.")] = None,
    integration: Annotated[str | None, typer.Option(help="Or the integration's name.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="read, write, admin (repeat).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API token and print its secret (shown once)."""
    from okrgraph.domain.auth.operations import create_token_for

    if (person is None) == (integration is None):
        fail("give exactly one of --person or --integration", USAGE)
    with operator_database(data_dir, "token create") as url:
        try:
            secret = with_sessions(
                url,
                lambda sm: create_token_for(
                    sm,
                    org,
                    name,
                    scope or ["read"],
                    person_email=person,
                    integration_name=integration,
                ),
            )
        except ValueError as exc:  # scopes (create_token)
            fail(f"--scope: {exc}", USAGE)
    say(secret)


@token_app.command("list")
def token_list(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    data_dir: DataDir = None,
) -> None:
    """List the organisation's tokens: id, prefix, state (live, expired, revoked),
    scopes, holder, name, last use. Secrets are never stored, so never shown."""
    from datetime import UTC, datetime

    from okrgraph.domain.auth.operations import list_tokens

    with operator_database(data_dir, "token list") as url:
        tokens = with_sessions(url, lambda sm: list_tokens(sm, org))
    now = datetime.now(UTC)
    rows = [["ID", "PREFIX", "STATE", "SCOPES", "HOLDER", "NAME", "LAST USED"]]
    for t in tokens:
        rows.append(
            [
                str(t.id),
                t.prefix,
                t.state(now),
                ",".join(t.scopes),
                t.holder,
                t.name,
                when(t.last_used_at),
            ]
        )
    table(rows)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str, typer.Argument(help="The token's id or prefix (from `okr token list`), or secret.")
    ],
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token: the next request with it is refused (401), open
    subscriptions end. Revoking a revoked token changes nothing."""
    from okrgraph.domain.auth.operations import revoke_token

    with operator_database(data_dir, "token revoke") as url:
        row, revoked_now = with_sessions(url, lambda sm: revoke_token(sm, org, token))
    what = "revoked" if revoked_now else "was already revoked:"
    say(f"{what} {row.prefix} ({row.id}, {row.name}, {row.holder})")
