"""Writes on key results: check-ins (append-only) and the KR's own score, synchronously.

The roll-up to objectives and parents is the worker's (scores.service): this
service only writes the change, the KR's own score and status, an audit entry
and the outbox event that asks for the roll-up. It flushes, never commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from okrgraph.domain.key_results.own_score import rescore_own
from okrgraph.domain.models import AuditEntry, CheckIn, Cycle, KeyResult, Objective
from okrgraph.domain.models.enums import (
    CycleState,
    KeyResultDriver,
    KeyResultState,
    Status,
    SubjectType,
)
from okrgraph.domain.outbox.service import CHECKIN_CREATED
from okrgraph.domain.scores.requests import request_recalculation
from okrgraph.domain.validation import LONG_TEXT, instant, number, text_field

# How far a check-in's effective time may lie ahead of the server's clock.
CLOCK_SKEW = timedelta(minutes=5)

# The current check-in: latest effective_at among those no other check-in supersedes.
_CURRENT = text(
    """
    SELECT c.value, c.confidence FROM check_ins c
    WHERE c.org_id = CAST(:org AS uuid) AND c.key_result_id = CAST(:kr AS uuid)
      AND NOT EXISTS (SELECT 1 FROM check_ins s
                      WHERE s.org_id = c.org_id AND s.supersedes_id = c.id)
    ORDER BY c.effective_at DESC, c.recorded_at DESC, c.id DESC
    LIMIT 1
    """
)


async def record_check_in(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    key_result_id: uuid.UUID,
    value: float,
    confidence: int | None = None,
    comment: str = "",
    author_person_id: uuid.UUID | None = None,
    effective_at: datetime | None = None,
    supersedes_id: uuid.UUID | None = None,
    now: datetime | None = None,
    actor_token_id: uuid.UUID | None = None,
) -> CheckIn:
    """Append a check-in and bring the key result's own numbers up to date.

    A correction (`supersedes_id`) takes the effective time of the check-in it
    corrects unless one is given. The KR's current value is the latest
    (by `effective_at`) check-in nobody superseded, so a backdated check-in
    older than the current one is logged without changing the current value.
    """
    now = now or clock.now()
    number(value, "input.value")
    if confidence is not None and not 0 <= confidence <= 10:
        raise ValidationFailed(
            "input.confidence", "confidence must be between 0 and 10", ErrorCode.VALUE_OUT_OF_RANGE
        )
    comment = text_field(comment, "input.comment", max_length=LONG_TEXT, required=False)
    if effective_at is not None:
        instant(effective_at, "input.effectiveAt")
        if effective_at > now + CLOCK_SKEW:
            raise ValidationFailed(
                "input.effectiveAt", "effectiveAt lies in the future", ErrorCode.IN_THE_FUTURE
            )

    row = (
        await session.execute(
            select(KeyResult, Objective.cycle_id, Cycle.starts_on, Cycle.ends_on, Cycle.state)
            .join(
                Objective,
                (Objective.org_id == KeyResult.org_id) & (Objective.id == KeyResult.objective_id),
            )
            .join(Cycle, (Cycle.org_id == Objective.org_id) & (Cycle.id == Objective.cycle_id))
            .where(KeyResult.org_id == org_id, KeyResult.id == key_result_id)
            .with_for_update(of=KeyResult)  # concurrent check-ins of one KR take turns
        )
    ).first()
    if row is None:
        raise NotFound("key result", key_result_id)
    kr, _cycle_id, starts_on, ends_on, cycle_state = row
    if kr.state is KeyResultState.CANCELLED:
        raise Conflict("the key result is cancelled", ErrorCode.CANCELLED)
    if kr.final_score is not None or cycle_state is CycleState.CLOSED:
        raise Conflict(
            "the key result's cycle is closed; its score is final", ErrorCode.CYCLE_CLOSED
        )
    if kr.progress_driver is not KeyResultDriver.CHECK_INS:
        source = "its KPI" if kr.progress_driver is KeyResultDriver.KPI else "aligned objectives"
        raise Conflict(
            f"the key result's progress comes from {source}, not check-ins",
            ErrorCode.DRIVER_MISMATCH,
        )

    if supersedes_id is not None:
        corrected = await session.scalar(
            select(CheckIn).where(CheckIn.org_id == org_id, CheckIn.id == supersedes_id)
        )
        if corrected is None:
            raise NotFound("check-in", supersedes_id)
        if corrected.key_result_id != key_result_id:
            raise ValidationFailed(
                "input.supersedesId",
                "not a check-in of this key result",
                ErrorCode.WRONG_KEY_RESULT,
            )
        already = await session.scalar(
            select(CheckIn.id).where(
                CheckIn.org_id == org_id, CheckIn.supersedes_id == supersedes_id
            )
        )
        if already is not None:
            raise Conflict(
                "that check-in was already corrected; correct the correction",
                ErrorCode.ALREADY_CORRECTED,
            )
        effective_at = effective_at or corrected.effective_at

    check_in = CheckIn(
        org_id=org_id,
        id=uuid.uuid4(),
        key_result_id=key_result_id,
        value=value,
        confidence=confidence,
        comment=comment,
        author_person_id=author_person_id,
        supersedes_id=supersedes_id,
        effective_at=effective_at or now,
        recorded_at=now,
    )
    session.add(check_in)
    await session.flush()

    current = (await session.execute(_CURRENT, {"org": org_id, "kr": key_result_id})).one()
    old_value, old_score, old_status = kr.current_value, kr.score, kr.status
    kr.current_value, kr.confidence = current.value, current.confidence
    kr.last_check_in_at = now
    # Written here, not by the roll-up (which will find it current): announced by the
    # job that consumes this check-in's request, with its ancestors.
    written = await rescore_own(session, kr, starts_on, ends_on, now)
    session.add(
        AuditEntry(
            org_id=org_id,
            id=uuid.uuid4(),
            actor_person_id=author_person_id,
            actor_token_id=actor_token_id,
            action=CHECKIN_CREATED,
            subject_type=SubjectType.KEY_RESULT,
            subject_id=kr.id,
            changes={
                "check_in_id": str(check_in.id),
                "value": value,
                "confidence": confidence,
                "supersedes_id": str(supersedes_id) if supersedes_id else None,
                "current_value": [old_value, kr.current_value],
                "score": [old_score, kr.score],
            },
            created_at=now,
        )
    )
    await request_recalculation(
        session,
        org_id,
        check_in,
        type=CHECKIN_CREATED,
        subject_type=SubjectType.KEY_RESULT,
        subject_id=kr.id,
        created=True,
        written=written,
        payload={
            "check_in_id": str(check_in.id),
            "key_result_id": str(kr.id),
            "value": value,
            "score": kr.score,
            "status": kr.status.value,
            "previous_status": old_status.value if isinstance(old_status, Status) else None,
        },
        now=now,
    )
    await session.flush()
    return check_in
