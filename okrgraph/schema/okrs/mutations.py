"""Writes of cycles, objectives and alignments."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.cycles import service as cycles
from okrgraph.domain.objectives import reflections
from okrgraph.domain.objectives import service as objectives
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.enums import (
    Cadence,
    CycleState,
    Level,
    ObjectiveDriver,
    ObjectiveState,
    Outcome,
)
from okrgraph.schema.node import input_kwargs, parse_id, parse_optional_id
from okrgraph.schema.okrs.types import Alignment, Cycle, Objective, Reflection
from okrgraph.schema.organizations.mutations import RemovedResult, RemovedSuccess
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.type(description="The cycle after the change.")
class CycleSuccess:
    cycle: Cycle = strawberry.field(description="The cycle.")


@strawberry.type(description="The objective after the change.")
class ObjectiveSuccess:
    objective: Objective = strawberry.field(description="The objective.")


@strawberry.type(description="The reflection after the change.")
class ReflectionSuccess:
    reflection: Reflection = strawberry.field(description="The reflection.")


@strawberry.type(description="The alignment after the change.")
class AlignmentSuccess:
    alignment: Alignment = strawberry.field(description="The alignment edge.")


CycleResult = Annotated[
    CycleSuccess | UserErrors,
    strawberry.union("CycleResult", description="CycleSuccess or a user error."),
]
ObjectiveResult = Annotated[
    ObjectiveSuccess | UserErrors,
    strawberry.union("ObjectiveResult", description="ObjectiveSuccess or a user error."),
]
AlignmentResult = Annotated[
    AlignmentSuccess | UserErrors,
    strawberry.union("AlignmentResult", description="AlignmentSuccess or a user error."),
]
ReflectionResult = Annotated[
    ReflectionSuccess | UserErrors,
    strawberry.union("ReflectionResult", description="ReflectionSuccess or a user error."),
]


@strawberry.input(description="A new cycle.")
class CreateCycleInput:
    name: str = bounds.text("Unique, e.g. `2027-Q1`.", 100)
    cadence: Cadence = strawberry.field(description="QUARTER, YEAR or CUSTOM.")
    starts_on: date = bounds.day("First day.")
    ends_on: date = bounds.day("Last day (inclusive).")
    parent_cycle_id: strawberry.ID | None = strawberry.field(
        default=None, description="The cycle containing it (a quarter's year)."
    )
    state: CycleState = strawberry.field(
        default=CycleState.PLANNING, description="PLANNING or ACTIVE."
    )


@strawberry.input(description="Changes to a cycle; omitted fields stay.")
class UpdateCycleInput:
    id: strawberry.ID = strawberry.field(description="The cycle.")
    name: str | None = bounds.text("New name.", 100, default=None)
    starts_on: date | None = bounds.day("New first day.", default=None)
    ends_on: date | None = bounds.day("New last day.", default=None)
    state: CycleState | None = strawberry.field(
        default=None, description="Next state (forward only; closing is closeCycle's)."
    )


@strawberry.input(description="A new objective.")
class CreateObjectiveInput:
    cycle_id: strawberry.ID = strawberry.field(description="The cycle it belongs to.")
    title: str = bounds.text("The goal, in a sentence.", validation.TITLE)
    level: Level = strawberry.field(description="COMPANY, TEAM or INDIVIDUAL.")
    description: str = bounds.text("Why it matters.", validation.LONG_TEXT, default="")
    owner_team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owning team (required for TEAM)."
    )
    owner_person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Owning person (required for INDIVIDUAL)."
    )
    progress_driver: ObjectiveDriver = strawberry.field(
        default=ObjectiveDriver.KEY_RESULTS, description="What progress is computed from."
    )
    state: ObjectiveState = strawberry.field(
        default=ObjectiveState.ACTIVE, description="DRAFT or ACTIVE."
    )


@strawberry.input(description="Changes to an objective; omitted fields stay.")
class UpdateObjectiveInput:
    id: strawberry.ID = strawberry.field(description="The objective.")
    title: str | None = bounds.text("New title.", validation.TITLE, default=None)
    description: str | None = bounds.text("New description.", validation.LONG_TEXT, default=None)
    state: ObjectiveState | None = strawberry.field(
        default=None, description="New state (CANCELLED leaves it out of every score)."
    )
    progress_driver: ObjectiveDriver | None = strawberry.field(
        default=None, description="New progress driver."
    )
    owner_team_id: strawberry.ID | None = strawberry.field(default=None, description="New team.")
    owner_person_id: strawberry.ID | None = strawberry.field(default=None, description="New owner.")


@strawberry.input(description="What an objective's owners learnt, at grading or after close.")
class WriteReflectionInput:
    objective_id: strawberry.ID = strawberry.field(description="The objective.")
    what_worked: str = bounds.text("What worked.", 10_000, default="")
    what_did_not: str = bounds.text("What did not.", 10_000, default="")
    outcome: Outcome | None = strawberry.field(
        default=None, description="Default: ACHIEVED at a final score of 0.7 or more, else MISSED."
    )


@strawberry.input(description="Align a child objective to a parent objective or key result.")
class AlignObjectiveInput:
    child_id: strawberry.ID = strawberry.field(description="The supporting objective.")
    parent_objective_id: strawberry.ID | None = strawberry.field(
        default=None, description="The parent objective (or give parentKeyResultId)."
    )
    parent_key_result_id: strawberry.ID | None = strawberry.field(
        default=None, description="The parent key result (or give parentObjectiveId)."
    )
    weight: float = bounds.weight("Weight in the parent's progress.", default=1.0)
    contributes: bool = strawberry.field(
        default=True, description="Counts in the parent's progress; false: shown only."
    )


@strawberry.input(description="Changes to an alignment edge.")
class UpdateAlignmentInput:
    id: strawberry.ID = strawberry.field(description="The alignment.")
    weight: float | None = bounds.weight("New weight.", default=None)
    contributes: bool | None = strawberry.field(default=None, description="Counts or not.")


def _cycle(row: Any) -> CycleSuccess:
    return CycleSuccess(cycle=Cycle.from_row(row))


def _objective(row: Any) -> ObjectiveSuccess:
    return ObjectiveSuccess(objective=Objective.from_row(row))


def _alignment(row: Any) -> AlignmentSuccess:
    return AlignmentSuccess(alignment=Alignment.from_row(row))


@strawberry.type
class OkrMutations:
    @strawberry.mutation(description="Create a cycle (admins).")
    async def create_cycle(
        self, info: Info, input: CreateCycleInput, idempotency_key: str | None = None
    ) -> CycleResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await cycles.create_cycle(
                session, principal, **input_kwargs(input, ids={"parent_cycle_id": "Cycle"})
            )

        return await run_mutation(info, "createCycle", input, idempotency_key, action, _cycle)

    @strawberry.mutation(description="Rename, re-date or advance a cycle (admins).")
    async def update_cycle(
        self, info: Info, input: UpdateCycleInput, idempotency_key: str | None = None
    ) -> CycleResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await cycles.update_cycle(
                session,
                principal,
                parse_id(input.id, "Cycle", "input.id"),
                **input_kwargs(input, skip={"id"}),
            )

        return await run_mutation(info, "updateCycle", input, idempotency_key, action, _cycle)

    @strawberry.mutation(description="Create an objective (owner, team lead or admin).")
    async def create_objective(
        self, info: Info, input: CreateObjectiveInput, idempotency_key: str | None = None
    ) -> ObjectiveResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await objectives.create_objective(
                session,
                principal,
                **input_kwargs(
                    input,
                    ids={"cycle_id": "Cycle", "owner_team_id": "Team", "owner_person_id": "Person"},
                ),
            )

        return await run_mutation(
            info, "createObjective", input, idempotency_key, action, _objective
        )

    @strawberry.mutation(description="Change an objective (owner, team lead or admin).")
    async def update_objective(
        self, info: Info, input: UpdateObjectiveInput, idempotency_key: str | None = None
    ) -> ObjectiveResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await objectives.update_objective(
                session,
                principal,
                parse_id(input.id, "Objective", "input.id"),
                **input_kwargs(
                    input, ids={"owner_team_id": "Team", "owner_person_id": "Person"}, skip={"id"}
                ),
            )

        return await run_mutation(
            info, "updateObjective", input, idempotency_key, action, _objective
        )

    @strawberry.mutation(description="Write the reflection of an objective (its editors).")
    async def write_reflection(
        self, info: Info, input: WriteReflectionInput, idempotency_key: str | None = None
    ) -> ReflectionResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await reflections.write_reflection(
                session, principal, **input_kwargs(input, ids={"objective_id": "Objective"})
            )

        return await run_mutation(
            info,
            "writeReflection",
            input,
            idempotency_key,
            action,
            lambda row: ReflectionSuccess(reflection=Reflection.from_row(row)),
        )

    @strawberry.mutation(description="Align an objective to a parent; a loop is refused.")
    async def align_objective(
        self, info: Info, input: AlignObjectiveInput, idempotency_key: str | None = None
    ) -> AlignmentResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await objectives.align_objective(
                session,
                principal,
                child_id=parse_id(input.child_id, "Objective", "input.childId"),
                parent_objective_id=parse_optional_id(
                    input.parent_objective_id, "Objective", "input.parentObjectiveId"
                ),
                parent_key_result_id=parse_optional_id(
                    input.parent_key_result_id, "KeyResult", "input.parentKeyResultId"
                ),
                weight_value=input.weight,
                contributes=input.contributes,
            )

        return await run_mutation(
            info, "alignObjective", input, idempotency_key, action, _alignment
        )

    @strawberry.mutation(description="Change an alignment's weight or whether it counts.")
    async def update_alignment(
        self, info: Info, input: UpdateAlignmentInput, idempotency_key: str | None = None
    ) -> AlignmentResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await objectives.update_alignment(
                session,
                principal,
                parse_id(input.id, "Alignment", "input.id"),
                weight_value=input.weight,
                contributes=input.contributes,
            )

        return await run_mutation(
            info, "updateAlignment", input, idempotency_key, action, _alignment
        )

    @strawberry.mutation(description="Remove an alignment edge.")
    async def remove_alignment(
        self, info: Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> RemovedResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await objectives.remove_alignment(
                session, principal, parse_id(id, "Alignment", "id")
            )

        return await run_mutation(
            info,
            "removeAlignment",
            id,
            idempotency_key,
            action,
            lambda _: RemovedSuccess(removed_id=id),
        )
