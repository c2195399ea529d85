"""API tokens as the API shows them: never the secret, never its hash."""

from __future__ import annotations

from datetime import datetime

import strawberry

import okrgraph.schema.enums  # noqa: F401 - registers OrgRole before Person uses it
from okrgraph.domain.auth.service import may_see_token
from okrgraph.domain.models import ApiToken as ApiTokenRow
from okrgraph.domain.models import Person as PersonRow
from okrgraph.schema.context import Info
from okrgraph.schema.node import Node, node_kind, to_global_id
from okrgraph.schema.organizations.types import Person


@node_kind(ApiTokenRow, visible=may_see_token)
@strawberry.type(
    description="A bearer token (`okr_...`) of a person or an integration. Admins see all "
    "tokens, others their own."
)
class ApiToken(Node):
    row: strawberry.Private[ApiTokenRow]
    name: str = strawberry.field(description="What it is for.")
    prefix: str = strawberry.field(
        description="The secret's first characters, to recognise it (e.g. in a scanner's alert)."
    )
    scopes: list[str] = strawberry.field(description="`read`, `write` and/or `admin`.")
    integration_name: str | None = strawberry.field(
        description="The integration it belongs to (else it is a person's)."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    last_used_at: datetime | None = strawberry.field(
        description="When it was last used (to the minute)."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked; it no longer works."
    )
    expires_at: datetime | None = strawberry.field(description="When it stops working.")

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> ApiToken:
        return cls(
            id=to_global_id("ApiToken", row.id),
            row=row,
            name=row.name,
            prefix=row.prefix,
            scopes=list(row.scopes),
            integration_name=row.integration_name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            expires_at=row.expires_at,
        )

    @strawberry.field(description="The person it belongs to (else an integration's).")
    async def person(self, info: Info) -> Person | None:
        if self.row.person_id is None:
            return None
        row = await info.context.loaders.by_id(PersonRow).load(self.row.person_id)
        return Person.from_row(row) if row else None
