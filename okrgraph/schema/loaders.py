"""Per-request dataloaders: rows by id and rows by a parent column, one SQL
statement per batch. Built in the request context, never at module level."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from okrgraph.domain.graph import queries
from okrgraph.domain.graph.queries import Filter, Order, Page
from okrgraph.domain.models import Base
from okrgraph.schema.execution import running

if TYPE_CHECKING:
    from okrgraph.schema.context import Context


class _Loop:
    """The loop as a DataLoader sees it: a batch's dispatch waits while the
    request's execution has paused work (execution.py), so that the paused
    objects' loads join the batch instead of starting another."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call_soon(self, callback: Callable[[], None], *args: Any) -> Any:
        execution = running.get()
        if not args and execution is not None and execution.hold_batch(callback):
            return None
        return self._loop.call_soon(callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class OkrDataLoader(DataLoader[Any, Any]):
    @property
    def loop(self) -> Any:
        return _Loop(super().loop)


class Loaders:
    """`by_id(Model)` is the `<Model>ByIdLoader`; `by_parent(Model, "column", ...)` the
    `<Model>By<Column>Loader` — one instance per distinct (order, page, filter)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def by_id(self, model: type[Base]) -> DataLoader[uuid.UUID, Any]:
        key = ("id", model)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(ids: list[uuid.UUID]) -> list[Any]:
                async with self._ctx.db() as session:
                    found = await queries.rows_by_ids(session, model, ids)
                return [found.get(i) for i in ids]

            loader = self._loaders[key] = OkrDataLoader(load_fn=load)
        return loader

    def by_parent(
        self,
        model: type[Base],
        column: str,
        *,
        order: Order = Order(),
        page: Page | None = None,
        filters: tuple[Filter, ...] = (),
    ) -> DataLoader[uuid.UUID, list[Any]]:
        key = ("parent", model, column, order, page, filters)
        loader = self._loaders.get(key)
        if loader is None:

            async def load(ids: list[uuid.UUID]) -> list[list[Any]]:
                async with self._ctx.db() as session:
                    found = await queries.rows_by_parent(
                        session, model, column, ids, order=order, page=page, filters=filters
                    )
                return [found.get(i, []) for i in ids]

            loader = self._loaders[key] = OkrDataLoader(load_fn=load)
        return loader

    def batch(
        self,
        name: Hashable,
        fetch: Callable[[AsyncSession, list[Any]], Awaitable[dict[Any, Any]]],
        default: Any = None,
    ) -> DataLoader[Any, Any]:
        """A loader over any batch read `fetch(session, keys) -> {key: value}`."""
        loader = self._loaders.get(("batch", name))
        if loader is None:

            async def load(keys: list[Any]) -> list[Any]:
                async with self._ctx.db() as session:
                    found = await fetch(session, keys)
                return [found.get(k, default) for k in keys]

            loader = self._loaders[("batch", name)] = OkrDataLoader(load_fn=load)
        return loader
