"""Rate limit for anonymous callers: a token bucket per client address.

Requests without an `Authorization` header (anonymous: introspection, GraphiQL)
may come `settings.anonymous_burst` (30) at once from one client address, then
`settings.anonymous_per_second` (1) per second. Past that they get a 429 with a
GraphQL-shaped body (`extensions.code` RATE_LIMITED, `retryAfter` in seconds)
and a `Retry-After` header. Requests with a token are not limited here (their
cost limits apply). The address is the connection's peer as uvicorn sees it:
behind a proxy, run uvicorn with `--proxy-headers` so that it is the caller's.
The buckets live in the process (each API replica counts for itself) and at most
`MAX_CLIENTS` addresses are remembered (the least recently seen is forgotten:
it starts again with a full bucket).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from okrgraph.domain.config import Settings
from okrgraph.schema.errors import error_body

MAX_CLIENTS = 10_000


class AnonymousRateLimit:
    def __init__(
        self, burst: int, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, at)

    @classmethod
    def of(cls, cfg: Settings) -> AnonymousRateLimit:
        return cls(cfg.anonymous_burst, cfg.anonymous_per_second)

    def wait(self, client: str) -> float:
        """Takes a token for `client`: 0 when there was one, else the seconds until one."""
        now = self.clock()
        tokens, at = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_second if self.per_second > 0 else math.inf
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait

    def refusal(self, request: Request, media_type: str) -> Response | None:
        """A 429 for an anonymous request over its client's rate, else None."""
        if request.headers.get("authorization"):
            return None
        wait = self.wait(request.client.host if request.client else "")
        if wait <= 0:
            return None
        retry_after = max(1, math.ceil(min(wait, 86_400)))
        body = error_body(
            "Too many requests without a token from this address; retry after "
            f"{retry_after} s, or send an API token.",
            "RATE_LIMITED",
            retryAfter=retry_after,
        )
        return Response(
            json.dumps(body, separators=(",", ":")),
            429,
            {"Retry-After": str(retry_after)},
            f"{media_type}; charset=utf-8",
        )
