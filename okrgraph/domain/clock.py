"""The one clock of the scoring, cycle and worker paths.

`now()` is the wall clock moved by `OKR_CLOCK_OFFSET_SECONDS` (0 unless set):
expected progress and status, check-ins' default times, KPI measurements, the
cycle sweep and the seed all read it, in the API, the worker and every `okr`
process, so a run can be moved to any day (the CI runs the date-sensitive tests
on a quarter's first and last day). An offset, not a fixed instant, so time
still passes and every process started with the same setting agrees.
Database defaults (`created_at`, `now()` in SQL) and token expiry stay on the
database's own clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okrgraph.domain.config import settings


def now() -> datetime:
    """The current instant (UTC, timezone-aware), moved by the configured offset."""
    return datetime.now(UTC) + offset()


def offset() -> timedelta:
    """How far `now()` is from the wall clock (and the database's `now()`)."""
    return timedelta(seconds=settings.clock_offset_seconds)
