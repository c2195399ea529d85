"""Writes on key results: check-ins (append-only) and the KR's own score, synchronously.

The roll-up to objectives and parents is the worker's (scores.service): this
service authorises the caller, writes the change, the KR's own score and status,
an audit entry and the outbox event that asks for the roll-up. It flushes,
never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.access import require_key_result_writer
from okrgraph.domain.audit import record_audit
from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from okrgraph.domain.key_results.own_score import rescore_own
from okrgraph.domain.models import CheckIn, Cycle, KeyResult, Objective
from okrgraph.domain.models.enums import (
    CycleState,
    KeyResultDriver,
    KeyResultState,
    Status,
    SubjectType,
)
from okrgraph.domain.outbox.service import CHECKIN_CREATED
from okrgraph.domain.scores.requests import request_roll_up_above
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
    principal: Principal,
    key_result_id: uuid.UUID,
    value: float,
    *,
    confidence: int | None = None,
    comment: str = "",
    effective_at: datetime | None = None,
    supersedes_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> CheckIn:
    """Append a check-in by `principal` and bring the key result's own numbers up to date.

    A correction (`supersedes_id`) takes the effective time of the check-in it
    corrects unless one is given. The KR's current value is the latest
    (by `effective_at`) check-in nobody superseded, so a backdated check-in
    older than the current one is logged without changing the current value.
    """
    now = now or clock.now()
    comment = _valid_input(value, confidence, comment, effective_at, now)
    org_id = principal.org_id
    target = await _locked_target(session, org_id, key_result_id)
    kr = target.key_result
    await require_key_result_writer(session, principal, target.objective, kr.owner_person_id)
    _require_check_ins(target)
    if supersedes_id is not None:
        corrected = await _correctable(session, org_id, key_result_id, supersedes_id)
        effective_at = effective_at or corrected.effective_at

    check_in = CheckIn(
        org_id=org_id,
        id=uuid.uuid4(),
        key_result_id=key_result_id,
        value=value,
        confidence=confidence,
        comment=comment,
        author_person_id=principal.person_id,
        supersedes_id=supersedes_id,
        effective_at=effective_at or now,
        recorded_at=now,
    )
    session.add(check_in)
    await session.flush()

    await _move_key_result(session, principal, target, check_in, now)
    await session.flush()
    return check_in


async def _move_key_result(
    session: AsyncSession, principal: Principal, target: _Target, check_in: CheckIn, now: datetime
) -> None:
    """The key result's current value from its log, its own score, the audit entry and
    the event that asks for the roll-up above it."""
    kr = target.key_result
    current = (await session.execute(_CURRENT, {"org": kr.org_id, "kr": kr.id})).one()
    old_value, old_score, old_status = kr.current_value, kr.score, kr.status
    kr.current_value, kr.confidence = current.value, current.confidence
    kr.last_check_in_at = now
    # Written here, not by the roll-up (which starts above it): announced by the
    # job that consumes this check-in's request, with its ancestors.
    cycle = target.cycle
    written = await rescore_own(session, kr, cycle.starts_on, cycle.ends_on, now)
    record_audit(
        session,
        principal,
        CHECKIN_CREATED,
        SubjectType.KEY_RESULT,
        kr.id,
        {
            "check_in_id": str(check_in.id),
            "value": check_in.value,
            "confidence": check_in.confidence,
            "supersedes_id": str(check_in.supersedes_id) if check_in.supersedes_id else None,
            "current_value": [old_value, kr.current_value],
            "score": [old_score, kr.score],
        },
        at=now,
    )
    await request_roll_up_above(
        session,
        kr.org_id,
        kr,
        type=CHECKIN_CREATED,
        written=written,
        payload={
            "check_in_id": str(check_in.id),
            "key_result_id": str(kr.id),
            "value": check_in.value,
            "score": kr.score,
            "status": kr.status.value,
            "previous_status": old_status.value if isinstance(old_status, Status) else None,
        },
        now=now,
    )


def _valid_input(
    value: float,
    confidence: int | None,
    comment: str,
    effective_at: datetime | None,
    now: datetime,
) -> str:
    """The bounds of a check-in's input (before anything is read); the comment as stored."""
    number(value, "input.value")
    if confidence is not None and not 0 <= confidence <= 10:
        raise ValidationFailed(
            "input.confidence", "confidence must be between 0 and 10", ErrorCode.VALUE_OUT_OF_RANGE
        )
    if effective_at is not None:
        instant(effective_at, "input.effectiveAt")
        if effective_at > now + CLOCK_SKEW:
            raise ValidationFailed(
                "input.effectiveAt", "effectiveAt lies in the future", ErrorCode.IN_THE_FUTURE
            )
    return text_field(comment, "input.comment", max_length=LONG_TEXT, required=False)


@dataclass(frozen=True, slots=True)
class _Target:
    key_result: KeyResult
    objective: Objective
    cycle: Cycle


async def _locked_target(
    session: AsyncSession, org_id: uuid.UUID, key_result_id: uuid.UUID
) -> _Target:
    """The key result (row-locked: concurrent check-ins of one KR take turns), its
    objective (who may write) and its cycle (its dates and state), in one statement."""
    row = (
        await session.execute(
            select(KeyResult, Objective, Cycle)
            .join(
                Objective,
                (Objective.org_id == KeyResult.org_id) & (Objective.id == KeyResult.objective_id),
            )
            .join(Cycle, (Cycle.org_id == Objective.org_id) & (Cycle.id == Objective.cycle_id))
            .where(KeyResult.org_id == org_id, KeyResult.id == key_result_id)
            .with_for_update(of=KeyResult)
        )
    ).first()
    if row is None:
        raise NotFound("KeyResult", key_result_id)
    return _Target(*row)


def _require_check_ins(target: _Target) -> None:
    """A check-in moves only an open key result whose value comes from check-ins."""
    kr = target.key_result
    if kr.state is KeyResultState.CANCELLED:
        raise Conflict("the key result is cancelled", ErrorCode.CANCELLED)
    if kr.final_score is not None or target.cycle.state is CycleState.CLOSED:
        raise Conflict(
            "the key result's cycle is closed; its score is final", ErrorCode.CYCLE_CLOSED
        )
    if kr.progress_driver is not KeyResultDriver.CHECK_INS:
        source = "its KPI" if kr.progress_driver is KeyResultDriver.KPI else "aligned objectives"
        raise Conflict(
            f"the key result's progress comes from {source}, not check-ins",
            ErrorCode.DRIVER_MISMATCH,
        )


async def _correctable(
    session: AsyncSession, org_id: uuid.UUID, key_result_id: uuid.UUID, supersedes_id: uuid.UUID
) -> CheckIn:
    """The check-in a correction supersedes: one of this key result, not yet corrected."""
    corrected = await session.scalar(
        select(CheckIn).where(CheckIn.org_id == org_id, CheckIn.id == supersedes_id)
    )
    if corrected is None:
        raise NotFound("CheckIn", supersedes_id)
    if corrected.key_result_id != key_result_id:
        raise ValidationFailed(
            "input.supersedesId", "not a check-in of this key result", ErrorCode.WRONG_KEY_RESULT
        )
    already = await session.scalar(
        select(CheckIn.id).where(CheckIn.org_id == org_id, CheckIn.supersedes_id == supersedes_id)
    )
    if already is not None:
        raise Conflict(
            "that check-in was already corrected; correct the correction",
            ErrorCode.ALREADY_CORRECTED,
        )
    return corrected
