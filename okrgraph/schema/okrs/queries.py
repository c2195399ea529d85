from __future__ import annotations

import strawberry

from okrgraph.domain.graph.queries import page_of
from okrgraph.domain.models import Cycle as CycleRow
from okrgraph.domain.objectives.queries import list_objectives
from okrgraph.schema.context import Info
from okrgraph.schema.enums import Level, ObjectiveState, Status
from okrgraph.schema.errors import ClientError
from okrgraph.schema.node import expect_id
from okrgraph.schema.okrs.types import BY_CREATED, BY_START, Cycle, Objective
from okrgraph.schema.pagination import Connection, build_connection, page_args
from okrgraph.schema.permissions import CanRead


@strawberry.input(description="Objectives matching every field given.")
class ObjectiveFilter:
    cycle_id: strawberry.ID | None = strawberry.field(default=None, description="In this cycle.")
    level: Level | None = strawberry.field(default=None, description="At this level.")
    owner_team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owned by this team."
    )
    owner_person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owned by this person."
    )
    status: Status | None = strawberry.field(default=None, description="With this pace health.")
    state: ObjectiveState | None = strawberry.field(default=None, description="In this state.")


def _id(value: strawberry.ID | None, type_name: str, field: str) -> object:
    if value is None:
        return None
    parsed = expect_id(value, type_name)
    if parsed is None:
        raise ClientError(f"`filter.{field}` is not a {type_name} id.")
    return parsed


@strawberry.type
class OkrQueries:
    @strawberry.field(permission_classes=[CanRead], description="Objectives, filtered.")
    async def objectives(
        self,
        info: Info,
        filter: ObjectiveFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Objective]:
        f = filter or ObjectiveFilter()
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await list_objectives(
                session,
                page=page,
                order=BY_CREATED,
                cycle_id=_id(f.cycle_id, "Cycle", "cycleId"),  # type: ignore[arg-type]
                level=f.level,
                owner_team_id=_id(f.owner_team_id, "Team", "ownerTeamId"),  # type: ignore[arg-type]
                owner_person_id=_id(f.owner_person_id, "Person", "ownerPersonId"),  # type: ignore[arg-type]
                status=f.status,
                state=f.state,
            )
        return build_connection(rows, page, BY_CREATED, Objective.from_row)

    @strawberry.field(permission_classes=[CanRead], description="Cycles, latest start first.")
    async def cycles(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Cycle]:
        page = page_args(first, after)
        async with info.context.db() as session:
            rows = await page_of(session, CycleRow, order=BY_START, page=page)
        return build_connection(rows, page, BY_START, Cycle.from_row)
