"""Cursor connections per the Relay Cursor Connections spec
(https://relay.dev/graphql/connections.htm): `first`/`after`, keyset cursors, a
capped page size, and a complete `PageInfo`. Lists page forward only; the spec
lets `hasPreviousPage` be false then."""

from __future__ import annotations

import base64
import binascii
import json
import math
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


@strawberry.type(description="Where a page starts and ends and whether more follow (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Always false: lists page forward only (`first`/`after`), as the Relay "
        "spec allows; a client keeps the pages it has read."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the page's first item; null for an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the page's last item, to pass as `after` for the next page; "
        "null for an empty page."
    )


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
        column = self.order.column
        ends = [visible[0], visible[-1]] if visible else []
        cursors = [encode_cursor(getattr(r, column), r.id) for r in ends]
        return PageInfo(
            has_next_page=len(self.rows) > self.page.first,
            has_previous_page=False,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


# A cursor this API gives out is base64 of `[value, id]`, well under this length.
MAX_CURSOR_LENGTH = 500
INT64 = 2**63


class BadCursor(ClientError):
    """`after` is not a cursor this API gave out (forged, truncated, of another kind)."""

    code = "BAD_USER_INPUT"

    def __init__(self) -> None:
        super().__init__("`after` is not a cursor this API gave out.")


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return {"t": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    """The order value of a cursor, exactly one of the kinds `_encode_value` writes;
    anything else (a list, null, a bool, NaN, an int past 64 bits, text PostgreSQL
    cannot store, a naive time) is refused here, before SQL sees it."""
    if isinstance(value, dict):
        if set(value) != {"t"} or not isinstance(value["t"], str):
            raise ValueError("not a time")
        text = value["t"]
        if "T" not in text:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a time without its zone")
        return moment
    if isinstance(value, bool):
        raise ValueError("a bool")
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            raise ValueError("out of range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not finite")
        return value
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValueError("unstorable text")
        return value
    raise ValueError("not an order value")


def encode_cursor(value: Any, id: uuid.UUID) -> str:
    raw = json.dumps([_encode_value(value), str(id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[Any, uuid.UUID]:
    """The one place a cursor is read: `(order value, id)`, or `BadCursor` (code
    BAD_USER_INPUT) for anything this API did not give out. Whether the value
    suits the list's order column is checked where the list is read
    (`domain/graph/queries.py`), also as BAD_USER_INPUT."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        decoded = json.loads(raw)
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise ValueError("not a pair")
        value, id = decoded
        if not isinstance(id, str):
            raise ValueError("not an id")
        return _decode_value(value), uuid.UUID(id)
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise BadCursor() from exc


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
