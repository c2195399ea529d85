"""Factories: valid rows of every model, built through the ORM, for any test.

    org = await make_org(session)                       # also scopes the transaction to it
    kr = await make_key_result(session, org.id, kind=KeyResultKind.DECREASE)
    token, secret = await make_token(session, org.id, role=OrgRole.ADMIN, scopes=["admin"])

Conventions:
- `make_<thing>(session, org_id, **fields)` adds one row of `org_id`, flushes
  and returns the model. Every column may be overridden by keyword (`fields`
  go to the model's constructor, so a SQL expression such as
  `sa.literal("BOGUS")` reaches the database unvalidated); the rest gets a
  sensible default, and names, slugs and emails are unique.
- A missing parent is created with its own factory (a key result without
  `objective_id` gets a new objective, which gets a new cycle). A parent
  passed explicitly, even as `None`, is used as given.
- The session's transaction must be scoped to `org_id` (row-level security):
  `make_org` calls `set_tenant` for the new organisation; to switch between
  organisations call `set_tenant(session, org_id)` yourself.
- `FACTORIES` maps every table name to its factory (tenant tables take
  `(session, org_id, **fields)`; "organizations" ignores `org_id`), so a test
  can build a row of any table generically.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock, scoring
from okrgraph.domain.auth.tokens import create_token, hash_secret, new_secret
from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import (
    Alignment,
    ApiToken,
    AuditEntry,
    Base,
    CheckIn,
    CloseJob,
    Cycle,
    IdempotencyKey,
    Initiative,
    KeyResult,
    Kpi,
    KpiLink,
    KpiMeasurement,
    Membership,
    Notification,
    NotificationPreference,
    NotificationSend,
    Objective,
    Organization,
    OutboxConsumed,
    OutboxEvent,
    Person,
    Reflection,
    ScoreHistory,
    TargetRevision,
    Team,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from okrgraph.domain.models.enums import (
    Cadence,
    Channel,
    CycleState,
    Direction,
    KeyResultKind,
    Level,
    NotificationKind,
    OrgRole,
    Outcome,
    Status,
    SubjectType,
)
from okrgraph.domain.webhooks.catalog import new_secret as new_webhook_secret
from okrgraph.domain.webhooks.secrets import keyring

M = TypeVar("M", bound=Base)
Factory = Callable[..., Awaitable[Base]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _add(session: AsyncSession, row: M) -> M:
    session.add(row)
    await session.flush()
    return row


async def _given_or(fields: dict[str, Any], key: str, make: Callable[[], Awaitable[Any]]) -> Any:
    """`fields[key]` when given (even None), else the id of a new parent."""
    if key in fields:
        return fields.pop(key)
    return (await make()).id


# --- organisation and people ------------------------------------------------


async def make_org(session: AsyncSession, **fields: Any) -> Organization:
    """A new organisation; scopes the session's transaction to it first (RLS)."""
    org_id = fields.pop("id", None) or uuid.uuid4()
    await set_tenant(session, org_id)
    slug = unique("org")
    fields.setdefault("name", slug.replace("-", " ").title())
    fields.setdefault("slug", slug)
    return await _add(session, Organization(id=org_id, **fields))


async def make_team(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Team:
    fields.setdefault("name", unique("Team"))
    return await _add(session, Team(org_id=org_id, **fields))


async def make_person(
    session: AsyncSession, org_id: uuid.UUID, *, role: OrgRole = OrgRole.MEMBER, **fields: Any
) -> Person:
    handle = unique("person")
    fields.setdefault("name", handle.title())
    fields.setdefault("email", f"{handle}@example.test")
    fields.setdefault("org_role", role)
    return await _add(session, Person(org_id=org_id, **fields))


async def make_membership(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Membership:
    team_id = await _given_or(fields, "team_id", lambda: make_team(session, org_id))
    person_id = await _given_or(fields, "person_id", lambda: make_person(session, org_id))
    return await _add(
        session, Membership(org_id=org_id, team_id=team_id, person_id=person_id, **fields)
    )


# --- cycles, objectives, alignments -----------------------------------------


async def make_cycle(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    cadence: Cadence = Cadence.QUARTER,
    **fields: Any,
) -> Cycle:
    """An ACTIVE cycle around today (okrgraph's clock), whatever the date: a quarter
    from 45 days ago to 45 days ahead, a year from 180 days ago to 184 ahead (it
    contains the quarter); override the dates for anything else."""
    yearly = cadence is Cadence.YEAR
    today = clock.now().date()
    fields.setdefault("starts_on", today - timedelta(days=180 if yearly else 45))
    fields.setdefault("ends_on", today + timedelta(days=184 if yearly else 45))
    fields.setdefault("name", unique("year" if yearly else "quarter"))
    fields.setdefault("state", CycleState.ACTIVE)
    return await _add(session, Cycle(org_id=org_id, cadence=cadence, **fields))


async def make_objective(
    session: AsyncSession, org_id: uuid.UUID, *, level: Level = Level.COMPANY, **fields: Any
) -> Objective:
    """A TEAM objective gets an owning team, an INDIVIDUAL one an owning person."""
    fields["cycle_id"] = await _given_or(fields, "cycle_id", lambda: make_cycle(session, org_id))
    if level is Level.TEAM and "owner_team_id" not in fields:
        fields["owner_team_id"] = (await make_team(session, org_id)).id
    if level is Level.INDIVIDUAL and "owner_person_id" not in fields:
        fields["owner_person_id"] = (await make_person(session, org_id)).id
    fields.setdefault("title", unique("Objective"))
    return await _add(session, Objective(org_id=org_id, level=level, **fields))


async def make_alignment(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Alignment:
    """Child TEAM objective -> new COMPANY objective, unless a parent is given."""
    child = await _given_or(
        fields, "child_objective_id", lambda: make_objective(session, org_id, level=Level.TEAM)
    )
    if "parent_objective_id" not in fields and "parent_key_result_id" not in fields:
        fields["parent_objective_id"] = (await make_objective(session, org_id)).id
    return await _add(session, Alignment(org_id=org_id, child_objective_id=child, **fields))


async def make_reflection(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Reflection:
    """Of a new objective (and its cycle) unless given."""
    if "objective_id" not in fields:
        objective = await make_objective(session, org_id)
        fields["objective_id"] = objective.id
        fields.setdefault("cycle_id", objective.cycle_id)
    fields["cycle_id"] = await _given_or(fields, "cycle_id", lambda: make_cycle(session, org_id))
    fields.setdefault("final_score", 0.7)
    fields.setdefault("outcome", Outcome.ACHIEVED)
    return await _add(session, Reflection(org_id=org_id, **fields))


# --- key results and what hangs off them ------------------------------------

# start -> target by kind; ABOVE/BELOW are thresholds, MILESTONE is 0 -> 1.
KIND_DEFAULTS: dict[KeyResultKind, tuple[float, float]] = {
    KeyResultKind.INCREASE: (0.0, 100.0),
    KeyResultKind.DECREASE: (100.0, 0.0),
    KeyResultKind.ABOVE: (0.0, 95.0),
    KeyResultKind.BELOW: (0.0, 5.0),
    KeyResultKind.MILESTONE: (0.0, 1.0),
}


async def make_key_result(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    kind: KeyResultKind = KeyResultKind.INCREASE,
    **fields: Any,
) -> KeyResult:
    """Start/target default by kind (INCREASE 0 -> 100, DECREASE 100 -> 0, ...)."""
    fields["objective_id"] = await _given_or(
        fields, "objective_id", lambda: make_objective(session, org_id)
    )
    start, target = KIND_DEFAULTS.get(kind, (0.0, 100.0))
    fields.setdefault("start_value", start)
    fields.setdefault("target_value", target)
    fields.setdefault("title", unique("Key result"))
    return await _add(session, KeyResult(org_id=org_id, kind=kind, **fields))


async def make_target_revision(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> TargetRevision:
    fields["key_result_id"] = await _given_or(
        fields, "key_result_id", lambda: make_key_result(session, org_id)
    )
    fields.setdefault("old_target", 100.0)
    fields.setdefault("new_target", 120.0)
    return await _add(session, TargetRevision(org_id=org_id, **fields))


async def make_check_in(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> CheckIn:
    """Value 10, confidence 7, effective now (pass `effective_at` to backdate)."""
    fields["key_result_id"] = await _given_or(
        fields, "key_result_id", lambda: make_key_result(session, org_id)
    )
    fields.setdefault("value", 10.0)
    fields.setdefault("confidence", 7)
    return await _add(session, CheckIn(org_id=org_id, **fields))


async def make_initiative(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Initiative:
    fields["key_result_id"] = await _given_or(
        fields, "key_result_id", lambda: make_key_result(session, org_id)
    )
    fields.setdefault("title", unique("Initiative"))
    return await _add(session, Initiative(org_id=org_id, **fields))


# --- KPIs --------------------------------------------------------------------


async def make_kpi(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    direction: Direction = Direction.HIGHER_IS_BETTER,
    **fields: Any,
) -> Kpi:
    """Target and thresholds ordered for the direction (100/80/60 or 10/20/30)."""
    fields.setdefault("name", unique("KPI"))
    if isinstance(direction, Direction):  # not for a raw SQL value
        higher = direction is Direction.HIGHER_IS_BETTER
        target, warning, critical = (100.0, 80.0, 60.0) if higher else (10.0, 20.0, 30.0)
        fields.setdefault("target", target)
        fields.setdefault("warning_threshold", warning)
        fields.setdefault("critical_threshold", critical)
        # as kpis.service.refresh_kpis stores it with the latest value
        fields.setdefault(
            "health",
            scoring.kpi_health(
                direction,
                fields.get("latest_value"),
                fields["warning_threshold"],
                fields["critical_threshold"],
            ),
        )
    return await _add(session, Kpi(org_id=org_id, direction=direction, **fields))


async def make_measurement(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> KpiMeasurement:
    fields["kpi_id"] = await _given_or(fields, "kpi_id", lambda: make_kpi(session, org_id))
    fields.setdefault("value", 90.0)
    fields.setdefault("measured_at", datetime.now(UTC))
    return await _add(session, KpiMeasurement(org_id=org_id, **fields))


async def make_kpi_link(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> KpiLink:
    """Links a new KPI to a new key result, unless a KPI or a target is given."""
    fields["kpi_id"] = await _given_or(fields, "kpi_id", lambda: make_kpi(session, org_id))
    if "key_result_id" not in fields and "objective_id" not in fields:
        fields["key_result_id"] = (await make_key_result(session, org_id)).id
    return await _add(session, KpiLink(org_id=org_id, **fields))


# --- tokens ------------------------------------------------------------------


async def make_token(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    scopes: list[str] | None = None,
    person_id: uuid.UUID | None = None,
    integration_name: str | None = None,
    role: OrgRole = OrgRole.MEMBER,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A usable token through `create_token`: `(ApiToken, secret)`.

    Without a person or an integration it belongs to a new person with `role`.
    Scopes default to read and write.
    """
    if person_id is None and integration_name is None:
        person_id = (await make_person(session, org_id, role=role)).id
    return await create_token(
        session,
        org_id,
        name=name or unique("token"),
        scopes=scopes if scopes is not None else ["read", "write"],
        person_id=person_id,
        integration_name=integration_name,
        expires_at=expires_at,
    )


async def make_token_row(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> ApiToken:
    """A raw `api_tokens` row (no validation; an integration's unless `person_id` is given)."""
    secret = new_secret()
    fields.setdefault("name", unique("token"))
    fields.setdefault("token_hash", hash_secret(secret))
    fields.setdefault("prefix", secret[:10])
    fields.setdefault("scopes", ["read"])
    if "person_id" not in fields:
        fields.setdefault("integration_name", "test-integration")
    return await _add(session, ApiToken(org_id=org_id, **fields))


async def make_idempotency_key(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> IdempotencyKey:
    fields["token_id"] = await _given_or(
        fields, "token_id", lambda: make_token_row(session, org_id)
    )
    fields.setdefault("key", unique("key"))
    fields.setdefault("operation", "createObjective")
    fields.setdefault("request_hash", "0" * 64)
    fields.setdefault("response", {"data": {}})
    return await _add(session, IdempotencyKey(org_id=org_id, **fields))


# --- notifications, webhooks, events -----------------------------------------


async def make_notification(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> Notification:
    fields["person_id"] = await _given_or(fields, "person_id", lambda: make_person(session, org_id))
    fields.setdefault("kind", "CHECK_IN_DUE")
    fields.setdefault("title", "A check-in is due")
    fields.setdefault("dedup_key", unique("dedup"))
    return await _add(session, Notification(org_id=org_id, **fields))


async def make_notification_preference(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> NotificationPreference:
    fields["person_id"] = await _given_or(fields, "person_id", lambda: make_person(session, org_id))
    fields.setdefault("kind", "CHECK_IN_DUE")
    fields.setdefault("channel", Channel.EMAIL)
    return await _add(session, NotificationPreference(org_id=org_id, **fields))


async def make_webhook_endpoint(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> WebhookEndpoint:
    """`secret=` gives the plaintext signing secret, stored sealed as the service does."""
    fields.setdefault("url", "https://hooks.example.test/okr")
    fields.setdefault("id", uuid.uuid4())
    secret = fields.pop("secret", None) or new_webhook_secret()
    fields.setdefault("secret_sealed", keyring().seal(secret, org_id, fields["id"]))
    fields.setdefault("event_types", ["objective.updated"])
    return await _add(session, WebhookEndpoint(org_id=org_id, **fields))


async def make_outbox_event(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> OutboxEvent:
    fields.setdefault("type", "objective.updated")
    fields.setdefault("payload", {})
    return await _add(session, OutboxEvent(org_id=org_id, **fields))


async def make_webhook_delivery(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> WebhookDelivery:
    fields["endpoint_id"] = await _given_or(
        fields, "endpoint_id", lambda: make_webhook_endpoint(session, org_id)
    )
    fields["event_id"] = await _given_or(
        fields, "event_id", lambda: make_outbox_event(session, org_id)
    )
    fields.setdefault("event_type", "objective.updated")
    fields.setdefault("payload", {})
    return await _add(session, WebhookDelivery(org_id=org_id, **fields))


async def make_webhook_attempt(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> WebhookAttempt:
    fields["delivery_id"] = await _given_or(
        fields, "delivery_id", lambda: make_webhook_delivery(session, org_id)
    )
    fields.setdefault("attempt", 1)
    fields.setdefault("started_at", datetime.now(UTC))
    fields.setdefault("duration_ms", 12)
    fields.setdefault("response_status", 200)
    return await _add(session, WebhookAttempt(org_id=org_id, **fields))


async def make_outbox_consumed(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> OutboxConsumed:
    fields["event_id"] = await _given_or(
        fields, "event_id", lambda: make_outbox_event(session, org_id)
    )
    fields.setdefault("consumer", "webhooks")
    return await _add(session, OutboxConsumed(org_id=org_id, **fields))


async def make_notification_send(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> NotificationSend:
    fields["person_id"] = await _given_or(fields, "person_id", lambda: make_person(session, org_id))
    fields.setdefault("channel", Channel.EMAIL)
    fields.setdefault("kind", NotificationKind.CHECK_IN_DUE)
    fields.setdefault("dedup_key", f"test:{uuid.uuid4()}")
    fields.setdefault("subject", "A check-in is due")
    return await _add(session, NotificationSend(org_id=org_id, **fields))


async def make_close_job(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> CloseJob:
    fields["cycle_id"] = await _given_or(fields, "cycle_id", lambda: make_cycle(session, org_id))
    fields.setdefault("carry_over", "CARRY_REMAINDER")
    fields.setdefault("objectives", 0)
    return await _add(session, CloseJob(org_id=org_id, **fields))


async def make_audit_entry(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> AuditEntry:
    fields.setdefault("action", "objective.update")
    fields.setdefault("subject_type", "OBJECTIVE")
    fields.setdefault("subject_id", uuid.uuid4())
    return await _add(session, AuditEntry(org_id=org_id, **fields))


async def make_score_history(
    session: AsyncSession, org_id: uuid.UUID, **fields: Any
) -> ScoreHistory:
    fields.setdefault("subject_type", SubjectType.OBJECTIVE)
    fields.setdefault("subject_id", uuid.uuid4())
    fields.setdefault("value", 0.5)
    fields.setdefault("status", Status.ON_TRACK)
    return await _add(session, ScoreHistory(org_id=org_id, **fields))


async def _org_factory(session: AsyncSession, org_id: uuid.UUID, **fields: Any) -> Organization:
    del org_id  # an organisation is its own tenant
    return await make_org(session, **fields)


FACTORIES: dict[str, Factory] = {
    "organizations": _org_factory,
    "teams": make_team,
    "people": make_person,
    "memberships": make_membership,
    "cycles": make_cycle,
    "objectives": make_objective,
    "alignments": make_alignment,
    "reflections": make_reflection,
    "key_results": make_key_result,
    "target_revisions": make_target_revision,
    "check_ins": make_check_in,
    "initiatives": make_initiative,
    "kpis": make_kpi,
    "kpi_measurements": make_measurement,
    "kpi_links": make_kpi_link,
    "api_tokens": make_token_row,
    "idempotency_keys": make_idempotency_key,
    "notifications": make_notification,
    "notification_preferences": make_notification_preference,
    "webhook_endpoints": make_webhook_endpoint,
    "webhook_deliveries": make_webhook_delivery,
    "webhook_attempts": make_webhook_attempt,
    "outbox_consumed": make_outbox_consumed,
    "notification_sends": make_notification_send,
    "close_jobs": make_close_job,
    "outbox_events": make_outbox_event,
    "audit_entries": make_audit_entry,
    "score_history": make_score_history,
}
