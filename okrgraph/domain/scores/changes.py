"""A committed change of a score or progress, and how one written outside the roll-up
is recorded so that it is announced like the roll-up's own (exactly once).

The roll-up writes its changes' history rows and `score.changed` events in SQL
(rollup._RECORD). A service that writes a score synchronously (a check-in sets
its key result's score) records the same two rows with `record_written` and
passes the change along in its recalculation request (`requests.py`): the job
that consumes the request announces it with the roll-up's changes, and the
roll-up, finding the score already current, does not report it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.models import ScoreHistory
from okrgraph.domain.models.enums import Status, SubjectType
from okrgraph.domain.outbox.service import SCORE_CHANGED, emit


async def record_written(
    session: AsyncSession,
    org_id: uuid.UUID,
    subject_type: SubjectType,
    subject_id: uuid.UUID,
    value: float,
    status: Status,
    previous_value: float,
    previous_status: Status | None,
    now: datetime,
) -> ScoreChange:
    """The history row and `score.changed` event of a score written synchronously
    (the caller holds the subject's row lock). The row is stamped after the
    subject's last record, so the history's order is the order its values became
    true even when a roll-up that started earlier committed first."""
    last = await session.scalar(
        select(func.max(ScoreHistory.recorded_at)).where(
            ScoreHistory.org_id == org_id, ScoreHistory.subject_id == subject_id
        )
    )
    recorded_at = now if last is None or last < now else last + timedelta(microseconds=1)
    session.add(
        ScoreHistory(
            org_id=org_id,
            id=uuid.uuid4(),
            subject_type=subject_type,
            subject_id=subject_id,
            value=value,
            status=status,
            recorded_at=recorded_at,
        )
    )
    old_status = previous_status.value if previous_status is not None else status.value
    await emit(
        session,
        org_id=org_id,
        type=SCORE_CHANGED,
        subject_type=subject_type,
        subject_id=subject_id,
        payload={
            "value": value,
            "status": status.value,
            "previous_value": previous_value,
            "previous_status": old_status,
        },
        now=now,
    )
    return ScoreChange(
        subject_type, subject_id, value, status, previous_value, previous_status or status
    )
