"""Per-request dataloaders: rows by id and rows by a parent column, one SQL
statement per batch. Built in the request context, never at module level."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from okrgraph.domain.graph import queries
from okrgraph.domain.graph.queries import Filter, Order, Page
from okrgraph.domain.models import Base

if TYPE_CHECKING:
    from okrgraph.schema.context import Context


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

            loader = self._loaders[key] = DataLoader(load_fn=load)
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

            loader = self._loaders[key] = DataLoader(load_fn=load)
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

            loader = self._loaders[("batch", name)] = DataLoader(load_fn=load)
        return loader
