"""Cursor connections (Relay): `first`/`after`, keyset cursors, a capped page size."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import strawberry

from okrgraph.domain.graph.queries import Filter, Order, Page
from okrgraph.schema.errors import ClientError

try:  # the limits module owns the numbers
    from okrgraph.schema.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
except ImportError:  # pragma: no cover - until limits.py lands
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100

T = TypeVar("T")


class BadPageArguments(ClientError):
    code = "BAD_PAGE_ARGUMENTS"


@strawberry.type(description="Where a page ends and whether more follow.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay cursor connection).")
class Connection(Generic[T]):
    """Built lazily: nodes, cursors and page info cost nothing unless selected."""

    nodes: list[T] = strawberry.field(description="The items alone.")
    rows: strawberry.Private[Sequence[Any]]
    page: strawberry.Private[Page]
    order: strawberry.Private[Order]
    to_node: strawberry.Private[Callable[[Any], T]]

    @strawberry.field(description="The items with their cursors.")
    def edges(self) -> list[Edge[T]]:
        column = self.order.column
        return [
            Edge(cursor=encode_cursor(getattr(r, column), r.id), node=node)
            for r, node in zip(self.rows, self.nodes, strict=False)
        ]

    @strawberry.field(description="Paging state.")
    def page_info(self) -> PageInfo:
        visible = self.rows[: self.page.first]
        last = visible[-1] if visible else None
        return PageInfo(
            has_next_page=len(self.rows) > self.page.first,
            end_cursor=encode_cursor(getattr(last, self.order.column), last.id) if last else None,
        )


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return {"t": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        text = value["t"]
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    return value


def encode_cursor(value: Any, id: uuid.UUID) -> str:
    raw = json.dumps([_encode_value(value), str(id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        value, id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return _decode_value(value), uuid.UUID(id)
    except (ValueError, TypeError) as exc:
        raise BadPageArguments("`after` is not a cursor this API gave out.") from exc


def page_args(first: int | None, after: str | None) -> Page:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0 or size > MAX_PAGE_SIZE:
        raise BadPageArguments(f"`first` must be between 0 and {MAX_PAGE_SIZE}.")
    return Page(first=size, after=decode_cursor(after) if after else None)


def build_connection(
    rows: Sequence[Any], page: Page, order: Order, to_node: Callable[[Any], T]
) -> Connection[T]:
    """`rows` holds up to `first + 1` rows; the extra one only says a page follows."""
    nodes = [to_node(r) for r in rows[: page.first]]
    return Connection(nodes=nodes, rows=rows, page=page, order=order, to_node=to_node)


async def children_connection(
    info: Any,
    model: type[Any],
    column: str,
    parent_id: Any,
    first: int | None,
    after: str | None,
    order: Order,
    to_node: Callable[[Any], T],
    *,
    filters: tuple[Filter, ...] = (),
) -> Connection[T]:
    """A page of the rows whose `column` is `parent_id`, through the request's
    `<Model>By<Column>Loader` (one statement for all parents of a level)."""
    page = page_args(first, after)
    loader = info.context.loaders.by_parent(model, column, order=order, page=page, filters=filters)
    return build_connection(await loader.load(parent_id), page, order, to_node)
