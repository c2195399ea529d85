"""Generic reads of the graph for the API's dataloaders: rows by id, and rows by
a parent column with per-parent keyset pagination, each one statement per batch.

They return Core rows (attribute access by column name, typed values), not ORM
instances: the API only reads them, and building ORM instances was the largest
single cost of a big tree query. Row-level security scopes every read to the
transaction's organisation.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.errors import ErrorCode, ValidationFailed
from okrgraph.domain.models import Base

# Rows are typed as their model for readers: Core rows with the same attribute names.
M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class Order:
    """A keyset order: one column (ascending or not), ties broken by id."""

    column: str = "created_at"
    descending: bool = False


# A condition on a child column, hashable so that it can key a dataloader:
# (column, operator, value) with operator "=", ">=", "<" or "is null".
Filter = tuple[str, str, Any]
OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda col, v: col == v,
    ">=": lambda col, v: col >= v,
    "<": lambda col, v: col < v,
    "is null": lambda col, _v: col.is_(None),
}


def conditions(model: type[Base], filters: Sequence[Filter]) -> list[ColumnElement[bool]]:
    return [OPERATORS[op](getattr(model, column), value) for column, op, value in filters]


@dataclass(frozen=True)
class Page:
    """`first` rows after the keyset position `after` = (order value, id)."""

    first: int
    after: tuple[Any, uuid.UUID] | None = None


async def rows_by_ids(
    session: AsyncSession, model: type[M], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, M]:
    if not ids:
        return {}
    table = model.__table__
    rows = await session.execute(select(table).where(table.c.id.in_(set(ids))))
    return {row.id: row for row in rows}  # type: ignore[misc]


def _after(model: type[Base], order: Order, after: tuple[Any, uuid.UUID]) -> ColumnElement[bool]:
    col = getattr(model, order.column)
    id_col = model.id  # type: ignore[attr-defined]
    value, last_id = after
    if not isinstance(value, col.type.python_type):
        # a cursor of another list, or forged: refuse it before the database does
        raise ValidationFailed(
            "after", "`after` is not a cursor of this list.", ErrorCode.INVALID_CURSOR
        )
    if order.descending:
        return or_(col < value, and_(col == value, id_col < last_id))
    return tuple_(col, id_col) > tuple_(value, last_id)


def _ordering(model: type[Base], order: Order) -> list[Any]:
    col = getattr(model, order.column)
    id_col = model.id  # type: ignore[attr-defined]
    return [col.desc(), id_col.desc()] if order.descending else [col, id_col]


async def rows_by_parent(
    session: AsyncSession,
    model: type[M],
    parent_column: str,
    parent_ids: Sequence[uuid.UUID],
    *,
    order: Order = Order(),
    page: Page | None = None,
    filters: Sequence[Filter] = (),
) -> dict[uuid.UUID, list[M]]:
    """Children of each parent in order; with a page, at most `first + 1` per
    parent (the extra row tells the caller there is a next page)."""
    result: dict[uuid.UUID, list[M]] = defaultdict(list)
    if not parent_ids:
        return result
    parent_col = getattr(model, parent_column)
    where = [parent_col.in_(set(parent_ids)), *conditions(model, filters)]
    if page is not None and page.after is not None:
        where.append(_after(model, order, page.after))
    stmt: Select[Any]
    table = model.__table__
    if page is None:
        stmt = select(table).where(*where).order_by(*_ordering(model, order))
    else:
        rank = (
            func.row_number()
            .over(partition_by=parent_col, order_by=_ordering(model, order))
            .label("rank")
        )
        inner = select(table, rank).where(*where).subquery()
        stmt = (
            select(*(inner.c[c.name] for c in table.columns))
            .where(inner.c.rank <= page.first + 1)
            .order_by(inner.c[parent_column], inner.c.rank)
        )
    for row in await session.execute(stmt):
        result[getattr(row, parent_column)].append(row)
    return result


async def page_of(
    session: AsyncSession,
    model: type[M],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    order: Order = Order(),
    page: Page,
) -> list[M]:
    """A top-level page: at most `first + 1` rows after the keyset position."""
    conditions = list(where)
    if page.after is not None:
        conditions.append(_after(model, order, page.after))
    stmt = select(model).where(*conditions).order_by(*_ordering(model, order)).limit(page.first + 1)
    return list((await session.execute(stmt)).scalars())
