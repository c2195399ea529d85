"""Writes of key results, check-ins and initiatives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import validation
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.key_results import definitions
from okrgraph.domain.key_results.service import record_check_in
from okrgraph.schema import bounds
from okrgraph.schema.context import Info
from okrgraph.schema.enums import (
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
)
from okrgraph.schema.node import input_kwargs, parse_id, parse_optional_id
from okrgraph.schema.okrs.key_result_types import CheckIn, Initiative, KeyResult
from okrgraph.schema.payloads import UserErrors, run_mutation


@strawberry.type(description="The key result after the change.")
class KeyResultSuccess:
    key_result: KeyResult = strawberry.field(description="The key result.")


@strawberry.type(description="The recorded check-in; `keyResult` shows its new score.")
class CheckInSuccess:
    check_in: CheckIn = strawberry.field(description="The check-in.")


@strawberry.type(description="The initiative after the change.")
class InitiativeSuccess:
    initiative: Initiative = strawberry.field(description="The initiative.")


KeyResultResult = Annotated[
    KeyResultSuccess | UserErrors,
    strawberry.union("KeyResultResult", description="KeyResultSuccess or a user error."),
]
CheckInResult = Annotated[
    CheckInSuccess | UserErrors,
    strawberry.union("CheckInResult", description="CheckInSuccess or a user error."),
]
InitiativeResult = Annotated[
    InitiativeSuccess | UserErrors,
    strawberry.union("InitiativeResult", description="InitiativeSuccess or a user error."),
]


@strawberry.input(description="A new key result of an objective.")
class CreateKeyResultInput:
    objective_id: strawberry.ID = strawberry.field(description="The objective it measures.")
    title: str = bounds.text("The outcome, in a sentence.", validation.TITLE)
    kind: KeyResultKind = strawberry.field(description="How it is scored.")
    start: float = bounds.number("Baseline (INCREASE/DECREASE).", default=0.0)
    target: float | None = bounds.number("Target; required except for MILESTONE.", default=None)
    unit: str = bounds.text("Unit of the values.", validation.UNIT, default="")
    weight: float = bounds.weight("Weight in the objective.", default=1.0)
    owner_person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Accountable person (default: the caller)."
    )
    progress_driver: KeyResultDriver = strawberry.field(
        default=KeyResultDriver.CHECK_INS, description="Where its current value comes from."
    )
    stretch: bool = strawberry.field(default=False, description="Aspirational (0.7 = success).")


@strawberry.input(description="Changes to a key result; omitted fields stay.")
class UpdateKeyResultInput:
    id: strawberry.ID = strawberry.field(description="The key result.")
    title: str | None = bounds.text("New title.", validation.TITLE, default=None)
    target: float | None = bounds.number(
        "New target; the old one is kept as a revision.", default=None
    )
    target_reason: str = bounds.text("Why the target changed.", 2000, default="")
    unit: str | None = bounds.text("New unit.", validation.UNIT, default=None)
    weight: float | None = bounds.weight("New weight.", default=None)
    owner_person_id: strawberry.ID | None = strawberry.field(default=None, description="New owner.")
    stretch: bool | None = strawberry.field(default=None, description="Stretch or not.")
    progress_driver: KeyResultDriver | None = strawberry.field(
        default=None, description="New progress driver."
    )
    state: KeyResultState | None = strawberry.field(
        default=None, description="CANCELLED leaves it out of every score."
    )


@strawberry.input(description="A value for a key result.")
class CheckInInput:
    key_result_id: strawberry.ID = strawberry.field(description="The key result.")
    value: float = bounds.number("The value now (1 = done for a milestone).")
    confidence: int | None = strawberry.field(
        default=None, description="Confidence of reaching the target, 0..10."
    )
    comment: str = bounds.text("What happened.", validation.LONG_TEXT, default="")
    effective_at: datetime | None = bounds.moment(
        "When the value was true (default now; may be backdated).", default=None
    )
    supersedes_id: strawberry.ID | None = strawberry.field(
        default=None, description="The check-in this one corrects."
    )


@strawberry.input(description="Work planned to move a key result.")
class CreateInitiativeInput:
    key_result_id: strawberry.ID = strawberry.field(description="The key result.")
    title: str = bounds.text("What will be done.", validation.TITLE)
    owner_person_id: strawberry.ID | None = strawberry.field(
        default=None, description="Who leads it (default: the caller)."
    )
    status: InitiativeStatus = strawberry.field(
        default=InitiativeStatus.PLANNED, description="Where the work stands."
    )
    link: str | None = bounds.text("Where it is tracked (URL).", validation.URL, default=None)


@strawberry.input(description="Changes to an initiative; omitted fields stay.")
class UpdateInitiativeInput:
    id: strawberry.ID = strawberry.field(description="The initiative.")
    title: str | None = bounds.text("New title.", validation.TITLE, default=None)
    status: InitiativeStatus | None = strawberry.field(default=None, description="New status.")
    link: str | None = bounds.text("New link.", validation.URL, default=None)


def _key_result(row: Any) -> KeyResultSuccess:
    return KeyResultSuccess(key_result=KeyResult.from_row(row))


def _initiative(row: Any) -> InitiativeSuccess:
    return InitiativeSuccess(initiative=Initiative.from_row(row))


@strawberry.type
class KeyResultMutations:
    @strawberry.mutation(description="Add a key result to an objective.")
    async def create_key_result(
        self, info: Info, input: CreateKeyResultInput, idempotency_key: str | None = None
    ) -> KeyResultResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await definitions.create_key_result(
                session,
                principal,
                **input_kwargs(
                    input,
                    ids={"objective_id": "Objective", "owner_person_id": "Person"},
                    skip={"weight"},
                ),
                weight_value=input.weight,
            )

        return await run_mutation(
            info, "createKeyResult", input, idempotency_key, action, _key_result
        )

    @strawberry.mutation(description="Change a key result (target revisions are kept).")
    async def update_key_result(
        self, info: Info, input: UpdateKeyResultInput, idempotency_key: str | None = None
    ) -> KeyResultResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await definitions.update_key_result(
                session,
                principal,
                parse_id(input.id, "KeyResult", "input.id"),
                **input_kwargs(input, ids={"owner_person_id": "Person"}, skip={"id", "weight"}),
                weight_value=input.weight,
            )

        return await run_mutation(
            info, "updateKeyResult", input, idempotency_key, action, _key_result
        )

    @strawberry.mutation(description="Report a value for a key result (append-only).")
    async def check_in(
        self, info: Info, input: CheckInInput, idempotency_key: str | None = None
    ) -> CheckInResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await record_check_in(
                session,
                principal,
                parse_id(input.key_result_id, "KeyResult", "input.keyResultId"),
                input.value,
                confidence=input.confidence,
                comment=input.comment,
                effective_at=input.effective_at,
                supersedes_id=parse_optional_id(
                    input.supersedes_id, "CheckIn", "input.supersedesId"
                ),
            )

        return await run_mutation(
            info,
            "checkIn",
            input,
            idempotency_key,
            action,
            lambda row: CheckInSuccess(check_in=CheckIn.from_row(row)),
        )

    @strawberry.mutation(description="Plan work to move a key result.")
    async def create_initiative(
        self, info: Info, input: CreateInitiativeInput, idempotency_key: str | None = None
    ) -> InitiativeResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await definitions.create_initiative(
                session,
                principal,
                **input_kwargs(
                    input, ids={"key_result_id": "KeyResult", "owner_person_id": "Person"}
                ),
            )

        return await run_mutation(
            info, "createInitiative", input, idempotency_key, action, _initiative
        )

    @strawberry.mutation(description="Change an initiative.")
    async def update_initiative(
        self, info: Info, input: UpdateInitiativeInput, idempotency_key: str | None = None
    ) -> InitiativeResult:
        async def action(session: AsyncSession, principal: Principal) -> Any:
            return await definitions.update_initiative(
                session,
                principal,
                parse_id(input.id, "Initiative", "input.id"),
                **input_kwargs(input, skip={"id"}),
            )

        return await run_mutation(
            info, "updateInitiative", input, idempotency_key, action, _initiative
        )
