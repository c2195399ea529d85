"""Organisation, teams (nested), people and memberships."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from okrgraph.domain.graph.queries import Order
from okrgraph.domain.models import Membership as MembershipRow
from okrgraph.domain.models import Organization as OrganizationRow
from okrgraph.domain.models import Person as PersonRow
from okrgraph.domain.models import Team as TeamRow
from okrgraph.schema.context import Info
from okrgraph.schema.enums import OrgRole, TeamRole
from okrgraph.schema.node import Node, node_kind, to_global_id
from okrgraph.schema.pagination import (
    Connection,
    build_connection,
    children_connection,
    page_args,
)
from okrgraph.schema.permissions import IsAdmin

if TYPE_CHECKING:
    from okrgraph.schema.okrs.types import Objective

ObjectiveRef = Annotated["Objective", strawberry.lazy("okrgraph.schema.okrs.types")]
BY_NAME = Order("name")


@node_kind(OrganizationRow)
@strawberry.type(description="The tenant: one company and its whole goal graph.")
class Organization(Node):
    row: strawberry.Private[OrganizationRow]
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Unique short name.")
    timezone: str = strawberry.field(description="IANA time zone cycles are reckoned in.")
    reminder_cadence_days: int = strawberry.field(description="Days between check-in reminders.")

    @classmethod
    def from_row(cls, row: OrganizationRow) -> Organization:
        return cls(
            id=to_global_id("Organization", row.id),
            row=row,
            name=row.name,
            slug=row.slug,
            timezone=row.timezone,
            reminder_cadence_days=row.reminder_cadence_days,
        )

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Whether webhook URLs may point at loopback, private and link-local "
        "addresses (setWebhookPolicy). Admins only: null with a FORBIDDEN error for others.",
    )
    def allow_private_webhook_urls(self) -> bool | None:
        return self.row.allow_private_webhook_urls

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Whether a Slack-style incoming webhook is set (setSlackWebhook); its URL "
        "is never shown. Admins only: null with a FORBIDDEN error for others.",
    )
    def slack_webhook_configured(self) -> bool | None:
        return self.row.slack_webhook_sealed is not None

    @strawberry.field(description="Teams; top-level ones only unless `all` is true.")
    async def teams(
        self, info: Info, first: int | None = None, after: str | None = None, all: bool = False
    ) -> Connection[Team]:
        page = page_args(first, after)
        loader = info.context.loaders.by_parent(
            TeamRow,
            "org_id",
            order=BY_NAME,
            page=page,
            filters=() if all else (("parent_team_id", "is null", None),),
        )
        rows = await loader.load(self.row.id)
        return build_connection(rows, page, BY_NAME, Team.from_row)

    @strawberry.field(description="Everyone in the organisation.")
    async def people(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Person]:
        return await children_connection(
            info, PersonRow, "org_id", self.row.id, first, after, BY_NAME, Person.from_row
        )


@node_kind(TeamRow)
@strawberry.type(description="A team; teams nest (company > department > squad).")
class Team(Node):
    row: strawberry.Private[TeamRow]
    name: str = strawberry.field(description="Team name.")
    description: str = strawberry.field(description="What the team does.")
    archived_at: datetime | None = strawberry.field(description="Set when archived.")

    @classmethod
    def from_row(cls, row: TeamRow) -> Team:
        return cls(
            id=to_global_id("Team", row.id),
            row=row,
            name=row.name,
            description=row.description,
            archived_at=row.archived_at,
        )

    @strawberry.field(description="The team this one belongs to.")
    async def parent(self, info: Info) -> Team | None:
        if self.row.parent_team_id is None:
            return None
        row = await info.context.loaders.by_id(TeamRow).load(self.row.parent_team_id)
        return Team.from_row(row) if row else None

    @strawberry.field(description="Teams directly under this one.")
    async def children(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Team]:
        return await children_connection(
            info, TeamRow, "parent_team_id", self.row.id, first, after, BY_NAME, Team.from_row
        )

    @strawberry.field(description="Members with their role in the team.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        return await children_connection(
            info, MembershipRow, "team_id", self.row.id, first, after, Order(), Membership.from_row
        )

    @strawberry.field(description="Objectives the team owns, optionally in one cycle.")
    async def objectives(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        cycle_id: strawberry.ID | None = None,
    ) -> Connection[ObjectiveRef]:
        from okrgraph.schema.okrs.types import objectives_of

        return await objectives_of(info, "owner_team_id", self.row.id, first, after, cycle_id)


@node_kind(PersonRow)
@strawberry.type(description="A member of the organisation.")
class Person(Node):
    row: strawberry.Private[PersonRow]
    name: str = strawberry.field(description="Full name.")
    email: str = strawberry.field(description="E-mail address.")
    org_role: OrgRole = strawberry.field(description="ADMIN, MEMBER or VIEWER.")
    archived_at: datetime | None = strawberry.field(description="Set when archived.")

    @classmethod
    def from_row(cls, row: PersonRow) -> Person:
        return cls(
            id=to_global_id("Person", row.id),
            row=row,
            name=row.name,
            email=row.email,
            org_role=row.org_role,
            archived_at=row.archived_at,
        )

    @strawberry.field(description="Teams the person belongs to, with their role.")
    async def memberships(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Membership]:
        return await children_connection(
            info,
            MembershipRow,
            "person_id",
            self.row.id,
            first,
            after,
            Order(),
            Membership.from_row,
        )

    @strawberry.field(description="Objectives the person owns, optionally in one cycle.")
    async def objectives(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        cycle_id: strawberry.ID | None = None,
    ) -> Connection[ObjectiveRef]:
        from okrgraph.schema.okrs.types import objectives_of

        return await objectives_of(info, "owner_person_id", self.row.id, first, after, cycle_id)


@node_kind(MembershipRow)
@strawberry.type(description="A person's place in a team.")
class Membership(Node):
    row: strawberry.Private[MembershipRow]
    role: TeamRole = strawberry.field(description="LEAD or MEMBER.")

    @classmethod
    def from_row(cls, row: MembershipRow) -> Membership:
        return cls(id=to_global_id("Membership", row.id), row=row, role=row.role)

    @strawberry.field(description="The team.")
    async def team(self, info: Info) -> Team:
        return Team.from_row(await info.context.loaders.by_id(TeamRow).load(self.row.team_id))

    @strawberry.field(description="The person.")
    async def person(self, info: Info) -> Person:
        row = await info.context.loaders.by_id(PersonRow).load(self.row.person_id)
        return Person.from_row(row)


@strawberry.type(description="The caller: the token's person or integration.")
class Viewer:
    person: Person | None = strawberry.field(description="The person the token belongs to.")
    integration_name: str | None = strawberry.field(description="Or the integration's name.")
    scopes: list[str] = strawberry.field(description="The token's scopes.")
    organization: Organization = strawberry.field(description="The caller's organisation.")
