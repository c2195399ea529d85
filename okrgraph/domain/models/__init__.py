"""All models, imported so that `Base.metadata` is complete."""

from okrgraph.domain.models.auth import ApiToken, IdempotencyKey
from okrgraph.domain.models.base import Base
from okrgraph.domain.models.cycle import CloseJob, Cycle
from okrgraph.domain.models.events import AuditEntry, OutboxConsumed, OutboxEvent, ScoreHistory
from okrgraph.domain.models.key_result import CheckIn, Initiative, KeyResult, TargetRevision
from okrgraph.domain.models.kpi import Kpi, KpiLink, KpiMeasurement
from okrgraph.domain.models.notification import (
    Notification,
    NotificationPreference,
    NotificationSend,
)
from okrgraph.domain.models.objective import Alignment, Objective, Reflection
from okrgraph.domain.models.organization import Membership, Organization, Person, Team
from okrgraph.domain.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Alignment",
    "ApiToken",
    "AuditEntry",
    "Base",
    "CheckIn",
    "CloseJob",
    "Cycle",
    "IdempotencyKey",
    "Initiative",
    "KeyResult",
    "Kpi",
    "KpiLink",
    "KpiMeasurement",
    "Membership",
    "Notification",
    "NotificationPreference",
    "NotificationSend",
    "Objective",
    "Organization",
    "OutboxConsumed",
    "OutboxEvent",
    "Person",
    "Reflection",
    "ScoreHistory",
    "TargetRevision",
    "Team",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
