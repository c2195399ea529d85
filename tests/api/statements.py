"""Which SQL statements a request ran once authentication was over."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from okrgraph.api import graphql as view
from okrgraph.api import transaction
from okrgraph.domain.auth.tokens import authenticate_in, touch

# A test's sessions are savepoints of its transaction: their statements stand in for
# BEGIN, COMMIT and ROLLBACK, which the recorder does not see outside tests either.
SAVEPOINTS = re.compile(r"^\s*(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b")


@contextmanager
def statements_after_auth(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """The statements run on `engine` after the request's token was checked (by the
    first statement of the request's transaction), savepoints aside: none means the
    operation never reached a resolver."""
    seen: list[str] = []
    authenticated = touching = False

    async def checked(*args: Any) -> Any:
        nonlocal authenticated
        try:
            return await authenticate_in(*args)
        finally:
            authenticated = True

    async def touched(*args: Any) -> None:  # the token's last use: not the operation's
        nonlocal touching
        touching = True
        try:
            await touch(*args)
        finally:
            touching = False

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if authenticated and not touching and not SAVEPOINTS.match(statement):
            seen.append(statement)

    monkeypatch.setattr(transaction, "authenticate_in", checked)
    monkeypatch.setattr(view, "touch", touched)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement run on `engine` meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def round_trips(engine: AsyncEngine) -> Iterator[list[str]]:
    """What `engine`'s connections sent to PostgreSQL meanwhile: BEGIN, COMMIT and
    ROLLBACK (but in autocommit, where none is sent), and each statement (its whole
    text)."""
    seen: list[str] = []

    def ends(sent: str) -> Callable[..., None]:  # none on the wire in autocommit
        def listener(conn: Any, *_: Any) -> None:
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                seen.append(sent)

        return listener

    listeners: dict[str, Callable[..., None]] = {
        "begin": ends("BEGIN"),
        "commit": ends("COMMIT"),
        "rollback": ends("ROLLBACK"),
        "before_cursor_execute": lambda _conn, _cursor, statement, *_: seen.append(statement),
    }
    for name, listener in listeners.items():
        event.listen(engine.sync_engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners.items():
            event.remove(engine.sync_engine, name, listener)
