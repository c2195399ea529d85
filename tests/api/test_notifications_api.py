"""Notifications and preferences over GraphQL: each person sees and changes only
their own; another person's or organisation's ids are NotFound."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import String, func
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import Notification, NotificationPreference
from okrgraph.domain.models.enums import NotificationKind
from okrgraph.domain.seed import SeedResult
from okrgraph.schema import schema
from okrgraph.schema.node import to_global_id
from tests.api.roles import Cast, cast, column, count, other_org, person_of
from tests.factories import make_kpi, make_notification, make_token
from tests.gql import data, gql

LIST = """query($unread: Boolean, $first: Int, $after: String) {
  notifications(unreadOnly: $unread, first: $first, after: $after) {
    nodes { id kind title readAt subjectType subjectId subject { id ... on Kpi { name } } }
    pageInfo { hasNextPage endCursor }
  }
  unreadNotificationCount
}"""
MARK = """mutation($ids: [ID!]!, $key: String) {
  markNotificationsRead(ids: $ids, idempotencyKey: $key) {
    __typename
    ... on MarkNotificationsReadSuccess { unreadCount notifications { id readAt } }
    ... on UserError { message }
    ... on ValidationError { field }
  }
}"""
SET = """mutation($kind: NotificationKind!, $channel: Channel!, $enabled: Boolean!) {
  setNotificationPreference(kind: $kind, channel: $channel, enabled: $enabled) {
    __typename
    ... on NotificationPreferenceSuccess { preference { id kind channel enabled } }
    ... on UserError { message }
    ... on ValidationError { field }
  }
}"""
PREFERENCES = "{ notificationPreferences { nodes { kind channel enabled } } }"


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


def gid(type_name: str, id: uuid.UUID) -> str:
    return str(to_global_id(type_name, id))


async def inbox(db: AsyncSession, people: Cast) -> dict[str, list[uuid.UUID]]:
    """Member: 3 notifications (1 read), lead: 2 unread."""
    await set_tenant(db, people.org_id)
    now = datetime.now(UTC)
    out: dict[str, list[uuid.UUID]] = {"member": [], "lead": []}
    for i in range(3):
        row = await make_notification(
            db,
            people.org_id,
            person_id=people.member_id,
            title=f"member {i}",
            created_at=now - timedelta(minutes=i),
            read_at=now if i == 2 else None,
        )
        out["member"].append(row.id)
    for i in range(2):
        row = await make_notification(
            db, people.org_id, person_id=people.lead_id, title=f"lead {i}"
        )
        out["lead"].append(row.id)
    return out


async def mark(client: httpx.AsyncClient, token: str, ids: list[str], **kw: Any) -> Any:
    return (await data(client, token, MARK, ids=ids, **kw))["markNotificationsRead"]


async def unread(db: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID) -> int:
    return await count(
        db,
        org_id,
        Notification,
        Notification.person_id == person_id,
        Notification.read_at.is_(None),
    )


async def test_people_see_only_their_own_notifications(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ids = await inbox(db, people)
    mine = await data(client, people.tokens["member"], LIST)
    titles = [n["title"] for n in mine["notifications"]["nodes"]]
    assert titles == ["member 0", "member 1", "member 2"]  # newest first
    assert mine["unreadNotificationCount"] == 2
    unread_only = await data(client, people.tokens["member"], LIST, unread=True)
    assert [n["title"] for n in unread_only["notifications"]["nodes"]] == ["member 0", "member 1"]
    lead = await data(client, people.tokens["lead"], LIST)
    assert {n["id"] for n in lead["notifications"]["nodes"]} == {
        gid("Notification", i) for i in ids["lead"]
    }
    # Admins get no special view of other people's inboxes.
    admin = await data(client, people.tokens["admin"], LIST)
    assert not {n["id"] for n in admin["notifications"]["nodes"]} & {
        gid("Notification", i) for i in ids["member"] + ids["lead"]
    }
    ci = await data(client, people.tokens["integration"], LIST)
    assert ci["notifications"]["nodes"] == []
    assert ci["unreadNotificationCount"] == 0


async def test_notifications_page(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await inbox(db, people)
    first = await data(client, people.tokens["member"], LIST, first=2)
    assert [n["title"] for n in first["notifications"]["nodes"]] == ["member 0", "member 1"]
    assert first["notifications"]["pageInfo"]["hasNextPage"] is True
    cursor = first["notifications"]["pageInfo"]["endCursor"]
    rest = await data(client, people.tokens["member"], LIST, first=2, after=cursor)
    assert [n["title"] for n in rest["notifications"]["nodes"]] == ["member 2"]
    assert rest["notifications"]["pageInfo"]["hasNextPage"] is False


async def test_subject_is_a_global_id_when_resolvable(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    kpi = await make_kpi(db, people.org_id, name="Uptime")
    now = datetime.now(UTC)
    await make_notification(
        db,
        people.org_id,
        person_id=people.member_id,
        kind="KPI_CRITICAL",
        subject_type="KPI",
        subject_id=kpi.id,
        created_at=now,
    )
    gone = uuid.uuid4()
    await make_notification(
        db,
        people.org_id,
        person_id=people.member_id,
        subject_type="CYCLE",
        subject_id=gone,
        created_at=now - timedelta(hours=1),
    )
    nodes = (await data(client, people.tokens["member"], LIST))["notifications"]["nodes"]
    assert nodes[0]["subjectId"] == gid("Kpi", kpi.id)
    assert nodes[0]["subject"] == {"id": gid("Kpi", kpi.id), "name": "Uptime"}
    assert nodes[0]["kind"] == "KPI_CRITICAL"
    assert nodes[1]["subjectType"] == "CYCLE"
    assert nodes[1]["subjectId"] == gid("Cycle", gone)
    assert nodes[1]["subject"] is None  # gone


@pytest.mark.parametrize("role", ["member", "lead", "admin"])
async def test_everyone_marks_their_own_notifications_read(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    """With a `write` token (a VIEWER's too: tests/api/security/test_permissions_matrix.py)."""
    me = await person_of(db, people.org_id, people.tokens[role])
    await set_tenant(db, people.org_id)
    row = await make_notification(db, people.org_id, person_id=me)
    result = await mark(client, people.tokens[role], [gid("Notification", row.id)])
    assert result["__typename"] == "MarkNotificationsReadSuccess", result
    assert result["notifications"][0]["readAt"] is not None
    assert await unread(db, people.org_id, me) == 0


@pytest.mark.parametrize("role", ["viewer", "read_only_admin"])
async def test_read_only_tokens_mark_nothing_read(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str
) -> None:
    me = await person_of(db, people.org_id, people.tokens[role])
    await set_tenant(db, people.org_id)
    row = await make_notification(db, people.org_id, person_id=me)
    result = await mark(client, people.tokens[role], [gid("Notification", row.id)])
    assert result["__typename"] == "Forbidden", result
    assert await unread(db, people.org_id, me) == 1


async def test_marking_others_notifications_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ids = await inbox(db, people)
    member = people.tokens["member"]
    own, foreign = gid("Notification", ids["member"][0]), gid("Notification", ids["lead"][0])
    for bad, typename, field in [
        ([own, foreign], "NotFound", None),
        ([gid("Notification", uuid.uuid4())], "NotFound", None),
        ([own, gid("Kpi", uuid.uuid4())], "ValidationError", "ids.1"),
        (["junk"], "ValidationError", "ids.0"),
        ([], "ValidationError", "ids"),
        ([gid("Notification", uuid.uuid4()) for _ in range(101)], "ValidationError", "ids"),
    ]:
        result = await mark(client, member, bad)
        assert result["__typename"] == typename, (bad[:2], result)
        assert result.get("field") == field
    assert await unread(db, people.org_id, people.member_id) == 2
    assert await unread(db, people.org_id, people.lead_id) == 2
    refused = await mark(client, people.tokens["integration"], [own])
    assert refused["__typename"] == "Forbidden"
    assert await unread(db, people.org_id, people.member_id) == 2


async def test_marking_again_keeps_the_first_read_time(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ids = await inbox(db, people)
    read_before = await column(
        db, people.org_id, Notification.read_at, Notification.id == ids["member"][2]
    )
    all_mine = [gid("Notification", i) for i in ids["member"]]
    result = await mark(client, people.tokens["member"], all_mine)
    assert result["unreadCount"] == 0
    assert len(result["notifications"]) == 3
    again = await mark(client, people.tokens["member"], all_mine, key="m-1")
    assert again["unreadCount"] == 0
    replay = await mark(client, people.tokens["member"], all_mine, key="m-1")
    assert replay == again
    assert (
        await column(db, people.org_id, Notification.read_at, Notification.id == ids["member"][2])
        == read_before
    )


async def test_node_shows_a_notification_only_to_its_recipient(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ids = await inbox(db, people)
    query = "query($id: ID!) { node(id: $id) { id ... on Notification { title } } }"
    id = gid("Notification", ids["member"][0])
    assert (await data(client, people.tokens["member"], query, id=id))["node"] is not None
    for role in ("lead", "admin", "integration"):
        assert (await data(client, people.tokens[role], query, id=id))["node"] is None, role


async def test_preferences_are_personal(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    org = people.org_id
    _, viewer_write = await make_token(
        db, org, person_id=people.viewer_id, scopes=["read", "write"]
    )
    # a read-only token may not (test_read_only_tokens_mark_nothing_read); a VIEWER's
    # `write` token may
    for token in (people.tokens["member"], viewer_write):
        off = (
            await data(
                client,
                token,
                SET,
                kind="CHECK_IN_DUE",
                channel="EMAIL",
                enabled=False,
            )
        )["setNotificationPreference"]
        assert off["__typename"] == "NotificationPreferenceSuccess", off
        assert off["preference"]["enabled"] is False
    again = (
        await data(
            client, people.tokens["member"], SET, kind="CHECK_IN_DUE", channel="EMAIL", enabled=True
        )
    )["setNotificationPreference"]
    assert again["preference"]["enabled"] is True
    mine = NotificationPreference.person_id == people.member_id
    assert await count(db, org, NotificationPreference, mine) == 1
    listed = await data(client, people.tokens["member"], PREFERENCES)
    assert listed["notificationPreferences"]["nodes"] == [
        {"kind": "CHECK_IN_DUE", "channel": "EMAIL", "enabled": True}
    ]
    viewer = NotificationPreference.person_id == people.viewer_id
    assert await column(db, org, NotificationPreference.enabled, viewer) is False
    lead = await data(client, people.tokens["lead"], PREFERENCES)
    assert lead["notificationPreferences"]["nodes"] == []


async def test_bad_preferences_change_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, NotificationPreference)
    for kind in ("", "has space", "x" * 65, "DIGEST", "check_in_due"):  # not a NotificationKind
        body = await gql(
            client, people.tokens["member"], SET, kind=kind, channel="SLACK", enabled=False
        )
        assert body.get("data") is None, kind
        assert "NotificationKind" in body["errors"][0]["message"], body
    refused = (
        await data(
            client,
            people.tokens["integration"],
            SET,
            kind="WEEKLY_DIGEST",
            channel="SLACK",
            enabled=False,
        )
    )["setNotificationPreference"]
    assert refused["__typename"] == "Forbidden"
    assert await count(db, people.org_id, NotificationPreference) == before


async def test_another_org_cannot_read_or_mark_our_notifications(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ids = await inbox(db, people)
    other, attacker = await other_org(db)
    own = [gid("Notification", i) for i in ids["member"]]
    result = await mark(client, attacker, own[:1])
    assert result["__typename"] == "NotFound"
    listed = await data(client, attacker, LIST)
    assert listed["notifications"]["nodes"] == []
    node = await data(client, attacker, "query($id: ID!) { node(id: $id) { id } }", id=own[0])
    assert node["node"] is None
    assert await unread(db, people.org_id, people.member_id) == 2
    assert await count(db, other, Notification) == 0


async def test_every_notification_kind_is_documented_and_can_be_set(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    """Kinds are one enum (domain NotificationKind), documented value by value, and a
    preference of each is stored as that kind."""
    enum = schema._schema.type_map["NotificationKind"]
    assert set(enum.values) == {k.name for k in NotificationKind}  # type: ignore[attr-defined]
    assert all(len(v.description or "") > 10 for v in enum.values.values())  # type: ignore[attr-defined]
    for kind in NotificationKind:
        result = (
            await data(
                client, people.tokens["member"], SET, kind=kind.name, channel="EMAIL", enabled=False
            )
        )["setNotificationPreference"]
        assert result["preference"]["kind"] == kind.name, result
    stored = await column(
        db,
        people.org_id,
        func.array_agg(sql_cast(NotificationPreference.kind, String)),
        NotificationPreference.person_id == people.member_id,
    )
    assert sorted(stored) == sorted(k.name for k in NotificationKind)  # the stored spelling
