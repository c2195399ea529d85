"""graphql-transport-ws where every operation is authorised as of now and runs
in a context of its own.

Strawberry's handler authenticates once, at `connection_init`, and runs every
operation of the socket with the connection's one context: a revoked token kept
working, and concurrent operations shared one transaction. Here each `subscribe`
message re-authenticates the connection's token (revocation, expiry, an
archived person, a changed role all count at once) and gets a fresh `Context`;
a token no longer valid closes the socket with 4403, ending its subscriptions.
"""

from __future__ import annotations

import contextvars

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)

from okrgraph.api.persisted import PersistedQueryError, persisted_queries
from okrgraph.schema.context import Context

REVOKED_CLOSE = (4403, "Forbidden: the API token is revoked or expired, or its person archived")

# The operation's context in its own task (each operation runs in a task of its own).
_operation_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "okr_ws_operation_context", default=None
)


class OkrTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    # The base class reads `self.context` for connection_init (the connection's
    # context) and inside each operation's task (there: that operation's own).
    @property
    def context(self) -> Context:
        return _operation_context.get() or self.connection_context

    @context.setter
    def context(self, value: Context) -> None:
        self.connection_context = value

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """A subscribe message may carry a persisted query's hash instead of its
        document (api/persisted.py); a refused one is answered with an error message."""
        payload = message["payload"]
        try:
            query = persisted_queries.resolve(payload.get("query"), payload.get("extensions"))
        except PersistedQueryError as exc:
            error = GraphQLError(exc.message, extensions={"code": exc.code})
            refusal = ErrorMessage(id=message["id"], type="error", payload=[error.formatted])
            await self.send_message(refusal)
            return
        if query is not None:
            message = {**message, "payload": {**payload, "query": query}}
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        principal = await self.connection_context.reauthorise()
        if principal is None:
            self.operations.pop(operation.id, None)
            await self.websocket.close(*REVOKED_CLOSE)
            return
        self.connection_context.principal = principal
        _operation_context.set(self.connection_context.for_operation(principal))
        await super().run_operation(operation)
