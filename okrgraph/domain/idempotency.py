"""Idempotency keys: a retried mutation returns the first call's result, writing nothing.

A key belongs to the token that used it; the stored response is what the API
layer needs to rebuild the first result (ids and plain data, JSON).

Concurrent calls with one key are serialised by `hold`: a transaction-level
advisory lock on (token, key), taken before `recall`. The second caller waits
until the first one's transaction ends, then finds its row and replays it (or,
when the first rolled back, runs as the first itself).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode, ValidationFailed
from okrgraph.domain.models import IdempotencyKey

MAX_KEY_LENGTH = 200


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed(
            "idempotencyKey",
            f"Use 1 to {MAX_KEY_LENGTH} characters.",
            ErrorCode.TEXT_TOO_LONG if key else ErrorCode.REQUIRED,
        )


# hashtextextended: a 64-bit key for pg_advisory_xact_lock; the namespace keeps it
# apart from other advisory locks. A collision only makes two keys wait on each other.
HOLD = text(
    "SELECT pg_advisory_xact_lock("
    "hashtextextended('okrgraph.idempotency:' || :token || ':' || :key, 0))"
)


async def hold(session: AsyncSession, principal: Principal, key: str) -> None:
    """Wait until no other transaction is using this token's `key`; hold it until
    this transaction ends (commit or rollback)."""
    await session.execute(HOLD, {"token": str(principal.token_id), "key": key})


async def recall(
    session: AsyncSession, principal: Principal, key: str, operation: str, request_hash: str
) -> dict[str, Any] | None:
    """The first response when this token used `key` for this very request before;
    None when the key is new. The key used for another request: Conflict."""
    first = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.token_id == principal.token_id, IdempotencyKey.key == key
            )
        )
    ).scalar_one_or_none()
    if first is None:
        return None
    if first.operation != operation or first.request_hash != request_hash:
        raise Conflict(
            "This idempotency key was used for a different request.",
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
        )
    return first.response


def remember(
    session: AsyncSession,
    principal: Principal,
    key: str,
    operation: str,
    request_hash: str,
    response: dict[str, Any],
) -> None:
    """Store the first response under `key` (in the mutation's transaction)."""
    session.add(
        IdempotencyKey(
            org_id=principal.org_id,
            token_id=principal.token_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            response=response,
        )
    )
