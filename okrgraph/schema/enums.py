"""The model's vocabularies as GraphQL enums (registered once, here)."""

from __future__ import annotations

import enum
from typing import TypeVar

import strawberry

from okrgraph.domain.errors import ErrorCode
from okrgraph.domain.models.enums import (
    Cadence,
    CycleState,
    Direction,
    Health,
    InitiativeStatus,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    KpiCadence,
    Level,
    NotificationKind,
    ObjectiveDriver,
    ObjectiveState,
    OrgRole,
    Outcome,
    Status,
    SubjectType,
    TeamRole,
)

E = TypeVar("E", bound=type[enum.Enum])


def described_enum(cls: E, *, name: str, description: str) -> E:
    """Register a domain enum whose members carry a `description` (the rule each
    value stands for) with those descriptions on its GraphQL values."""
    strawberry.enum(cls, name=name, description=description)
    for value in cls.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = cls[value.name].description  # type: ignore[attr-defined]
    return cls


strawberry.enum(OrgRole, description="A person's role in the organisation.")
strawberry.enum(TeamRole, description="A person's role in a team.")
strawberry.enum(Cadence, description="Length of a cycle.")
strawberry.enum(CycleState, description="PLANNING -> ACTIVE -> GRADING -> CLOSED.")
strawberry.enum(Level, description="Who an objective belongs to.")
strawberry.enum(ObjectiveState, description="An objective's lifecycle.")
strawberry.enum(ObjectiveDriver, description="What an objective's progress is computed from.")
strawberry.enum(KeyResultKind, description="How a key result is scored.")
strawberry.enum(KeyResultDriver, description="Where a key result's current value comes from.")
strawberry.enum(KeyResultState, description="A key result's lifecycle.")
strawberry.enum(Status, description="Pace health: progress against time elapsed.")
strawberry.enum(InitiativeStatus, description="An initiative's progress.")
strawberry.enum(Outcome, description="How an objective ended its cycle.")
strawberry.enum(Direction, description="Which way a KPI should move.")
strawberry.enum(KpiCadence, description="How often a KPI is measured.")
strawberry.enum(Health, description="A KPI's health against its thresholds.")
strawberry.enum(
    SubjectType,
    description="What an audit entry, event or notification is about (a type, in upper "
    "snake case: KEY_RESULT for KeyResult).",
)
described_enum(
    NotificationKind,
    name="NotificationKind",
    description="What a notification is about; preferences are set per kind and channel.",
)
described_enum(
    ErrorCode,
    name="UserErrorCode",
    description="Why a change was refused: what a client branches on (messages are for "
    "people and may change). Each value documents its rule.",
)

__all__ = [
    "Cadence",
    "ErrorCode",
    "CycleState",
    "Direction",
    "Health",
    "InitiativeStatus",
    "KeyResultDriver",
    "KeyResultKind",
    "KeyResultState",
    "KpiCadence",
    "Level",
    "NotificationKind",
    "ObjectiveDriver",
    "ObjectiveState",
    "OrgRole",
    "Outcome",
    "Status",
    "SubjectType",
    "TeamRole",
]
