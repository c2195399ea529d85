"""How a committed change asks the worker for a recalculation (arq job name + kwargs).

Bursts coalesce: every request of one organisation within the same window of
`WINDOW_MS` (`RECALC_WINDOW_MS` for the roll-up) gets the same `_job_id` and
runs at the window's end, so arq keeps one job for the whole burst. Because
the job starts only after its window closed, every change whose enqueue
attempt was refused as a duplicate was committed before the job claims the
pending events: none is missed. A job still running when the next window's
request arrives does not block it (the next window has another id), and a
request lost with Redis is found by the relay sweep, which enqueues through
the same function.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from okrgraph.domain.outbox.after_commit import Job

RECALCULATE_SCORES = "recalculate_scores"
WINDOW_MS = 50
# A check-in waits for its window to end (half of it on average) before its roll-up
# can start: the roll-up's window is short (issue 11, check-in -> converged). A
# burst still coalesces, into one job per 10 ms; a job that finds the previous
# one still rolling up defers to the next window (worker/jobs/scores.py).
RECALC_WINDOW_MS = 10


def windowed_job(
    name: str,
    prefix: str,
    org_id: uuid.UUID | str,
    *,
    now_ms: int | None = None,
    window_ms: int = WINDOW_MS,
) -> Job:
    """The organisation's job `name` of the current window: one per window, run at its end."""
    at = int(time.time() * 1000) if now_ms is None else now_ms
    window = at // window_ms
    run_at = datetime.fromtimestamp((window + 1) * window_ms / 1000, tz=UTC)
    return Job(
        name,
        {"org_id": str(org_id), "_job_id": f"{prefix}:{org_id}:{window}", "_defer_until": run_at},
    )


def recalculation_job(org_id: uuid.UUID | str, *, now_ms: int | None = None) -> Job:
    """The organisation's `recalculate_scores` job of the current window."""
    return windowed_job(
        RECALCULATE_SCORES, "recalc", org_id, now_ms=now_ms, window_ms=RECALC_WINDOW_MS
    )


@dataclass(frozen=True)
class Recalculation:
    """A committed change asks for its organisation's roll-up (an after-commit
    follow-up: its job is made once the change has committed)."""

    org_id: uuid.UUID

    def job(self) -> Job:
        return recalculation_job(self.org_id)


DISPATCH_EVENTS = "dispatch_events"
DELIVER_WEBHOOKS = "deliver_webhooks"


@dataclass(frozen=True)
class Dispatch:
    """Committed events for the outbox's other consumers (webhooks, notifications):
    the organisation's `dispatch_events` job fans them out."""

    org_id: uuid.UUID

    def job(self) -> Job:
        return windowed_job(DISPATCH_EVENTS, "dispatch", self.org_id)


@dataclass(frozen=True)
class Delivery:
    """Webhook deliveries due now: the organisation's `deliver_webhooks` job sends them."""

    org_id: uuid.UUID

    def job(self) -> Job:
        return windowed_job(DELIVER_WEBHOOKS, "deliver", self.org_id)


SEND_NOTIFICATIONS = "send_notifications"


@dataclass(frozen=True)
class Sending:
    """Notifications to send by e-mail or Slack: the organisation's `send_notifications` job."""

    org_id: uuid.UUID

    def job(self) -> Job:
        return windowed_job(SEND_NOTIFICATIONS, "send", self.org_id)


FULL_RECALCULATION = "full_recalculation"


def full_recalculation_job(org_id: uuid.UUID | str, *, period_s: int) -> Job:
    """One full recalculation per organisation and period, whoever asks."""
    period = int(time.time()) // period_s
    return Job(FULL_RECALCULATION, {"org_id": str(org_id), "_job_id": f"full:{org_id}:{period}"})
