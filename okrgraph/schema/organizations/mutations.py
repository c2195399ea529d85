"""Writes of teams, people and memberships, and the organisation's Slack webhook."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.notifications import slack
from okrgraph.domain.organizations import service
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.enums import OrgRole, TeamRole
from okrgraph.schema.node import input_kwargs, parse_id, parse_optional_id
from okrgraph.schema.organizations.types import Membership, Organization, Person, Team
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.type(description="The team after the change.")
class TeamSuccess:
    team: Team = strawberry.field(description="The team.")


@strawberry.type(description="The person after the change.")
class PersonSuccess:
    person: Person = strawberry.field(description="The person.")


@strawberry.type(description="The membership after the change.")
class MembershipSuccess:
    membership: Membership = strawberry.field(description="The membership.")


@strawberry.type(description="The organisation after the change.")
class OrganizationSuccess:
    organization: Organization = strawberry.field(description="The organisation.")


@strawberry.type(description="The id of what was removed.")
class RemovedSuccess:
    removed_id: strawberry.ID = strawberry.field(description="Global id of the removed object.")


TeamResult = Annotated[
    TeamSuccess | UserErrors,
    strawberry.union("TeamResult", description="TeamSuccess or a user error."),
]
PersonResult = Annotated[
    PersonSuccess | UserErrors,
    strawberry.union("PersonResult", description="PersonSuccess or a user error."),
]
MembershipResult = Annotated[
    MembershipSuccess | UserErrors,
    strawberry.union("MembershipResult", description="MembershipSuccess or a user error."),
]
OrganizationResult = Annotated[
    OrganizationSuccess | UserErrors,
    strawberry.union("OrganizationResult", description="OrganizationSuccess or a user error."),
]
RemovedResult = Annotated[
    RemovedSuccess | UserErrors,
    strawberry.union("RemovedResult", description="RemovedSuccess or a user error."),
]


@strawberry.input(description="A new team.")
class CreateTeamInput:
    name: str = bounds.text("Unique in the organisation.", validation.NAME)
    description: str = bounds.text("What the team does.", validation.LONG_TEXT, default="")
    parent_team_id: strawberry.ID | None = strawberry.field(
        default=None, description="The team it belongs to."
    )


@strawberry.input(description="Changes to a team; omitted fields stay.")
class UpdateTeamInput:
    id: strawberry.ID = strawberry.field(description="The team.")
    name: str | None = bounds.text("New name.", validation.NAME, default=None)
    description: str | None = bounds.text("New description.", validation.LONG_TEXT, default=None)
    parent_team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Move under this team."
    )
    make_top_level: bool = strawberry.field(default=False, description="Detach from its parent.")


@strawberry.input(description="A new member of the organisation.")
class CreatePersonInput:
    name: str = bounds.text("Full name.", validation.NAME)
    email: str = bounds.text("Unique in the organisation.", 320)
    org_role: OrgRole = strawberry.field(default=OrgRole.MEMBER, description="Their role.")


@strawberry.input(description="Changes to a person; omitted fields stay.")
class UpdatePersonInput:
    id: strawberry.ID = strawberry.field(description="The person.")
    name: str | None = bounds.text("New name.", validation.NAME, default=None)
    org_role: OrgRole | None = strawberry.field(default=None, description="New role.")


@strawberry.input(description="Where the organisation's Slack notifications are posted.")
class SetSlackWebhookInput:
    url: str | None = bounds.text(
        "A Slack-style incoming webhook URL: http:// or https://, its host a public address "
        "(URL_NOT_ALLOWED otherwise, unless the organisation allows private URLs: "
        "setWebhookPolicy). Null: no Slack notifications.",
        validation.URL,
        default=None,
    )


@strawberry.input(description="Put a person in a team, or change their role there.")
class SetMembershipInput:
    team_id: strawberry.ID = strawberry.field(description="The team.")
    person_id: strawberry.ID = strawberry.field(description="The person.")
    role: TeamRole = strawberry.field(default=TeamRole.MEMBER, description="LEAD or MEMBER.")


def _team(row: Any) -> TeamSuccess:
    return TeamSuccess(team=Team.from_row(row))


def _person(row: Any) -> PersonSuccess:
    return PersonSuccess(person=Person.from_row(row))


@strawberry.type
class OrganizationMutations:
    @strawberry.mutation(description="Create a team (admins).")
    async def create_team(
        self, info: Info, input: CreateTeamInput, idempotency_key: str | None = None
    ) -> TeamResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.create_team(
                session, principal, **input_kwargs(input, ids={"parent_team_id": "Team"})
            )

        return await run_mutation(info, "createTeam", input, idempotency_key, action, _team)

    @strawberry.mutation(description="Rename, describe or move a team (admins).")
    async def update_team(
        self, info: Info, input: UpdateTeamInput, idempotency_key: str | None = None
    ) -> TeamResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.update_team(
                session,
                principal,
                parse_id(input.id, "Team", "input.id"),
                name=input.name,
                description=input.description,
                parent_team_id=parse_optional_id(
                    input.parent_team_id, "Team", "input.parentTeamId"
                ),
                clear_parent=input.make_top_level,
            )

        return await run_mutation(info, "updateTeam", input, idempotency_key, action, _team)

    @strawberry.mutation(description="Archive a team (admins); its history stays.")
    async def archive_team(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> TeamResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.archive_team(session, principal, parse_id(id, "Team", "id"))

        return await run_mutation(info, "archiveTeam", id, idempotency_key, action, _team)

    @strawberry.mutation(description="Add a person to the organisation (admins).")
    async def create_person(
        self, info: Info, input: CreatePersonInput, idempotency_key: str | None = None
    ) -> PersonResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.create_person(session, principal, **input_kwargs(input))

        return await run_mutation(info, "createPerson", input, idempotency_key, action, _person)

    @strawberry.mutation(description="Rename a person or change their role (admins).")
    async def update_person(
        self, info: Info, input: UpdatePersonInput, idempotency_key: str | None = None
    ) -> PersonResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.update_person(
                session,
                principal,
                parse_id(input.id, "Person", "input.id"),
                **input_kwargs(input, skip={"id"}),
            )

        return await run_mutation(info, "updatePerson", input, idempotency_key, action, _person)

    @strawberry.mutation(
        description="Archive a person (admins); their tokens stop working at once, "
        "over HTTP and websockets alike."
    )
    async def archive_person(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> PersonResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.archive_person(session, principal, parse_id(id, "Person", "id"))

        return await run_mutation(info, "archivePerson", id, idempotency_key, action, _person)

    @strawberry.mutation(description="Put a person in a team or change their role (admins).")
    async def set_membership(
        self, info: Info, input: SetMembershipInput, idempotency_key: str | None = None
    ) -> MembershipResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.set_membership(
                session,
                principal,
                **input_kwargs(input, ids={"team_id": "Team", "person_id": "Person"}),
            )

        return await run_mutation(
            info,
            "setMembership",
            input,
            idempotency_key,
            action,
            lambda row: MembershipSuccess(membership=Membership.from_row(row)),
        )

    @strawberry.mutation(description="Take a person out of a team (admins).")
    async def remove_membership(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> RemovedResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await service.remove_membership(
                session, principal, parse_id(id, "Membership", "id")
            )

        return await run_mutation(
            info,
            "removeMembership",
            id,
            idempotency_key,
            action,
            lambda removed: RemovedSuccess(removed_id=strawberry.ID(str(id))),
        )

    @strawberry.mutation(
        description="Set where Slack notifications are posted: the organisation's Slack-style "
        "incoming webhook (admins). The URL is stored encrypted and never shown again "
        "(Organization.slackWebhookConfigured says whether one is set); null clears it."
    )
    async def set_slack_webhook(
        self, info: Info, input: SetSlackWebhookInput, idempotency_key: str | None = None
    ) -> OrganizationResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await slack.set_slack_webhook(session, principal, input.url)

        return await run_mutation(
            info,
            "setSlackWebhook",
            input,
            idempotency_key,
            action,
            lambda row: OrganizationSuccess(organization=Organization.from_row(row)),
        )
