"""API tokens over GraphQL: who may create and revoke which, a revoked token's 401,
the secret shown once, and no token of another person or organisation in sight."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import ApiToken, AuditEntry, Person
from okrgraph.domain.models.enums import OrgRole
from okrgraph.domain.seed import SeedResult
from okrgraph.schema.node import to_global_id
from tests.api.roles import Cast, cast, column, count, other_org
from tests.factories import make_person, make_token
from tests.gql import data

CREATE = """mutation($input: CreateApiTokenInput!, $key: String) {
  createApiToken(input: $input, idempotencyKey: $key) {
    __typename
    ... on CreateApiTokenSuccess {
      secret token { id name prefix scopes integrationName revokedAt person { id } }
    }
    ... on UserError { message }
    ... on ValidationError { field }
  }
}"""
REVOKE = """mutation($id: ID!) { revokeApiToken(id: $id) {
  __typename ... on ApiTokenSuccess { token { id revokedAt } } ... on UserError { message } } }"""
LIST = """query($all: Boolean) { apiTokens(first: 100, includeRevoked: $all) {
  nodes { id name person { id } integrationName } } }"""
WHOAMI = "{ viewer { scopes person { email } integrationName } }"


@pytest.fixture
async def people(db: AsyncSession, demo: SeedResult) -> Cast:
    assert demo.admin_token is not None
    return await cast(db, demo.org_id, demo.admin_token)


def gid(type_name: str, id: uuid.UUID) -> str:
    return str(to_global_id(type_name, id))


async def create(
    client: httpx.AsyncClient, token: str, key: str | None = None, **input: Any
) -> dict[str, Any]:
    input.setdefault("name", "laptop")
    result: dict[str, Any] = (await data(client, token, CREATE, input=input, key=key))[
        "createApiToken"
    ]
    return result


async def token_id(db: AsyncSession, org_id: uuid.UUID, secret: str) -> uuid.UUID:
    found: uuid.UUID = await column(db, org_id, ApiToken.id, ApiToken.prefix == secret[:10])
    return found


@pytest.mark.parametrize(
    ("role", "scopes", "outcome"),
    [
        ("viewer", ["read"], "Forbidden"),  # a read-only token writes nothing
        ("viewer", ["read", "write"], "Forbidden"),  # wider than the calling token
        ("member", ["read", "write"], "CreateApiTokenSuccess"),
        ("member", ["admin"], "Forbidden"),  # wider than the token (and the role)
        ("lead", ["read"], "CreateApiTokenSuccess"),
        ("read_only_admin", ["read"], "Forbidden"),
        ("read_only_admin", ["read", "write"], "Forbidden"),
        ("admin", ["read", "write", "admin"], "CreateApiTokenSuccess"),
        ("integration", ["read"], "Forbidden"),  # integrations have no self
    ],
)
async def test_who_may_create_a_token_for_themselves(
    client: httpx.AsyncClient,
    db: AsyncSession,
    people: Cast,
    role: str,
    scopes: list[str],
    outcome: str,
) -> None:
    before = await count(db, people.org_id, ApiToken)
    result = await create(client, people.tokens[role], scopes=scopes)
    assert result["__typename"] == outcome, result
    if outcome != "CreateApiTokenSuccess":
        assert await count(db, people.org_id, ApiToken) == before
        return
    secret = result["secret"]
    assert secret.startswith("okr_")
    assert result["token"]["prefix"] == secret[:10]
    assert result["token"]["scopes"] == sorted(scopes)
    assert await count(db, people.org_id, ApiToken) == before + 1
    # The new secret works, as the same person, with exactly its scopes.
    me = await data(client, people.tokens[role], WHOAMI)
    mine = await data(client, secret, WHOAMI)
    assert mine["viewer"]["person"] == me["viewer"]["person"]
    assert mine["viewer"]["scopes"] == sorted(scopes)
    # The secret is stored only as its hash.
    stored = await column(db, people.org_id, ApiToken.token_hash, ApiToken.prefix == secret[:10])
    assert secret not in stored
    assert len(stored) == 64


@pytest.mark.parametrize(
    ("role", "outcome"),
    [
        ("admin", "CreateApiTokenSuccess"),
        ("lead", "Forbidden"),
        ("member", "Forbidden"),
        ("viewer", "Forbidden"),
        ("read_only_admin", "Forbidden"),
        ("integration", "Forbidden"),
    ],
)
async def test_only_admins_create_tokens_for_others_and_integrations(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, role: str, outcome: str
) -> None:
    await set_tenant(db, people.org_id)
    someone = await make_person(db, people.org_id, role=OrgRole.MEMBER)
    before = await count(db, people.org_id, ApiToken)
    for_member = await create(
        client, people.tokens[role], scopes=["read"], personId=gid("Person", someone.id)
    )
    for_ci = await create(client, people.tokens[role], scopes=["read"], integrationName="etl")
    assert for_member["__typename"] == outcome
    assert for_ci["__typename"] == outcome
    created = 2 if outcome == "CreateApiTokenSuccess" else 0
    assert await count(db, people.org_id, ApiToken) == before + created
    if created:
        assert for_ci["token"]["integrationName"] == "etl"
        assert for_ci["token"]["person"] is None
        assert for_member["token"]["person"]["id"] == gid("Person", someone.id)


async def test_bad_token_input_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    await set_tenant(db, people.org_id)
    archived = await make_person(db, people.org_id, archived_at=datetime.now(UTC))
    before = await count(db, people.org_id, ApiToken)
    admin = people.tokens["admin"]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"name": " ", "scopes": ["read"]}, "ValidationError", "input.name"),
        ({"scopes": []}, "ValidationError", "input.scopes"),
        ({"scopes": ["read", "root"]}, "ValidationError", "input.scopes"),
        ({"scopes": ["read"], "expiresAt": past}, "ValidationError", "input.expiresAt"),
        (
            {"scopes": ["read"], "integrationName": "x", "personId": gid("Person", people.lead_id)},
            "ValidationError",
            "input.integrationName",
        ),
        ({"scopes": ["read"], "personId": "garbage"}, "ValidationError", "input.personId"),
        (
            {"scopes": ["admin"], "personId": gid("Person", people.member_id)},
            "ValidationError",
            "input.scopes",
        ),
        (
            {"scopes": ["read"], "personId": gid("Person", archived.id)},
            "ValidationError",
            "input.personId",
        ),
        ({"scopes": ["read"], "personId": gid("Person", uuid.uuid4())}, "NotFound", None),
    ]
    for input, typename, field in cases:
        result = await create(client, admin, **input)
        assert result["__typename"] == typename, (input, result)
        assert result.get("field") == field
    assert await count(db, people.org_id, ApiToken) == before
    assert await count(db, people.org_id, AuditEntry, AuditEntry.action == "api_token.created") == 0


async def test_secret_is_shown_once_even_on_an_idempotent_replay(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    before = await count(db, people.org_id, ApiToken)
    first = await create(client, people.tokens["member"], key="t-1", scopes=["read"])
    again = await create(client, people.tokens["member"], key="t-1", scopes=["read"])
    assert first["secret"].startswith("okr_")
    assert again["__typename"] == "CreateApiTokenSuccess"
    assert again["secret"] is None
    assert again["token"] == first["token"]
    assert await count(db, people.org_id, ApiToken) == before + 1


async def test_a_revoked_token_gets_401_on_its_next_request(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    created = await create(client, people.tokens["member"], scopes=["read", "write"])
    secret = created["secret"]
    ok = await client.post(
        "/graphql", json={"query": WHOAMI}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert ok.status_code == 200
    assert "errors" not in ok.json()
    # Revoked with the token itself: the request that revokes it still succeeds.
    revoked = (await data(client, secret, REVOKE, id=created["token"]["id"]))["revokeApiToken"]
    assert revoked["__typename"] == "ApiTokenSuccess"
    assert revoked["token"]["revokedAt"] is not None
    refused = await client.post(
        "/graphql", json={"query": WHOAMI}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert refused.status_code == 401
    body = refused.json()
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revokeApiToken" not in refused.text


@pytest.mark.parametrize(
    ("revoker", "outcome"),
    [
        ("member", "ApiTokenSuccess"),  # their own
        ("admin", "ApiTokenSuccess"),
        ("lead", "NotFound"),  # not theirs, and they may not even see it
        ("viewer", "NotFound"),
        ("read_only_admin", "NotFound"),
        ("integration", "NotFound"),
    ],
)
async def test_who_may_revoke_a_token(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast, revoker: str, outcome: str
) -> None:
    target = await token_id(db, people.org_id, people.tokens["member"])
    result = (await data(client, people.tokens[revoker], REVOKE, id=gid("ApiToken", target)))[
        "revokeApiToken"
    ]
    assert result["__typename"] == outcome
    revoked_at = await column(db, people.org_id, ApiToken.revoked_at, ApiToken.id == target)
    assert (revoked_at is not None) == (outcome == "ApiTokenSuccess")


async def test_a_narrow_token_cannot_revoke_a_wider_one(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    _, reader = await make_token(db, people.org_id, person_id=people.member_id, scopes=["read"])
    writer = await token_id(db, people.org_id, people.tokens["member"])
    result = (await data(client, reader, REVOKE, id=gid("ApiToken", writer)))["revokeApiToken"]
    assert result["__typename"] == "Forbidden"
    assert await column(db, people.org_id, ApiToken.revoked_at, ApiToken.id == writer) is None
    assert (
        "errors"
        not in (
            await client.post(
                "/graphql",
                json={"query": WHOAMI},
                headers={"Authorization": f"Bearer {people.tokens['member']}"},
            )
        ).json()
    )


async def test_revoking_twice_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    target = gid("ApiToken", await token_id(db, people.org_id, people.tokens["lead"]))
    first = (await data(client, people.tokens["admin"], REVOKE, id=target))["revokeApiToken"]
    again = (await data(client, people.tokens["admin"], REVOKE, id=target))["revokeApiToken"]
    assert first == again
    revocations = AuditEntry.action == "api_token.revoked"
    assert await count(db, people.org_id, AuditEntry, revocations) == 1


async def test_admins_list_every_token_others_their_own(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    # A second token of the member, then one revoked.
    _, extra = await make_token(db, people.org_id, person_id=people.member_id, scopes=["read"])
    await set_tenant(db, people.org_id)
    dead = await make_token(db, people.org_id, person_id=people.member_id)
    dead[0].revoked_at = datetime.now(UTC)
    await db.flush()
    live = await count(db, people.org_id, ApiToken, ApiToken.revoked_at.is_(None))

    everyone = (await data(client, people.tokens["admin"], LIST))["apiTokens"]["nodes"]
    assert len(everyone) == live
    assert any(t["integrationName"] == "ci" for t in everyone)

    mine = (await data(client, people.tokens["member"], LIST))["apiTokens"]["nodes"]
    assert len(mine) == 2
    assert {t["person"]["id"] for t in mine} == {gid("Person", people.member_id)}
    with_revoked = (await data(client, extra, LIST, all=True))["apiTokens"]["nodes"]
    assert len(with_revoked) == 3

    ci = (await data(client, people.tokens["integration"], LIST))["apiTokens"]["nodes"]
    assert [t["integrationName"] for t in ci] == ["ci"]


async def test_node_shows_a_token_only_to_its_holder_and_admins(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    target = gid("ApiToken", await token_id(db, people.org_id, people.tokens["member"]))
    query = "query($id: ID!) { node(id: $id) { id ... on ApiToken { name } } }"
    for role, visible in [("member", True), ("admin", True), ("lead", False), ("viewer", False)]:
        node = (await data(client, people.tokens[role], query, id=target))["node"]
        assert (node is not None) == visible, role


async def test_the_hash_is_not_in_the_schema(client: httpx.AsyncClient, people: Cast) -> None:
    fields = await data(
        client, people.tokens["admin"], '{ __type(name: "ApiToken") { fields { name } } }'
    )
    names = {f["name"] for f in fields["__type"]["fields"]}
    assert "prefix" in names
    assert not {n for n in names if "hash" in n.lower() or "secret" in n.lower()}


async def test_another_org_cannot_see_or_revoke_our_tokens(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    ours = await token_id(db, people.org_id, people.tokens["member"])
    other, attacker = await other_org(db)
    revoke = (await data(client, attacker, REVOKE, id=gid("ApiToken", ours)))["revokeApiToken"]
    assert revoke["__typename"] == "NotFound"
    minted = await create(
        client, attacker, scopes=["read"], personId=gid("Person", people.member_id)
    )
    assert minted["__typename"] == "NotFound"
    listed = (await data(client, attacker, LIST, all=True))["apiTokens"]["nodes"]
    assert len(listed) == 1  # the attacker's own
    node = await data(
        client, attacker, "query($id: ID!) { node(id: $id) { id } }", id=gid("ApiToken", ours)
    )
    assert node["node"] is None
    assert await column(db, people.org_id, ApiToken.revoked_at, ApiToken.id == ours) is None
    assert await count(db, people.org_id, ApiToken, ApiToken.person_id == people.member_id) == 1
    still = await data(client, people.tokens["member"], WHOAMI)
    assert still["viewer"]["person"] is not None
    assert await count(db, other, Person, Person.org_role == OrgRole.ADMIN) == 1


async def test_a_read_only_token_may_revoke_itself_and_nothing_else(
    client: httpx.AsyncClient, db: AsyncSession, people: Cast
) -> None:
    member = people.member_id
    sibling = await create(client, people.tokens["member"], scopes=["read"])
    _, read_only = await make_token(db, people.org_id, scopes=["read"], person_id=member)
    own_id = to_global_id("ApiToken", await token_id(db, people.org_id, read_only))
    other = (await data(client, read_only, REVOKE, id=sibling["token"]["id"]))["revokeApiToken"]
    assert other["__typename"] == "Forbidden"
    own = (await data(client, read_only, REVOKE, id=own_id))["revokeApiToken"]
    assert own["__typename"] == "ApiTokenSuccess"
    assert own["token"]["revokedAt"] is not None
