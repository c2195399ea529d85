"""Live updates over graphql-transport-ws, relayed from the worker's Redis channel
through the process's one pub/sub connection (`LiveHub`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import strawberry

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.live import (
    REVOKED,
    Subscriber,
    SubscriptionEnded,
    SubscriptionRefused,
    progress_channel,
)
from okrgraph.schema.context import Context, Info
from okrgraph.schema.enums import Status
from okrgraph.schema.errors import ClientError, NotAuthenticated
from okrgraph.schema.node import to_global_id
from okrgraph.schema.permissions import CanRead, require_principal

SUBJECT_TYPES = {"OBJECTIVE": "Objective", "KEY_RESULT": "KeyResult"}
# A subscription re-checks its token before delivering, at most this often: the
# revocation broadcast ends it at once; this catches a broadcast lost with Redis.
REAUTHORISE_EVERY_S = 1.0


@strawberry.type(description="A score or progress that changed (committed).")
class ProgressChange:
    id: strawberry.ID = strawberry.field(description="Global id of the objective or key result.")
    subject_type: str = strawberry.field(description="`Objective` or `KeyResult`.")
    value: float = strawberry.field(description="New score or progress, 0..1.")
    status: Status = strawberry.field(description="New pace health.")
    previous_value: float = strawberry.field(description="Value before.")
    previous_status: Status = strawberry.field(description="Status before.")


def changes_in(message: dict[str, Any], wanted: set[str] | None) -> list[ProgressChange]:
    out = []
    for change in message.get("changes", []):
        type_name = SUBJECT_TYPES.get(change["subjectType"])
        if type_name is None:
            continue
        global_id = to_global_id(type_name, uuid.UUID(change["id"]))
        if wanted is not None and global_id not in wanted:
            continue
        out.append(
            ProgressChange(
                id=global_id,
                subject_type=type_name,
                value=change["value"],
                status=Status(change["status"]),
                previous_value=change["previousValue"],
                previous_status=Status(change["previousStatus"]),
            )
        )
    return out


class Stream:
    """A subscriber's messages for as long as its principal may have them."""

    def __init__(self, ctx: Context, principal: Principal, subscriber: Subscriber) -> None:
        self.ctx, self.principal, self.subscriber = ctx, principal, subscriber
        self.checked_at = time.monotonic()

    async def next(self) -> dict[str, Any]:
        expires_at = self.principal.expires_at
        if expires_at is None:
            return await self.subscriber.next()
        left = (expires_at - datetime.now(UTC)).total_seconds()
        try:
            return await asyncio.wait_for(self.subscriber.next(), max(left, 0))
        except TimeoutError:
            raise NotAuthenticated("The API token expired.") from None

    async def still_authorised(self) -> None:
        if time.monotonic() - self.checked_at < REAUTHORISE_EVERY_S:
            return
        if await self.ctx.reauthorise() is None:
            raise NotAuthenticated("The API token was revoked, expired or its person archived.")
        self.checked_at = time.monotonic()


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Scores and progress of your organisation as the worker commits them; "
        "`ids` narrows to some objectives or key results. Ends with an UNAUTHENTICATED error "
        "when the token is revoked or expires or its person is archived. At most "
        "50 open subscriptions per API token.",
    )
    async def progress_changed(
        self, info: Info, ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[ProgressChange, None]:
        principal = require_principal(info)
        ctx = info.context
        if ctx.live is None:
            raise ClientError("Live updates are unavailable: Redis is not reachable.")
        wanted = {str(i) for i in ids} if ids is not None else None
        try:
            async with ctx.live.subscribe(
                principal.org_id,
                progress_channel(principal.org_id),
                token_id=principal.token_id,
                person_id=principal.person_id,
            ) as subscriber:
                stream = Stream(ctx, principal, subscriber)
                while True:
                    changes = changes_in(await stream.next(), wanted)
                    if changes:
                        await stream.still_authorised()
                    for change in changes:
                        yield change
        except SubscriptionRefused as exc:
            raise ClientError(str(exc)) from None
        except SubscriptionEnded as exc:
            if exc.code == REVOKED:
                raise NotAuthenticated(str(exc)) from None
            raise SubscriptionClosed(str(exc), exc.code) from None


class SubscriptionClosed(ClientError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.extensions = {"code": code}
