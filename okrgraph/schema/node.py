"""Relay global ids (`base64("Type:uuid")`) and the Node interface."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry

from okrgraph.domain.models import Base


def to_global_id(type_name: str, id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{id}".encode()).decode())


def from_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """(type name, uuid), or None for anything that is not one of our ids."""
    try:
        type_name, _, raw = base64.urlsafe_b64decode(global_id.encode()).decode().partition(":")
        return type_name, uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(description="Global id, usable with `node(id:)`.")


@dataclass(frozen=True)
class NodeKind:
    model: type[Base]
    build: Callable[[Any], Any]
    # `visible(principal, row)`: who may fetch a private row through `node(id:)`;
    # None: everyone in the organisation (the default: transparency).
    visible: Callable[[Any, Any], bool] | None = None


NODE_KINDS: dict[str, NodeKind] = {}


def node_kind(
    model: type[Base], visible: Callable[[Any, Any], bool] | None = None
) -> Callable[[type[Any]], type[Any]]:
    """Register a GraphQL type (with `from_row`) as resolvable by `node(id:)`;
    `visible(principal, row)` restricts that to some callers (private rows)."""

    def register(cls: type[Any]) -> type[Any]:
        NODE_KINDS[cls.__name__] = NodeKind(model, cls.from_row, visible)
        return cls

    return register


def expect_id(global_id: str, *type_names: str) -> uuid.UUID | None:
    """The uuid of a global id of one of `type_names`, else None."""
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] not in type_names:
        return None
    return parsed[1]


def parse_id(global_id: str, type_name: str, field: str) -> uuid.UUID:
    """The uuid of an input id of `type_name`; a ValidationFailed on `field` otherwise."""
    from okrgraph.domain.errors import ValidationFailed

    parsed = expect_id(global_id, type_name)
    if parsed is None:
        raise ValidationFailed(field, f"Not a {type_name} id.")
    return parsed


def parse_optional_id(global_id: str | None, type_name: str, field: str) -> uuid.UUID | None:
    return None if global_id is None else parse_id(global_id, type_name, field)
