"""A person's in-app notifications and notification preferences (reads and writes).

Everything here is the calling person's own: another person's notification id
is `NotFound`, exactly like an id from another organisation. Integrations have
no inbox.

Who may change it (README "Permissions"): a token with only the `read` scope
never writes anything, its owner's inbox included; a `write` token changes its
person's own inbox (read marks, preferences) whatever their org role, so a
VIEWER with a `write` token manages their inbox and still changes nothing of
the organisation's (domain/access.py refuses VIEWERs every other write).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import ErrorCode, Forbidden, NotFound, ValidationFailed
from okrgraph.domain.graph.queries import Order, Page, page_of
from okrgraph.domain.models import Notification, NotificationPreference
from okrgraph.domain.models.enums import Channel, NotificationKind

NEWEST_FIRST = Order("created_at", descending=True)
BY_KIND = Order("kind")
MAX_MARK = 100


def is_own(principal: Principal | None, row: Notification | NotificationPreference) -> bool:
    return (
        principal is not None
        and principal.person_id is not None
        and row.person_id == principal.person_id
    )


def _person_id(principal: Principal) -> uuid.UUID:
    """The person whose inbox a write changes: the caller, with a `write` token."""
    if principal.person_id is None:
        raise Forbidden(
            "Notifications belong to people; this token is an integration's.",
            ErrorCode.PERSON_REQUIRED,
        )
    if not principal.has_scope("write"):
        raise Forbidden(
            "This token lacks the `write` scope (a read-only token changes nothing).",
            ErrorCode.MISSING_SCOPE,
        )
    return principal.person_id


async def notifications_page(
    session: AsyncSession, principal: Principal, page: Page, *, unread_only: bool = False
) -> list[Notification]:
    """The caller's notifications, newest first (none for an integration)."""
    if principal.person_id is None:
        return []
    where = [Notification.person_id == principal.person_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    return await page_of(session, Notification, where=where, order=NEWEST_FIRST, page=page)


async def unread_count(session: AsyncSession, principal: Principal) -> int:
    if principal.person_id is None:
        return 0
    stmt = select(func.count()).where(
        Notification.person_id == principal.person_id, Notification.read_at.is_(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def mark_read(
    session: AsyncSession,
    principal: Principal,
    ids: Sequence[uuid.UUID],
    *,
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Mark the caller's notifications read (already read ones keep their time).
    Any id that is not the caller's own: NotFound, and nothing is marked."""
    person_id = _person_id(principal)
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise ValidationFailed("ids", "Give at least one notification id.", ErrorCode.REQUIRED)
    if len(wanted) > MAX_MARK:
        raise ValidationFailed("ids", f"At most {MAX_MARK} ids per call.", ErrorCode.TOO_MANY)
    own = set(
        (
            await session.execute(
                select(Notification.id).where(
                    Notification.person_id == person_id, Notification.id.in_(wanted)
                )
            )
        ).scalars()
    )
    missing = [i for i in wanted if i not in own]
    if missing:
        raise NotFound("Notification", missing[0])
    await session.execute(
        update(Notification)
        .where(
            Notification.person_id == person_id,
            Notification.id.in_(wanted),
            Notification.read_at.is_(None),
        )
        .values(read_at=now or datetime.now(UTC))
    )
    return wanted


async def preferences_page(
    session: AsyncSession, principal: Principal, page: Page
) -> list[NotificationPreference]:
    """The caller's explicit preferences by kind; the rest follow notify.DEFAULTS."""
    if principal.person_id is None:
        return []
    return await page_of(
        session,
        NotificationPreference,
        where=[NotificationPreference.person_id == principal.person_id],
        order=BY_KIND,
        page=page,
    )


async def set_preference(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: NotificationKind,
    channel: Channel,
    enabled: bool,
) -> NotificationPreference:
    """Turn one kind of notification on or off on one channel, for the caller."""
    person_id = _person_id(principal)
    preference = (
        await session.execute(
            select(NotificationPreference).where(
                NotificationPreference.person_id == person_id,
                NotificationPreference.kind == kind,
                NotificationPreference.channel == channel,
            )
        )
    ).scalar_one_or_none()
    if preference is None:
        preference = NotificationPreference(
            org_id=principal.org_id,
            id=uuid.uuid4(),
            person_id=person_id,
            kind=kind,
            channel=channel,
        )
        session.add(preference)
    preference.enabled = enabled
    await session.flush()
    return preference
