"""The closed vocabularies of the model (DESIGN.md section 2)."""

from __future__ import annotations

import enum


class Described(enum.Enum):
    """An enum whose members carry a description (the GraphQL value's docs):
    `NAME = "NAME", "what it means"`."""

    _value_: str
    description: str

    def __new__(cls, value: str, description: str) -> Described:
        member = object.__new__(cls)
        member._value_ = value
        member.description = description
        return member


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
    """What an audit entry, an outbox event or a notification is about: one
    spelling everywhere (the GraphQL type name in upper snake case), so the
    audit log can be queried by subject."""

    ORGANIZATION = "ORGANIZATION"
    TEAM = "TEAM"
    PERSON = "PERSON"
    MEMBERSHIP = "MEMBERSHIP"
    CYCLE = "CYCLE"
    OBJECTIVE = "OBJECTIVE"
    ALIGNMENT = "ALIGNMENT"
    REFLECTION = "REFLECTION"
    KEY_RESULT = "KEY_RESULT"
    CHECK_IN = "CHECK_IN"
    INITIATIVE = "INITIATIVE"
    KPI = "KPI"
    API_TOKEN = "API_TOKEN"
    WEBHOOK_ENDPOINT = "WEBHOOK_ENDPOINT"


class NotificationKind(Described):
    """What a notification is about: the triggers of DESIGN.md section 5."""

    KEY_RESULT_WORSENED = (
        "KEY_RESULT_WORSENED",
        (
            "A key result you own got worse (ON_TRACK -> AT_RISK -> OFF_TRACK); at most once "
            "per key result per day."
        ),
    )
    OBJECTIVE_WORSENED = (
        "OBJECTIVE_WORSENED",
        (
            "An objective you own got worse (ON_TRACK -> AT_RISK -> OFF_TRACK); at most once "
            "per objective per day."
        ),
    )
    KPI_WARNING = "KPI_WARNING", "A KPI your team owns entered WARNING."
    KPI_CRITICAL = "KPI_CRITICAL", "A KPI your team owns entered CRITICAL."
    CHECK_IN_DUE = (
        "CHECK_IN_DUE",
        ("A key result you own has had no check-in for the organisation's reminder cadence."),
    )
    CYCLE_ENDING = "CYCLE_ENDING", "A cycle you have objectives in ends in a few days."
    CYCLE_CLOSED = "CYCLE_CLOSED", "A cycle was graded and rolled over into the next one."
    ALIGNED_TO_YOURS = "ALIGNED_TO_YOURS", "Someone aligned an objective to one of yours."
    WEEKLY_DIGEST = (
        "WEEKLY_DIGEST",
        ("Once a week: your objectives' movement, what is at risk, KPIs in alarm."),
    )
    WEBHOOK_ENDPOINT_DISABLED = (
        "WEBHOOK_ENDPOINT_DISABLED",
        ("For admins: a webhook endpoint was disabled after repeated failed deliveries."),
    )


class CloseJobState(enum.Enum):
    """A close run by the worker (a large cycle): waiting, under way, done or failed."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class ClosePhase(enum.Enum):
    """The steps of closing a cycle, in order."""

    RECALCULATING = "RECALCULATING"
    GRADING = "GRADING"
    CARRYING_OVER = "CARRYING_OVER"
    REFLECTING = "REFLECTING"
    ANNOUNCING = "ANNOUNCING"
