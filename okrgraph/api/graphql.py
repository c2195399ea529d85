"""The /graphql endpoint: Strawberry's ASGI view with our context, auth and the
GraphQL-over-HTTP rules (https://graphql.github.io/graphql-over-http/draft/).

- GET runs queries, POST queries and mutations; a mutation over GET is a 405,
  a subscription over HTTP a 400 (they run over graphql-transport-ws).
- `Accept: application/graphql-response+json` gets that media type and the
  spec's status codes: 200 when the response has `data`, 400 for a request
  error (parse, validation, limits, variables), 401 for UNAUTHENTICATED,
  500 for INTERNAL. `application/json` (also for `*/*` or no Accept header)
  keeps 200 for every well-formed request, as the spec's legacy rules say.
- Requests that are not GraphQL-over-HTTP at all (bad JSON, a body that is not
  a JSON object with the spec's members — `query` a string, `variables` and
  `extensions` objects or null, `operationName` a string or null — no query,
  JSON nested deeper than `MAX_JSON_DEPTH`, a body over `MAX_REQUEST_BYTES`, a
  bad token) get a 4xx with a GraphQL-shaped body:
  `{"errors": [{"message": ..., "extensions": {"code": ...}}]}`.
- A request that accepts none of the media types above (`Accept: text/plain`)
  gets 406 Not Acceptable; a browser's GET asking for text/html gets GraphiQL,
  served with its assets from this package (okrgraph/api/graphiql.py).
- Authentication is all or nothing: a request without a token may only
  introspect (`__schema`, `__type`, `__typename`); one that selects anything
  else answers 401 with `WWW-Authenticate`, exactly as a bad token does.
- A websocket upgrade from a browser page on an origin that is not allowed
  (`OKR_CORS_ORIGINS`; the API's own origin always is) is refused with 403.
- Automatic persisted queries (api/persisted.py), on GET and POST: an unknown
  hash is the request error PERSISTED_QUERY_NOT_FOUND (200, or 400 for
  graphql-response+json, as other request errors), a hash that is not the
  query's SHA-256 a 400.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from okrgraph.api import remembered
from okrgraph.api.graphiql import graphiql_html
from okrgraph.api.persisted import NOT_FOUND_CODE, PersistedQueryError, persisted_queries
from okrgraph.api.ratelimit import AnonymousRateLimit
from okrgraph.api.transaction import begin_request
from okrgraph.api.websocket import OkrTransportWSHandler
from okrgraph.domain.auth.tokens import Authenticated, Principal, touch
from okrgraph.domain.config import Settings
from okrgraph.schema import schema as okr_schema
from okrgraph.schema.context import Context
from okrgraph.schema.errors import INTERNAL_MESSAGE, error_body
from okrgraph.schema.limits import MAX_REQUEST_BYTES

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    500: "INTERNAL",
}
STATUS_BY_CODE = {"UNAUTHENTICATED": 401, "INTERNAL": 500, "STATEMENT_TIMEOUT": 503}
# Objects and arrays nested in a request's JSON (the body, or GET's `variables`
# and `extensions`); the deepest input of the schema needs 5 (docs/limits.md).
MAX_JSON_DEPTH = 32
HEADERS_BY_STATUS = {
    401: {"WWW-Authenticate": 'Bearer realm="okrgraph"'},
    405: {"Allow": "POST"},
}


def bearer(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def negotiate(accept: str | None) -> str:
    """application/graphql-response+json when the client prefers it; else JSON,
    also for `*/*` and a missing Accept header (the spec's legacy default)."""
    graphql_q = json_q = 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        try:
            q = float(next((p[2:] for p in params if p.startswith("q=")), "1"))
        except ValueError:
            continue
        if media == GRAPHQL_RESPONSE:
            graphql_q = max(graphql_q, q)
        elif media in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
    return GRAPHQL_RESPONSE if graphql_q > 0 and graphql_q >= json_q else JSON


def acceptable(request: Request) -> bool:
    """Whether the client accepts a response we can give: JSON or
    graphql-response+json (also through a wildcard), no Accept header at all, or,
    for a browser's GET, the GraphiQL page (text/html)."""
    accept = request.headers.get("accept")
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            if float(q) <= 0:
                continue
        except ValueError:
            continue
        if media in (GRAPHQL_RESPONSE, JSON, "application/*", "*/*"):
            return True
        if media == "text/html" and request.method == "GET":
            return True
    return False


def unauthenticated(errors: Any) -> bool:
    return any(str((e.extensions or {}).get("code")) == "UNAUTHENTICATED" for e in errors)


def json_response(body: Any, status: int, media_type: str) -> Response:
    headers = HEADERS_BY_STATUS.get(status, {})
    content = json.dumps(body, separators=(",", ":"))
    return Response(content, status, headers, f"{media_type}; charset=utf-8")


async def read_body(request: Request) -> None:
    """Reads the body once, refusing it past MAX_REQUEST_BYTES (413)."""
    too_large = HTTPException(413, f"The request body is over {MAX_REQUEST_BYTES:,} bytes.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise too_large
    request._body = bytes(body)  # what Request.body() returns from now on


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a `\\ud800` escape in the JSON
        return False
    return True


def request_data(data: Any, protocol: Any) -> GraphQLRequestData:
    """The operation of a request body (or of GET's parameters), or a 400 naming what
    is wrong: not an object, a member of the wrong type."""
    if not isinstance(data, dict):
        raise HTTPException(400, "The request must be a JSON object (batching is off).")
    expected = {
        "query": (str, "a string"),
        "variables": (dict, "an object or null"),
        "operationName": (str, "a string or null"),
        "extensions": (dict, "an object or null"),
    }
    for member, (kind, described) in expected.items():
        value = data.get(member)
        if value is not None and not isinstance(value, kind):
            raise HTTPException(400, f"`{member}` must be {described}.")
        if isinstance(value, str) and not valid_unicode(value):
            raise HTTPException(400, f"`{member}` holds a lone surrogate (not Unicode).")
    return GraphQLRequestData(
        query=data.get("query"),
        variables=data.get("variables"),
        operation_name=data.get("operationName"),
        extensions=data.get("extensions"),
        protocol=protocol,
    )


class OkrGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = OkrTransportWSHandler

    def __init__(self, cfg: Settings, schema: BaseSchema = okr_schema) -> None:
        # Only graphql-transport-ws: the legacy graphql-ws protocol would bypass the
        # per-operation authorisation of OkrTransportWSHandler.
        origins, pattern = cfg.allowed_origins()
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            allowed_origins=origins,
        )
        self.origin_pattern = re.compile(pattern) if pattern else None
        self.cfg = cfg
        self.anonymous = AnonymousRateLimit.of(cfg)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        request = Request(scope, receive)
        media_type = negotiate(request.headers.get("accept"))
        try:
            if not acceptable(request):
                raise HTTPException(
                    406,
                    f"Accept {GRAPHQL_RESPONSE} or {JSON}: no other media type is served.",
                )
            await read_body(request)
            response = self.anonymous.refusal(request, media_type) or await self.served(
                request, media_type
            )
        except PersistedQueryError as exc:
            # Not found is a request error (200 in legacy JSON); a malformed extension a 400.
            status = 200 if exc.code == NOT_FOUND_CODE and media_type == JSON else 400
            response = json_response(error_body(exc.message, exc.code), status, media_type)
        except HTTPException as exc:
            status, reason = exc.status_code, exc.reason
            if isinstance(cause := exc.__cause__, InvalidOperationTypeError):
                if cause.operation_type == OperationType.MUTATION:
                    status = 405  # the spec: a mutation over GET is "Method Not Allowed"
                else:
                    reason = "Subscriptions run over WebSocket (graphql-transport-ws) at /graphql."
            code = HTTP_CODES.get(status, "BAD_REQUEST")
            response = json_response(error_body(reason, code), status, media_type)
        except Exception:
            log.exception("unhandled error in /graphql")
            response = json_response(error_body(INTERNAL_MESSAGE, "INTERNAL"), 500, media_type)
        await response(scope, receive, send)

    async def served(self, request: Request, media_type: str) -> Response:
        """A remembered answer (api/remembered.py) or `run`, then the request's session
        closed (its transaction rolled back unless the operation committed it) and the
        token's last use recorded when due."""
        try:
            token = bearer(request.headers)
            return await remembered.answer(request, token, media_type) or await self.run(request)
        finally:
            session: AsyncSession | None = getattr(request.state, "session", None)
            if session is not None:
                await session.close()
            authenticated: Authenticated | None = getattr(request.state, "authenticated", None)
            if authenticated is not None and authenticated.stale:
                await touch(request.app.state.sessionmaker, authenticated.principal)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET with `extensions` (a persisted query's hash) is an operation, not a
        browser asking for GraphiQL, whatever its Accept header says."""
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with its assets from this package (no CDN: works offline)."""
        return HTMLResponse(graphiql_html())

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        """A cross-origin upgrade (a browser page elsewhere): the allowed origins, or
        dev mode's localhost pattern. Same-origin and Origin-less (non-browser)
        upgrades never come here."""
        if super().is_websocket_origin_allowed(request, origin):
            return True
        return self.origin_pattern is not None and bool(self.origin_pattern.fullmatch(origin))

    def decode_json(self, data: str | bytes) -> object:
        """JSON at most MAX_JSON_DEPTH deep; deeper (or not JSON at all) is a 400,
        before anything recurses over it."""
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: thousands deep
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if json_depth(value) > MAX_JSON_DEPTH:
            raise HTTPException(400, f"The JSON nests deeper than {MAX_JSON_DEPTH} levels.")
        return value

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """Strawberry's parsing, minus batching and uploads (both off), with every
        member of the body checked (`request_data`)."""
        content_type, _ = parse_content_type(request.content_type or "")
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol = transport.protocol if transport else "http"
        if request.method == "GET":
            data: Any = self.parse_query_params(request.query_params)
        elif "application/json" in content_type:
            data = self.parse_json(await request.get_body())
        else:
            raise HTTPException(400, "Unsupported content type")
        operation = request_data(data, protocol)
        operation.query = persisted_queries.resolve(operation.query, operation.extensions)
        return operation

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        app = request.app
        token = bearer(request.headers)
        if isinstance(request, WebSocket):
            # A websocket's token (upgrade header or connection_init) is checked in
            # on_ws_connect, and again for every operation (api/websocket.py).
            return Context(
                request=request,
                sessionmaker=app.state.sessionmaker,
                principal=None,
                queue=app.state.queue,
                live=getattr(app.state, "live", None),
                credentials=token,
            )
        request.state.anonymous = token is None
        principal: Principal | None = None
        session: AsyncSession | None = None
        if token is not None:
            # The request's one transaction: the token is checked and the tenant set
            # by its first statement; the operation runs in it (TransactionExtension)
            # and `served` closes it.
            principal = await begin_request(request, token)
            session = request.state.session
        return Context(
            request=request,
            sessionmaker=app.state.sessionmaker,
            principal=principal,
            queue=app.state.queue,
            live=getattr(app.state, "live", None),
            request_session=session,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the token comes in the upgrade request's
        Authorization header or in connection_init's payload
        (`{"Authorization": "Bearer okr_..."}`); without a valid one the socket
        closes with 4403."""
        if context.credentials is None:
            params = context.connection_params or {}
            header = params.get("Authorization") or params.get("authorization") or ""
            context.credentials = bearer({"authorization": str(header)})
        principal = await context.reauthorise() if context.credentials else None
        if principal is None:
            raise ConnectionRejectionError({"message": "A valid API token is required."})
        context.principal = principal
        return UNSET

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        request.state.sub_response = sub_response
        return sub_response

    async def process_result(
        self, request: Request | WebSocket, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        errors = result.errors or []
        sub_response: Response = request.state.sub_response
        if getattr(request.state, "anonymous", False) and unauthenticated(errors):
            # No token and something selected that needs one: 401, as for a bad token.
            sub_response.status_code = 401
            sub_response.headers.update(HEADERS_BY_STATUS[401])
            message = "A valid API token is required (Authorization: Bearer okr_...)."
            return error_body(message, "UNAUTHENTICATED")  # type: ignore[return-value]
        body = process_result(result)
        request_error = result.data is None and not any(e.path for e in errors)
        if request_error:
            del body["data"]  # the spec: no `data` when execution never started
        if sub_response.media_type == GRAPHQL_RESPONSE and request_error:
            statuses = {
                STATUS_BY_CODE.get(str((e.extensions or {}).get("code")), 400) for e in errors
            }
            client = [s for s in statuses if s < 500]  # a client's mistake explains more
            sub_response.status_code = max(client) if client else max(statuses)
            sub_response.headers.update(HEADERS_BY_STATUS.get(sub_response.status_code, {}))
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{sub_response.media_type}; charset=utf-8"
        return response
