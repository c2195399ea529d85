"""Live updates over Redis pub/sub: the hub that fans one process's single pub/sub
connection out to its subscribers. The messages and their channels are
domain/messages.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from okrgraph.domain.messages import (
    ACCESS_CHANNEL,
    AccessRevoked,
    OrgMessage,
    decode_org_message,
)

log = logging.getLogger(__name__)

# Per token, across every socket and process-local connection of it: enough for a
# dashboard with a subscription per card, far below what could strain the hub.
MAX_SUBSCRIPTIONS_PER_TOKEN = 50
# Messages waiting for one subscriber; a subscriber this far behind is ended (it
# re-subscribes and re-reads) rather than let it hold memory or slow the others.
SUBSCRIBER_BACKLOG = 256
RECONNECT_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)
REDIS_TIMEOUT_S = 2.0


class SubscriptionRefused(Exception):
    """A subscription the hub will not open (a cap, or Redis unreachable)."""


class SubscriptionEnded(Exception):
    """The hub ended a subscription: access revoked, the subscriber fell behind, or
    the server is stopping. `code` tells which, for the client."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


REVOKED = "UNAUTHENTICATED"
FELL_BEHIND = "SUBSCRIPTION_FELL_BEHIND"
SHUTTING_DOWN = "SHUTTING_DOWN"


@dataclass(eq=False)
class Subscriber:
    """One subscription: its messages arrive in `queue`, decoded once per message
    (not once per subscriber)."""

    org_id: uuid.UUID
    token_id: uuid.UUID | None
    person_id: uuid.UUID | None
    channel: str
    queue: asyncio.Queue[OrgMessage | SubscriptionEnded] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG)
    )
    ended: SubscriptionEnded | None = None

    def end(self, reason: str, code: str) -> None:
        if self.ended is not None:
            return
        self.ended = SubscriptionEnded(reason, code)
        while True:  # make room: the end must arrive even in a full queue
            try:
                self.queue.put_nowait(self.ended)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def next(self) -> OrgMessage:
        item = await self.queue.get()
        if isinstance(item, SubscriptionEnded):
            raise item
        return item

    def revoked_by(self, message: AccessRevoked) -> bool:
        return message.org_id == self.org_id and (
            self.token_id in message.token_ids or self.person_id in message.person_ids
        )


class LiveHub:
    """One Redis pub/sub connection per process, shared by all its subscriptions.

    Channels are subscribed while someone listens to them and unsubscribed after
    the last one leaves; a lost connection is re-established with backoff (the
    client re-subscribes its channels). Each subscriber has a bounded queue, so
    a slow client can never hold up the others."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_per_token: int = MAX_SUBSCRIPTIONS_PER_TOKEN,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.owns_client = owns_client
        self.max_per_token = max_per_token
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.per_token: Counter[uuid.UUID] = Counter()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _ensure_started(self) -> None:
        if self._reader is not None:
            return
        pubsub = self.redis.pubsub()
        try:
            await asyncio.wait_for(pubsub.subscribe(ACCESS_CHANNEL), REDIS_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._pubsub = pubsub
        self._reader = asyncio.create_task(self._read(), name="okr-live-hub")

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        org_id: uuid.UUID,
        channel: str,
        *,
        token_id: uuid.UUID | None,
        person_id: uuid.UUID | None,
    ) -> AsyncIterator[Subscriber]:
        if token_id is not None and self.per_token[token_id] >= self.max_per_token:
            raise SubscriptionRefused(
                f"This API token already has {self.max_per_token} open subscriptions, the "
                "most it may have; complete some before opening more."
            )
        subscriber = Subscriber(org_id, token_id, person_id, channel)
        async with self._lock:
            try:
                await self._ensure_started()
                if channel not in self.subscribers:
                    await asyncio.wait_for(self._pubsub.subscribe(channel), REDIS_TIMEOUT_S)
                    self.subscribers[channel] = set()
            except (RedisError, OSError, TimeoutError) as exc:
                raise SubscriptionRefused(
                    "Live updates are unavailable: Redis is not reachable."
                ) from exc
            self.subscribers[channel].add(subscriber)
            if token_id is not None:
                self.per_token[token_id] += 1
        try:
            yield subscriber
        finally:
            await self._leave(subscriber)

    async def _leave(self, subscriber: Subscriber) -> None:
        async with self._lock:
            listeners = self.subscribers.get(subscriber.channel, set())
            listeners.discard(subscriber)
            if subscriber.token_id is not None:
                self.per_token[subscriber.token_id] -= 1
                if self.per_token[subscriber.token_id] <= 0:
                    del self.per_token[subscriber.token_id]
            if not listeners and subscriber.channel in self.subscribers:
                del self.subscribers[subscriber.channel]
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._pubsub.unsubscribe(subscriber.channel), REDIS_TIMEOUT_S
                    )

    def all_subscribers(self) -> Iterable[Subscriber]:
        for listeners in self.subscribers.values():
            yield from listeners

    async def announce(self, message: AccessRevoked | OrgMessage) -> None:
        """Deliver a message to every process's subscribers; a revocation ends the
        subscriptions that lost access here at once (best effort elsewhere: each
        subscription also re-checks its token before it delivers)."""
        if isinstance(message, AccessRevoked):
            self.revoke(message)
        try:
            await asyncio.wait_for(
                self.redis.publish(message.channel, message.encode()), REDIS_TIMEOUT_S
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("live: could not publish on %s (%s)", message.channel, exc)

    def revoke(self, message: AccessRevoked) -> None:
        for subscriber in list(self.all_subscribers()):
            if subscriber.revoked_by(message):
                subscriber.end("The API token was revoked or its person archived.", REVOKED)

    def dispatch(self, channel: str, data: str | bytes) -> None:
        """Hand one pub/sub message to every subscriber of its channel, decoded once as
        the channel's kind of message (progress, events)."""
        if channel == ACCESS_CHANNEL:
            self.revoke(AccessRevoked.decode(data))
            return
        listeners = self.subscribers.get(channel)
        if not listeners:
            return
        message = decode_org_message(channel, data)
        for subscriber in list(listeners):
            if message.org_id != subscriber.org_id:
                continue  # never another organisation's messages, whatever the channel
            try:
                subscriber.queue.put_nowait(message)
            except asyncio.QueueFull:
                subscriber.end("The subscription fell behind; subscribe again.", FELL_BEHIND)

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                async for message in self._pubsub.listen():
                    failures = 0
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    try:
                        self.dispatch(channel, message["data"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("live: ignored a malformed message on %s", channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                if failures == 0:
                    log.warning("live: Redis pub/sub lost (%s); reconnecting", exc)
                failures += 1
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        for subscriber in list(self.all_subscribers()):
            subscriber.end("The server is shutting down.", SHUTTING_DOWN)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self.owns_client:
            await self.redis.aclose()
