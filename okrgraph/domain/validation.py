"""Input checks shared by the services; each raises ValidationFailed on a field."""

from __future__ import annotations

import math

from okrgraph.domain.errors import ValidationFailed


def text_field(value: str, field: str, *, max_length: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationFailed(field, "Must not be empty.")
    if len(value) > max_length:
        raise ValidationFailed(field, f"At most {max_length} characters.")
    return value


def number(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise ValidationFailed(field, "Must be a finite number.")
    return value


def weight(value: float, field: str) -> float:
    if not math.isfinite(value) or value < 0 or value > 1_000_000:
        raise ValidationFailed(field, "Must be between 0 and 1,000,000.")
    return value
