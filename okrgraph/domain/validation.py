"""Input checks shared by the services; each raises ValidationFailed on a field.

The bounds here are the documented ones (docs/limits.md, README "Limits", the
schema's input descriptions): every number, date and string a caller sends is
checked against them before anything is written, so no stored value can make
a score, a roll-up, a forecast or a date computation overflow.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time

from okrgraph.domain import scoring
from okrgraph.domain.errors import ErrorCode, ValidationFailed

# Numbers (KR start/target/check-ins, KPI target/thresholds/measurements):
# |x| <= 1e15. Every integer in range is exact in a float8, and differences,
# products with weights and least-squares sums stay far from overflow.
MAX_ABS_NUMBER = 1e15
MAX_WEIGHT = scoring.MAX_WEIGHT
MIN_WEIGHT = scoring.MIN_WEIGHT  # a weight is 0 (counts for nothing) or MIN..MAX

# Dates and times: 1900-01-01 .. 2999-12-31 (UTC for times). A day after the
# last one, a cycle's end instant, a next cycle: all stay representable.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
MIN_DATETIME = datetime.combine(MIN_DATE, time(), tzinfo=UTC)
MAX_DATETIME = datetime.combine(MAX_DATE, time.max, tzinfo=UTC)

# String lengths, in characters.
NAME = 200
TITLE = 300
UNIT = 32
SHORT_TEXT = 100  # sources, kinds, event types, scopes
LONG_TEXT = 5000  # descriptions, comments, reflections
URL = 2000
KEY = 200  # idempotency keys, external ids, other callers' identifiers
ID = 200  # global ids (ours are ~60 characters)

NUMBER_RULE = "A finite number from -1e15 to 1e15."  # MAX_ABS_NUMBER
WEIGHT_RULE = "0, or a number from 0.000001 to 1,000,000."
DATE_RULE = f"From {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}."
DATETIME_RULE = (
    f"With a time zone, from {MIN_DATE.isoformat()}T00:00Z to {MAX_DATE.isoformat()}T23:59:59Z."
)


def text_field(value: str, field: str, *, max_length: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationFailed(field, "Must not be empty.", ErrorCode.REQUIRED)
    if len(value) > max_length:
        raise ValidationFailed(field, f"At most {max_length} characters.", ErrorCode.TEXT_TOO_LONG)
    return value


def number(value: float, field: str) -> float:
    """A value of a key result or KPI, within +-MAX_ABS_NUMBER."""
    if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
        raise ValidationFailed(field, NUMBER_RULE, ErrorCode.VALUE_OUT_OF_RANGE)
    return value


def optional_number(value: float | None, field: str) -> float | None:
    return None if value is None else number(value, field)


def weight(value: float, field: str) -> float:
    if not (value == 0 or MIN_WEIGHT <= value <= MAX_WEIGHT):  # NaN fails both
        raise ValidationFailed(field, WEIGHT_RULE, ErrorCode.VALUE_OUT_OF_RANGE)
    return value


def day(value: date, field: str) -> date:
    """A calendar date within MIN_DATE..MAX_DATE."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValidationFailed(field, DATE_RULE, ErrorCode.VALUE_OUT_OF_RANGE)
    return value


def instant(value: datetime, field: str) -> datetime:
    """An aware datetime within MIN_DATETIME..MAX_DATETIME."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(field, "Needs a time zone.", ErrorCode.TIME_ZONE_REQUIRED)
    # Compared as aware datetimes: no conversion that could overflow near year 1 or 9999.
    if not MIN_DATETIME <= value <= MAX_DATETIME:
        raise ValidationFailed(field, DATETIME_RULE, ErrorCode.VALUE_OUT_OF_RANGE)
    return value
