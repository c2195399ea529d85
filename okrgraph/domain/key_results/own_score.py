"""A key result's own numbers, written synchronously (DESIGN.md section 4).

Every mutation that changes what a key result's score is made of (a check-in,
a new target, stretch, the driver, the state) brings its score and status up to
date in its own transaction through `rescore_own`, so its payload and the reads
after it show the new score at once; the roll-up above it is the worker's. The
caller holds the key result's row lock (check-ins and edits of one key result
take turns), and the written change travels in the recalculation request, to be
announced once by the job that consumes it (scores/changes.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import scoring
from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.models import KeyResult
from okrgraph.domain.models.enums import KeyResultDriver, SubjectType
from okrgraph.domain.scores.changes import record_written
from okrgraph.domain.scores.queries import org_timezone
from okrgraph.domain.scores.sql import SAME_SCORE


async def rescore_own(
    session: AsyncSession, kr: KeyResult, starts_on: date, ends_on: date, now: datetime
) -> list[ScoreChange]:
    """Score and status of `kr` from its current value; the change, if any, recorded."""
    if kr.final_score is not None or kr.progress_driver is KeyResultDriver.CHILDREN:
        return []  # frozen, or made of its children: the roll-up's to compute
    tz = await org_timezone(session, kr.org_id)
    expected = scoring.expected_progress(starts_on, ends_on, now, tz)
    old_score, old_status = kr.score, kr.status
    kr.score = scoring.key_result_score(kr.kind, kr.start_value, kr.target_value, kr.current_value)
    kr.status = scoring.status_from_pace(
        kr.score, expected, stretch=kr.stretch, confidence=kr.confidence
    )
    if abs(kr.score - old_score) <= SAME_SCORE and kr.status is old_status:
        return []
    kr.score_updated_at = now
    change = await record_written(
        session,
        kr.org_id,
        SubjectType.KEY_RESULT,
        kr.id,
        kr.score,
        kr.status,
        old_score,
        old_status,
        now,
    )
    return [change]
