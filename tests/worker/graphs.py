"""A small builder of goal graphs for the score tests (one org, one active cycle)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain import clock
from okrgraph.domain.db import set_tenant
from okrgraph.domain.models import Alignment, Cycle, KeyResult, Objective, Organization
from okrgraph.domain.models.enums import (
    Cadence,
    CycleState,
    KeyResultDriver,
    KeyResultKind,
    KeyResultState,
    Level,
    ObjectiveDriver,
    ObjectiveState,
)

# A 91-day cycle around today (okrgraph's clock, so `pytest --clock-at` moves it
# too), so that a worker process sweeping cycles on its own clock finds it open;
# MIDWAY, noon today, is half-way through it: expected progress 0.5. Computed when
# asked (module __getattr__), not at import: conftest files import this module
# before `--clock-at` has moved the clock.
_WINDOW = ("CYCLE_START", "CYCLE_END", "MIDWAY")


def _window() -> dict[str, Any]:
    today = clock.now().date()
    return {
        "CYCLE_START": today - timedelta(days=45),
        "CYCLE_END": today + timedelta(days=45),
        "MIDWAY": datetime.combine(today, time(12), UTC),
    }


def __getattr__(name: str) -> Any:
    if name in _WINDOW:
        return _window()[name]
    raise AttributeError(name)


@dataclass
class GraphBuilder:
    session: AsyncSession
    org_id: uuid.UUID
    cycle_id: uuid.UUID

    @classmethod
    async def create(
        cls, session: AsyncSession, *, timezone: str = "UTC", org_id: uuid.UUID | None = None
    ) -> GraphBuilder:
        org_id = org_id or uuid.uuid4()
        await set_tenant(session, org_id)
        session.add(
            Organization(id=org_id, name="Scores", slug=f"s-{org_id.hex[:12]}", timezone=timezone)
        )
        await session.flush()
        builder = cls(session, org_id, uuid.uuid4())
        await builder.cycle(builder.cycle_id)
        return builder

    async def cycle(
        self,
        cycle_id: uuid.UUID | None = None,
        *,
        starts_on: date | None = None,
        ends_on: date | None = None,
        state: CycleState = CycleState.ACTIVE,
    ) -> uuid.UUID:
        cycle_id = cycle_id or uuid.uuid4()
        self.session.add(
            Cycle(
                org_id=self.org_id,
                id=cycle_id,
                name=f"c-{cycle_id.hex[:8]}",
                cadence=Cadence.QUARTER,
                starts_on=starts_on or _window()["CYCLE_START"],
                ends_on=ends_on or _window()["CYCLE_END"],
                state=state,
            )
        )
        await self.session.flush()
        return cycle_id

    async def objective(
        self,
        driver: ObjectiveDriver = ObjectiveDriver.KEY_RESULTS,
        *,
        state: ObjectiveState = ObjectiveState.ACTIVE,
        cycle_id: uuid.UUID | None = None,
        final_score: float | None = None,
        progress: float = 0.0,
    ) -> uuid.UUID:
        oid = uuid.uuid4()
        self.session.add(
            Objective(
                org_id=self.org_id,
                id=oid,
                cycle_id=cycle_id or self.cycle_id,
                title="o",
                level=Level.COMPANY,
                progress_driver=driver,
                state=state,
                final_score=final_score,
                progress=progress,
            )
        )
        await self.session.flush()
        return oid

    async def kr(
        self,
        objective_id: uuid.UUID,
        kind: KeyResultKind = KeyResultKind.INCREASE,
        *,
        start: float = 0.0,
        target: float | None = 100.0,
        weight: float = 1.0,
        driver: KeyResultDriver = KeyResultDriver.CHECK_INS,
        stretch: bool = False,
        state: KeyResultState = KeyResultState.ACTIVE,
        final_score: float | None = None,
        score: float = 0.0,
    ) -> uuid.UUID:
        kid = uuid.uuid4()
        self.session.add(
            KeyResult(
                org_id=self.org_id,
                id=kid,
                objective_id=objective_id,
                title="kr",
                kind=kind,
                start_value=start,
                target_value=target,
                weight=weight,
                progress_driver=driver,
                stretch=stretch,
                state=state,
                final_score=final_score,
                score=score,
            )
        )
        await self.session.flush()
        return kid

    async def align(
        self,
        child: uuid.UUID,
        *,
        parent_objective: uuid.UUID | None = None,
        parent_kr: uuid.UUID | None = None,
        weight: float = 1.0,
        contributes: bool = True,
    ) -> None:
        self.session.add(
            Alignment(
                org_id=self.org_id,
                child_objective_id=child,
                parent_objective_id=parent_objective,
                parent_key_result_id=parent_kr,
                weight=weight,
                contributes=contributes,
            )
        )
        await self.session.flush()
