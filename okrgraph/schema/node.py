"""Relay global ids (`base64("Type:uuid")`) and the Node interface."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from okrgraph.domain.models import Base

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


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
    from okrgraph.domain.errors import ErrorCode, ValidationFailed

    parsed = expect_id(global_id, type_name)
    if parsed is None:
        raise ValidationFailed(field, f"Not a {type_name} id.", ErrorCode.INVALID_ID)
    return parsed


def parse_optional_id(global_id: str | None, type_name: str, field: str) -> uuid.UUID | None:
    return None if global_id is None else parse_id(global_id, type_name, field)


def input_kwargs(
    input: DataclassInstance, ids: Mapping[str, str] | None = None, skip: Collection[str] = ()
) -> dict[str, Any]:
    """The fields of a Strawberry input, less `skip`, as a domain service's keyword
    arguments. `ids` names the fields that are global ids, with their type: each is
    parsed in field order, a bad one a ValidationFailed on `input.<camelCaseName>`."""
    ids = ids or {}
    kwargs: dict[str, Any] = {}
    for field in fields(input):
        if field.name in skip:
            continue
        value = getattr(input, field.name)
        if field.name in ids:
            path = f"input.{to_camel_case(field.name)}"
            value = parse_optional_id(value, ids[field.name], path)
        kwargs[field.name] = value
    if unknown := ids.keys() - kwargs.keys():
        raise TypeError(f"{type(input).__name__} has no id fields {sorted(unknown)}")
    return kwargs
