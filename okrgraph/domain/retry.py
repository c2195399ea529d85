"""Retry schedules: how long after a failed attempt the next one is due.

One rule for every sender (webhooks, e-mail, Slack), each with its own delays:
after failed attempt n (1-based) the next is due `delays[n - 1]` later, +-`jitter`
so that a receiver coming back is not hit by every retry at once; once the delays
are used up (`max_attempts` attempts made) the sender gives up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[timedelta, ...]
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    @property
    def span(self) -> timedelta:
        """From the first attempt to the last, without jitter."""
        return sum(self.delays, timedelta())

    def after(self, attempt: int, rng: random.Random | None = None) -> timedelta | None:
        """The delay after failed attempt `attempt`, with jitter; None once the
        schedule is exhausted (give up)."""
        if attempt >= self.max_attempts:
            return None
        delay = self.delays[max(attempt, 1) - 1]
        return delay * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
