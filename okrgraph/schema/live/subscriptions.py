"""Live updates over graphql-transport-ws, relayed from the worker's Redis channel
through the process's one pub/sub connection (`LiveHub`).

A `ProgressChange` carries its subject itself (`subject { ... on KeyResult { id
score status } }`), never an `id` of its own, so a client's normalised store
(Relay, Apollo) updates the cached key result or objective in place. The
subject is read when the event is delivered, in one short tenant-scoped
transaction per message (no transaction is held while the subscription waits,
nor while the event is sent); deeper fields of it read through this event's own
dataloaders, each batch in a short transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.graph.queries import rows_by_ids
from okrgraph.domain.live import REVOKED, Subscriber, SubscriptionEnded, SubscriptionRefused
from okrgraph.domain.messages import OrgMessage, ProgressChanged, ScoreChange, progress_channel
from okrgraph.domain.models.enums import SubjectType
from okrgraph.schema.context import Context, Info
from okrgraph.schema.enums import Status
from okrgraph.schema.errors import ClientError, NotAuthenticated
from okrgraph.schema.loaders import Loaders
from okrgraph.schema.node import NODE_KINDS, to_global_id
from okrgraph.schema.okrs.key_result_types import KeyResult
from okrgraph.schema.okrs.types import Objective
from okrgraph.schema.permissions import CanRead, require_principal

# The GraphQL type of each subject type of the worker's messages.
SUBJECT_TYPES = {SubjectType.OBJECTIVE: "Objective", SubjectType.KEY_RESULT: "KeyResult"}
# A subscription re-checks its token before delivering, at most this often: the
# revocation broadcast ends it at once; this catches a broadcast lost with Redis.
REAUTHORISE_EVERY_S = 1.0


ProgressSubject = Annotated[
    KeyResult | Objective,
    strawberry.union(
        "ProgressSubject", description="What a progress change is about: a key result or objective."
    ),
]


@strawberry.type(
    description="A committed change of a key result's score or an objective's progress. "
    "`subject` is the key result or objective itself, read when the change is delivered "
    "(select `id` and the fields to refresh: a normalised client cache updates it in place); "
    "`previousValue` and `previousStatus` are what the change replaced."
)
class ProgressChange:
    subject: ProgressSubject = strawberry.field(
        description="The key result (`score`, `status`) or objective (`progress`, `status`) "
        "that changed, as it reads now."
    )
    previous_value: float = strawberry.field(description="Score or progress before, 0..1.")
    previous_status: Status = strawberry.field(description="Pace health before.")


def wanted_changes(message: ProgressChanged, wanted: set[str] | None) -> list[ScoreChange]:
    """The changes of a message this subscription asked for (`ids`, or all)."""
    return [
        c
        for c in message.changes
        if wanted is None or to_global_id(SUBJECT_TYPES[c.subject_type], c.subject_id) in wanted
    ]


async def read_changes(ctx: Context, changes: list[ScoreChange]) -> list[ProgressChange]:
    """The payloads of `changes`, their subjects read in one short transaction
    (`ctx.reads_per_use`) and primed into this event's fresh loaders, so nothing an
    earlier event cached is shown. A subject gone or not visible is left out."""
    assert ctx.principal is not None
    org_id = ctx.principal.org_id
    ctx.loaders = Loaders(ctx)
    kinds = {t: NODE_KINDS[SUBJECT_TYPES[t]] for t in {c.subject_type for c in changes}}
    found = {}
    async with ctx.db() as session:
        for t, kind in kinds.items():
            ids = [c.subject_id for c in changes if c.subject_type == t]
            found[t] = await rows_by_ids(session, kind.model, ids)
    out = []
    for change in changes:
        kind = kinds[change.subject_type]
        row: Any = found[change.subject_type].get(change.subject_id)
        if row is None or row.org_id != org_id:  # RLS, and our own check behind it
            continue
        if kind.visible and not kind.visible(ctx.principal, row):
            continue
        ctx.loaders.by_id(kind.model).prime(change.subject_id, row)
        out.append(
            ProgressChange(
                subject=kind.build(row),
                previous_value=change.previous_value,
                previous_status=change.previous_status,
            )
        )
    return out


class Stream:
    """A subscriber's messages for as long as its principal may have them."""

    def __init__(self, ctx: Context, principal: Principal, subscriber: Subscriber) -> None:
        self.ctx, self.principal, self.subscriber = ctx, principal, subscriber
        self.checked_at = time.monotonic()

    async def next(self) -> OrgMessage:
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


@contextlib.asynccontextmanager
async def live_stream(info: Info, channel_of: Callable[[uuid.UUID], str]) -> AsyncIterator[Stream]:
    """The caller's stream of its organisation's channel (`channel_of(org_id)`), the
    hub's refusals and endings raised as client errors. No transaction is held while
    it waits: whatever a delivery reads, it reads in a short one of its own."""
    principal = require_principal(info)
    ctx = info.context
    if ctx.live is None:
        raise ClientError("Live updates are unavailable: Redis is not reachable.")
    ctx.reads_per_use = True
    try:
        async with ctx.live.subscribe(
            principal.org_id,
            channel_of(principal.org_id),
            token_id=principal.token_id,
            person_id=principal.person_id,
        ) as subscriber:
            yield Stream(ctx, principal, subscriber)
    except SubscriptionRefused as exc:
        raise ClientError(str(exc)) from None
    except SubscriptionEnded as exc:
        if exc.code == REVOKED:
            raise NotAuthenticated(str(exc)) from None
        raise SubscriptionClosed(str(exc), exc.code) from None


@strawberry.type
class ProgressSubscriptions:
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
        wanted = {str(i) for i in ids} if ids is not None else None
        async with live_stream(info, progress_channel) as stream:
            while True:
                message = await stream.next()
                if not isinstance(message, ProgressChanged):
                    continue
                changes = wanted_changes(message, wanted)
                if not changes:
                    continue
                await stream.still_authorised()
                for payload in await read_changes(info.context, changes):
                    yield payload


class SubscriptionClosed(ClientError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.extensions = {"code": code}
