"""Bounds of mutation inputs: declared on each input field, checked before anything runs.

Every String, Float, Date and DateTime field of an input type states its bound
in its description and carries it in its metadata (`text`, `number`, `weight`,
`day`, `moment` below). `check_arguments` walks a mutation's input with those
declarations before the mutation does anything (`payloads.run_mutation`), so an
over-long string, a number past +-1e15 or a date past 2999 is a ValidationError
naming the input path, and nothing is written. The domain services check the
same bounds (`domain/validation.py`) for callers that are not GraphQL. A field
without a declaration still has one: an ID's length, the number and date
ranges; tests/api/test_input_bounds.py proves every field declares its own.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.types.base import get_object_definition, has_object_definition
from strawberry.utils.str_converters import to_camel_case

from okrgraph.domain import validation
from okrgraph.domain.errors import ErrorCode, ValidationFailed

BOUND = "okr.bound"  # metadata key: ("text", max_length) | ("number",) | ("weight",) | ...


def _field(description: str, rule: str, bound: tuple[Any, ...], **kwargs: Any) -> Any:
    return strawberry.field(
        description=f"{description} {rule}".strip(), metadata={BOUND: bound}, **kwargs
    )


def text(description: str, max_length: int, *, each: bool = False, **kwargs: Any) -> Any:
    """A String (with `each`, a [String]: every item) of at most `max_length` characters."""
    rule = f"{'Each' if each else 'At most'} {max_length:,} characters{' at most' if each else ''}."
    return _field(description, rule, ("text", max_length), **kwargs)


def number(description: str, **kwargs: Any) -> Any:
    """A Float value of a key result or KPI (validation.MAX_ABS_NUMBER)."""
    return _field(description, validation.NUMBER_RULE, ("number",), **kwargs)


def weight(description: str, **kwargs: Any) -> Any:
    return _field(description, validation.WEIGHT_RULE, ("weight",), **kwargs)


def day(description: str, **kwargs: Any) -> Any:
    return _field(description, validation.DATE_RULE, ("day",), **kwargs)


def moment(description: str, **kwargs: Any) -> Any:
    return _field(description, validation.DATETIME_RULE, ("moment",), **kwargs)


def declared(field: Any) -> tuple[Any, ...] | None:
    """The bound a Strawberry input field declares, if any."""
    metadata = getattr(field, "metadata", None) or {}
    bound = metadata.get(BOUND)
    return tuple(bound) if bound is not None else None


def _check(value: Any, path: str, bound: tuple[Any, ...] | None) -> None:
    """Raise ValidationFailed on the first input field past its bound."""
    if value is None or isinstance(value, bool):
        return
    if has_object_definition(value):
        for field in get_object_definition(value, strict=True).fields:
            name = field.graphql_name or to_camel_case(field.python_name)
            _check(getattr(value, field.python_name), f"{path}.{name}", declared(field))
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            _check(item, f"{path}.{key}", None)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}.{i}", bound)
        return
    kind = bound[0] if bound else None
    if isinstance(value, str):
        limit = int(bound[1]) if bound and kind == "text" else validation.ID
        if len(value) > limit:
            raise ValidationFailed(path, f"At most {limit:,} characters.", ErrorCode.TEXT_TOO_LONG)
    elif isinstance(value, float | int) and kind in ("number", "weight", None):
        if isinstance(value, float) or kind is not None:
            (validation.weight if kind == "weight" else validation.number)(float(value), path)
    elif isinstance(value, datetime):
        validation.instant(value, path)
    elif isinstance(value, date):
        validation.day(value, path)


def check_arguments(payload: Any) -> None:
    """The bounds checked over what a mutation hands `run_mutation`: its input object, or
    its plain arguments (an `id`, a dict of arguments by name, a list of `ids`)."""
    if has_object_definition(payload):
        _check(payload, "input", None)
    elif isinstance(payload, dict):
        for name, value in payload.items():
            _check(value, name, None)
    elif isinstance(payload, list | tuple):
        _check(payload, "ids", None)
    else:
        _check(payload, "id", None)
