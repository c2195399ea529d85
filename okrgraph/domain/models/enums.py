"""The closed vocabularies of the model (DESIGN.md section 2)."""

from __future__ import annotations

import enum


class OrgRole(enum.Enum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"


class TeamRole(enum.Enum):
    LEAD = "LEAD"
    MEMBER = "MEMBER"


class Cadence(enum.Enum):
    QUARTER = "QUARTER"
    YEAR = "YEAR"
    CUSTOM = "CUSTOM"


class CycleState(enum.Enum):
    PLANNING = "PLANNING"
    ACTIVE = "ACTIVE"
    GRADING = "GRADING"
    CLOSED = "CLOSED"


class Level(enum.Enum):
    COMPANY = "COMPANY"
    TEAM = "TEAM"
    INDIVIDUAL = "INDIVIDUAL"


class ObjectiveState(enum.Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ACHIEVED = "ACHIEVED"
    MISSED = "MISSED"
    CANCELLED = "CANCELLED"


class ObjectiveDriver(enum.Enum):
    KEY_RESULTS = "KEY_RESULTS"
    CHILDREN = "CHILDREN"
    BOTH = "BOTH"


class KeyResultKind(enum.Enum):
    INCREASE = "INCREASE"
    DECREASE = "DECREASE"
    ABOVE = "ABOVE"
    BELOW = "BELOW"
    MILESTONE = "MILESTONE"


class KeyResultDriver(enum.Enum):
    CHECK_INS = "CHECK_INS"
    KPI = "KPI"
    CHILDREN = "CHILDREN"


class KeyResultState(enum.Enum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class Status(enum.Enum):
    """Pace health (DESIGN.md section 3); `state` is always the lifecycle."""

    NOT_STARTED = "NOT_STARTED"
    ON_TRACK = "ON_TRACK"
    AT_RISK = "AT_RISK"
    OFF_TRACK = "OFF_TRACK"


class InitiativeStatus(enum.Enum):
    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class Outcome(enum.Enum):
    ACHIEVED = "ACHIEVED"
    MISSED = "MISSED"
    CARRIED_OVER = "CARRIED_OVER"


class Direction(enum.Enum):
    HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
    LOWER_IS_BETTER = "LOWER_IS_BETTER"


class KpiCadence(enum.Enum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"


class Health(enum.Enum):
    HEALTHY = "HEALTHY"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


class Channel(enum.Enum):
    IN_APP = "IN_APP"
    EMAIL = "EMAIL"
    SLACK = "SLACK"


class DeliveryStatus(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    GAVE_UP = "GAVE_UP"


class SubjectType(enum.Enum):
    OBJECTIVE = "OBJECTIVE"
    KEY_RESULT = "KEY_RESULT"
    KPI = "KPI"
