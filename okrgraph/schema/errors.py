"""Errors that reach clients: a code in `extensions`, a message, nothing internal.

`OkrSchema.process_errors` sees every error of every operation (parse,
validation, limits, resolvers, extensions) before it is sent, and:

- passes our `ClientError`s, GraphQL's own request errors and the domain's
  `DomainError`s (their messages are written for clients) through, with a code
  (a `DomainError` raised outside a mutation payload, e.g. a bad `after` cursor,
  also gives its `UserErrorCode` as `extensions.userErrorCode`);
- replaces anything else by "Internal server error" (code `INTERNAL`) and logs
  the original with its traceback;
- drops graphql-core's "Did you mean ...?" suggestions unless in dev mode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.relay.types import GlobalIDValueError
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from okrgraph.domain import errors as domain
from okrgraph.domain.config import settings

log = logging.getLogger("okrgraph.errors")

INTERNAL_MESSAGE = "Internal server error"
SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
DOMAIN_CODES: dict[type[domain.DomainError], str] = {
    domain.ValidationFailed: "BAD_USER_INPUT",
    domain.NotFound: "NOT_FOUND",
    domain.Forbidden: "FORBIDDEN",
    domain.Conflict: "CONFLICT",
}


class ClientError(GraphQLError):
    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": self.code})


class NotAuthenticated(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(
        self, message: str = "A valid API token is required (Authorization: Bearer okr_...)."
    ) -> None:
        super().__init__(message)


class NotAllowed(ClientError):
    code = "FORBIDDEN"


def client_code(error: GraphQLError) -> str | None:
    """The code of an error a client may see as it is, None for an unexpected one."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return str((error.extensions or {}).get("code", "BAD_REQUEST"))
    if isinstance(original, domain.DomainError):
        return next((c for t, c in DOMAIN_CODES.items() if isinstance(original, t)), "BAD_REQUEST")
    if isinstance(original, GlobalIDValueError):
        return "BAD_USER_INPUT"
    return None


STATEMENT_TIMEOUT = "STATEMENT_TIMEOUT"
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled (its timeout)


def cancelled_by_timeout(exc: BaseException | None) -> bool:
    """True when PostgreSQL cancelled a statement of the request (statement_timeout),
    however the driver and SQLAlchemy wrapped it."""
    seen = 0
    while exc is not None and seen < 6:
        if QUERY_CANCELED in (getattr(exc, "sqlstate", None), getattr(exc, "pgcode", None)):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return False


def dev_mode(execution_context: ExecutionContext | None) -> bool:
    """The app's `settings.dev` (from the request), else the process settings."""
    request = getattr(getattr(execution_context, "context", None), "request", None)
    app_settings = getattr(request.app.state, "settings", None) if request is not None else None
    return bool((app_settings or settings).dev)


class OkrSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """One result per operation: subscriptions go through `subscribe`
        (graphql-transport-ws), so here they are refused, not run as a query."""
        allowed = set(allowed_operation_types or OperationType) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        dev = dev_mode(execution_context)
        for index, error in enumerate(errors):
            if cancelled_by_timeout(error.original_error):
                log.warning("statement timeout: %s", error.message.splitlines()[0][:200])
                errors[index] = GraphQLError(
                    f"The request ran past the statement timeout ({settings.statement_timeout_ms:,}"
                    " ms); ask for less, or try again.",
                    error.nodes,
                    path=error.path,
                    extensions={"code": STATEMENT_TIMEOUT},
                )
                continue
            code = client_code(error)
            if code is None:
                log.error("unexpected error: %s", error.message, exc_info=error.original_error)
                errors[index] = GraphQLError(
                    INTERNAL_MESSAGE,
                    error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL"},
                )
                continue
            log.info("client error %s: %s", code, error.message)
            if error.extensions is None or "code" not in error.extensions:
                error.extensions = {**(error.extensions or {}), "code": code}
            if isinstance(error.original_error, domain.DomainError):
                error.extensions["userErrorCode"] = error.original_error.code.value
            if not dev:
                error.message = SUGGESTION.sub("", error.message)


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """A GraphQL response holding one request error (no `data`)."""
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
