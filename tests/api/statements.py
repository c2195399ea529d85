"""Which SQL statements a request ran once authentication was over."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from okrgraph.api import graphql as view
from okrgraph.domain.auth.tokens import authenticate


@contextmanager
def statements_after_auth(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """The statements run on `engine` after the request's token was checked:
    none means the operation never reached a resolver or a transaction."""
    seen: list[str] = []
    authenticated = False

    async def checked(*args: Any) -> Any:
        nonlocal authenticated
        try:
            return await authenticate(*args)
        finally:
            authenticated = True

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if authenticated:
            seen.append(statement)

    monkeypatch.setattr(view, "authenticate", checked)
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
