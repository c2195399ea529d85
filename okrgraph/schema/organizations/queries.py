from __future__ import annotations

import strawberry

from okrgraph.domain.organizations import queries
from okrgraph.schema.context import Info
from okrgraph.schema.organizations.types import Organization, Person, Viewer
from okrgraph.schema.permissions import CanRead, require_principal


@strawberry.type
class OrganizationQueries:
    @strawberry.field(permission_classes=[CanRead], description="The caller's organisation.")
    async def organization(self, info: Info) -> Organization:
        async with info.context.db() as session:
            org = await queries.current_organization(session)
        return Organization.from_row(org)

    @strawberry.field(permission_classes=[CanRead], description="Who is calling.")
    async def viewer(self, info: Info) -> Viewer:
        principal = require_principal(info)
        async with info.context.db() as session:
            org = await queries.current_organization(session)
            person = None
            if principal.person_id:
                person = await queries.person(session, principal.org_id, principal.person_id)
        return Viewer(
            person=Person.from_row(person) if person else None,
            integration_name=principal.integration_name,
            scopes=sorted(principal.scopes),
            organization=Organization.from_row(org),
        )
