"""Mutation results: the changed object or a typed user error, never a stack trace.

`run_mutation` is the one way a mutation runs: authorisation and the service
inside a savepoint (a refused or failed change leaves nothing behind), and the
optional `idempotencyKey` (a retry returns the first call's result and writes
nothing twice; a duplicate sent while the first still runs waits for it and then
replays it, see domain/idempotency.py). After the write the operation gets fresh
dataloaders, so its payload (and the next mutation's of the same document) shows
the written state, never rows an earlier payload loaded.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

import strawberry
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import errors, idempotency
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models import Base
from okrgraph.domain.outbox.after_commit import savepoint
from okrgraph.schema.bounds import check_arguments
from okrgraph.schema.context import Info
from okrgraph.schema.enums import ErrorCode  # registered as the GraphQL `UserErrorCode`
from okrgraph.schema.loaders import Loaders
from okrgraph.schema.node import NODE_KINDS
from okrgraph.schema.permissions import require_principal

R = TypeVar("R")


@strawberry.interface(
    description="A problem with the request that the caller can fix. Branch on `code`; "
    "`message` is for people and may change."
)
class UserError:
    message: str = strawberry.field(description="What went wrong, for people.")
    code: ErrorCode = strawberry.field(
        description="Which rule refused the change: stable, for clients to branch on."
    )


@strawberry.type(description="One invalid input field.")
class FieldError:
    field: str = strawberry.field(description="Input path, e.g. `input.target`.")
    message: str = strawberry.field(description="What is wrong with it.")
    code: ErrorCode = strawberry.field(description="Which rule it breaks.")


@strawberry.type(description="The input breaks a rule; nothing was changed.")
class ValidationError(UserError):
    field: str = strawberry.field(description="Input path of the (first) invalid field.")
    errors: list[FieldError] = strawberry.field(description="Every invalid field.")


@strawberry.type(name="NotFound", description="No such object in your organisation.")
class NotFoundError(UserError):
    id: strawberry.ID | None = strawberry.field(description="The id that was not found.")


@strawberry.type(name="Forbidden", description="You may not make this change.")
class ForbiddenError(UserError):
    pass


@strawberry.type(name="Conflict", description="The change clashes with the current state.")
class ConflictError(UserError):
    pass


USER_ERRORS = (ValidationError, NotFoundError, ForbiddenError, ConflictError)
# A mutation result is `Annotated[<Thing>Success | UserErrors, strawberry.union("<Thing>Result")]`.
UserErrors = ValidationError | NotFoundError | ForbiddenError | ConflictError


def user_error(exc: errors.DomainError) -> UserError:
    if isinstance(exc, errors.ValidationFailed):
        return ValidationError(
            message=exc.message,
            code=exc.code,
            field=exc.field,
            errors=[FieldError(field=exc.field, message=exc.message, code=exc.code)],
        )
    if isinstance(exc, errors.NotFound):
        return NotFoundError(message=exc.message, code=exc.code, id=None)
    if isinstance(exc, errors.Forbidden):
        return ForbiddenError(message=exc.message, code=exc.code)
    return ConflictError(message=exc.message, code=exc.code)


def _db_error(exc: DBAPIError) -> errors.DomainError:
    """A constraint the service did not check first (a race, or a rule kept by the
    database alone): a typed error, without the database's text."""
    constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None) or ""
    if isinstance(exc, IntegrityError) and constraint.startswith("ck_"):
        return errors.ValidationFailed(
            "input",
            f"The input breaks the rule `{constraint}`.",
            errors.ErrorCode.CONSTRAINT_VIOLATED,
        )
    if isinstance(exc, IntegrityError):
        return errors.Conflict(
            "The change conflicts with existing data.", errors.ErrorCode.ALREADY_EXISTS
        )
    raise exc


def _unstorable_text(value: Any, path: str) -> str | None:
    """The input path of a string PostgreSQL cannot store (NUL, a lone surrogate)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return path
        return None
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _unstorable_text(item, f"{path}.{key}")
        if found:
            return found
    return None


def _request_hash(operation: str, payload: Any) -> str:
    def plain(value: Any) -> Any:
        if is_dataclass(value) and not isinstance(value, type):
            return plain(asdict(value))
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value if isinstance(value, str | int | float | bool) or value is None else str(value)

    raw = json.dumps([operation, plain(payload)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


MODEL_TYPE_NAMES: dict[type[Base], str] = {}


def _model_type_name(model: type[Base]) -> str:
    if not MODEL_TYPE_NAMES:
        MODEL_TYPE_NAMES.update({kind.model: name for name, kind in NODE_KINDS.items()})
    return MODEL_TYPE_NAMES[model]


def _remember(result: Any) -> dict[str, Any]:
    if isinstance(result, Base):
        return {"model": _model_type_name(type(result)), "id": str(result.id)}  # type: ignore[attr-defined]
    return {"value": result}


async def _recall(info: Info, stored: dict[str, Any]) -> Any:
    if "model" in stored:
        kind = NODE_KINDS[stored["model"]]
        return await info.context.loaders.by_id(kind.model).load(uuid.UUID(stored["id"]))
    return stored["value"]


async def run_mutation(
    info: Info,
    operation: str,
    payload: Any,
    idempotency_key: str | None,
    action: Callable[[AsyncSession, Principal], Awaitable[R]],
    success: Callable[[R], Any],
) -> Any:
    """Run `action` (authorise + one domain service) and map its result."""
    principal = require_principal(info)
    ctx = info.context
    try:
        check_arguments(payload)  # every field within its documented bound (schema/bounds.py)
    except errors.ValidationFailed as exc:
        return user_error(exc)
    bad = _unstorable_text(payload, "input") or _unstorable_text(idempotency_key, "idempotencyKey")
    if bad is not None:
        return user_error(
            errors.ValidationFailed(
                bad,
                "Text may not contain NUL or unpaired surrogates.",
                errors.ErrorCode.UNSTORABLE_TEXT,
            )
        )
    request_hash = _request_hash(operation, payload)
    async with ctx.db() as session:
        recalled = None  # the first call's response, when this is a retry
        if idempotency_key is not None:
            try:
                idempotency.check_key(idempotency_key)
                await idempotency.hold(session, principal, idempotency_key)
                recalled = await idempotency.recall(
                    session, principal, idempotency_key, operation, request_hash
                )
            except errors.DomainError as exc:
                return user_error(exc)
        if recalled is None:
            try:
                async with savepoint(session):
                    result = await action(session, principal)
                    if idempotency_key is not None:
                        idempotency.remember(
                            session,
                            principal,
                            idempotency_key,
                            operation,
                            request_hash,
                            _remember(result),
                        )
                    await session.flush()
            except errors.DomainError as exc:
                return user_error(exc)
            except DBAPIError as exc:
                return user_error(_db_error(exc))
        # fall through: build the payload after releasing the session lock,
        # since building it may use the dataloaders (which take the lock)
    # What the loaders hold was read before this write (an earlier payload of the
    # document filled them): from here on, reads see the written state.
    ctx.loaders = Loaders(ctx)
    if recalled is not None:
        result = await _recall(info, recalled)
    return await _built(success(result))


async def _built(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
