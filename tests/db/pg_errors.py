"""What PostgreSQL said: the SQLSTATE and constraint behind a SQLAlchemy error."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

CHECK_VIOLATION = "23514"
FOREIGN_KEY_VIOLATION = "23503"
INSUFFICIENT_PRIVILEGE = "42501"  # also raised for a row-level security WITH CHECK failure


@dataclass(frozen=True)
class PgError:
    sqlstate: str | None
    constraint: str | None
    message: str


def pg_error(exc: BaseException) -> PgError:
    assert isinstance(exc, DBAPIError), f"not a database error: {exc!r}"
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return PgError(
        sqlstate=getattr(cause, "sqlstate", None),
        constraint=getattr(cause, "constraint_name", None),
        message=str(cause or exc),
    )
