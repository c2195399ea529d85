"""Requests answered from what an identical earlier request left behind, without
Strawberry's operation pipeline (issue 11: its extension hooks, context and result
processing were about 1 ms of CPU of a small compiled read's ~2).

A request whose document, operation name and variables repeat one that reached the
compiled path (`CompiledStore.remembered`) or the introspection cache
(`introspection.remembered`) passed parsing, validation and the limits then, and
would pass them now: they depend on nothing else (the schema is fixed for the life
of the process). So the view answers it directly, with the same statements (BEGIN,
token + tenant, the compiled read, COMMIT; for introspection with a token only the
token's check, in a transaction of its own: `check_token`), status, headers and
bytes. Anything else goes the normal way, which also gives every error: GET,
another content type, a persisted-query extension or any other member, a streaming
Accept, no token for a read, a token without the `read` scope; and the read that
fails or answers over MAX_RESPONSE_BYTES runs again the normal way, for its error.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.http.parse_content_type import parse_content_type
from strawberry.utils.operation import get_first_operation

from okrgraph.api.transaction import begin_request, check_token
from okrgraph.schema import documents, introspection
from okrgraph.schema.compiled import extension as compiled_reads

MEMBERS = frozenset({"query", "variables", "operationName"})
STREAMING = ("multipart/mixed", "text/event-stream")


def plain_operation(request: Request) -> tuple[str, str | None, dict[str, Any] | None] | None:
    """(query, operationName, variables) of a JSON POST holding only those, else None."""
    if request.method != "POST":
        return None
    content_type, _ = parse_content_type(request.headers.get("content-type") or "")
    accept = request.headers.get("accept") or ""
    if "application/json" not in content_type or any(s in accept for s in STREAMING):
        return None
    try:
        data = json.loads(request._body)  # read_body has read it
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not data.keys() <= MEMBERS:
        return None
    query, name, variables = data.get("query"), data.get("operationName"), data.get("variables")
    if (
        not isinstance(query, str)
        or not isinstance(name, str | None)
        or not isinstance(variables, dict | None)
    ):
        return None
    return query, name if name is not None else first_operation_name(query), variables


def first_operation_name(query: str) -> str | None:
    """The name the operation goes by when none is sent (Strawberry's
    ExecutionContext.operation_name, by which both stores keep their outcomes): the
    first operation's, from the parsed document the document cache kept."""
    entry = documents.store.entries.get(query)
    operation = get_first_operation(entry.document) if entry is not None else None
    return operation.name.value if operation is not None and operation.name else None


async def answer(request: Request, token: str | None, media_type: str) -> Response | None:
    """The response to a request answered from a remembered outcome, else None."""
    operation = plain_operation(request)
    if operation is None:
        return None
    data = introspection.remembered(*operation)
    if data is None:
        compiled = compiled_reads.store.remembered(*operation) if token is not None else None
        if compiled is None or token is None:
            return None
        principal = await begin_request(request, token)
        if not principal.has_scope("read"):
            await forget(request)
            return None
        session = request.state.session
        try:
            result = await compiled_reads.run_compiled(session, compiled)
        except Exception:  # a statement timeout, say: the normal way gives its error
            result = None
        if result is None or result.errors:
            await forget(request)
            return None
        await session.commit()
        data = result.data
    elif token is not None:
        await check_token(request, token)
    body = json.dumps({"data": data}, separators=(",", ":"))
    return Response(body, 200, media_type=f"{media_type}; charset=utf-8")


async def forget(request: Request) -> None:
    """Back to the normal way, which opens a transaction of its own."""
    await request.state.session.close()
    del request.state.session, request.state.authenticated
