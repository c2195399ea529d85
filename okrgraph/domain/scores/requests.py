"""Which recalculation a change asks for: the one place that decides (DESIGN.md section 4).

A service that writes a row of the goal graph calls `request_recalculation`
with the row and what it did to it (created it, removed it, or changed some of
its columns). `EFFECTS` says, for every column of every model a number depends
on, what the roll-up must then recompute:

- `SELF`: the row itself, and so (the roll-up climbs) everything above it;
- `FED`: the node the row feeds, whatever its own flags say now. An alignment
  feeds its parent: a parent that lost a term (edge removed, `contributes`
  switched off) is no longer above the child, so naming the child would miss it;
- `CYCLE`: every node of the row's cycle (its dates move expected progress,
  hence every status);
- `SOURCE`: the key result whose current value the row provides (a check-in,
  a KPI link) or the KPI it measures (a measurement);
- `None`: no number depends on it.

A column missing from `EFFECTS` is a bug that a test catches
(tests/domain/test_recalc_requests.py walks every column of these models), so a
new column cannot silently skip the roll-up. Scores written synchronously by the
service itself (a check-in's own key result) travel in the request as `written`:
the worker announces them with the roll-up's own changes, once.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.messages import ScoreChange
from okrgraph.domain.models import (
    Alignment,
    CheckIn,
    Cycle,
    KeyResult,
    Kpi,
    KpiLink,
    KpiMeasurement,
    Objective,
)
from okrgraph.domain.models.base import Base
from okrgraph.domain.models.enums import SubjectType
from okrgraph.domain.outbox.service import emit, recalc_payload


class Effect(enum.Enum):
    SELF = "SELF"
    FED = "FED"
    CYCLE = "CYCLE"
    SOURCE = "SOURCE"


SELF, FED, CYCLE, SOURCE = Effect.SELF, Effect.FED, Effect.CYCLE, Effect.SOURCE
_ROW = {"org_id": None, "id": None}
_STAMPS = {"created_at": None, "updated_at": None}

# Per model: what creating or removing a row asks for, and per column what changing it
# asks for. Derived columns (score, status, progress, latest_value, health, ...) are
# written by the roll-up or synchronously with their inputs: they ask for nothing.
EFFECTS: dict[type[Base], tuple[Effect | None, dict[str, Effect | None]]] = {
    KeyResult: (
        SELF,
        {
            **_ROW,
            **_STAMPS,
            "objective_id": SELF,
            "title": None,
            "owner_person_id": None,
            "kind": SELF,
            "unit": None,
            "start_value": SELF,
            "target_value": SELF,
            "current_value": SELF,
            "weight": SELF,
            "progress_driver": SELF,
            "stretch": SELF,
            "state": SELF,
            "confidence": SELF,
            "carried_over_from_id": None,
            "start_taken_at": None,  # the start itself (start_value) is what moves numbers
            "score": None,
            "status": None,
            "final_score": None,  # frozen by closing, which brings everything current first
            "last_check_in_at": None,
            "score_updated_at": None,
        },
    ),
    Objective: (
        SELF,
        {
            **_ROW,
            **_STAMPS,
            "cycle_id": CYCLE,
            "title": None,
            "description": None,
            "level": None,
            "owner_team_id": None,
            "owner_person_id": None,
            "state": SELF,
            "progress_driver": SELF,
            "carried_over_from_id": None,
            "progress": None,
            "status": None,
            "final_score": None,
            "score_updated_at": None,
        },
    ),
    Alignment: (
        FED,
        {
            **_ROW,
            "created_at": None,
            "child_objective_id": FED,
            "parent_objective_id": FED,
            "parent_key_result_id": FED,
            "weight": FED,
            "contributes": FED,
        },
    ),
    Cycle: (
        None,  # a new cycle has no nodes yet
        {
            **_ROW,
            "created_at": None,
            "name": None,
            "cadence": None,
            "starts_on": CYCLE,
            "ends_on": CYCLE,
            # Only CLOSED freezes, and closing brings everything current first.
            "state": None,
            "parent_cycle_id": None,
            "closed_at": None,
        },
    ),
    Kpi: (
        None,  # no key result follows a new KPI yet
        {
            **_ROW,
            "created_at": None,
            "name": None,
            "description": None,
            "owner_team_id": None,
            "unit": None,
            "direction": None,  # health is refreshed with its inputs; scores ignore it
            "target": None,
            "warning_threshold": None,
            "critical_threshold": None,
            "cadence": None,
            "health": None,
            "latest_value": None,
            "latest_at": None,
            "alert_level": None,  # the notifier's (notifications/kpi_alerts.py): no number
            "archived_at": None,  # keeps its series and links, takes no more values
        },
    ),
    KpiLink: (
        SOURCE,  # the linked key result takes (or keeps) the KPI's latest value
        {
            **_ROW,
            "created_at": None,
            "kpi_id": SOURCE,
            "key_result_id": SOURCE,
            "objective_id": None,
        },
    ),
    CheckIn: (
        SOURCE,
        {
            **_ROW,
            "key_result_id": SOURCE,
            "value": SOURCE,
            "confidence": SOURCE,
            "comment": None,
            "author_person_id": None,
            "supersedes_id": SOURCE,
            "effective_at": SOURCE,
            "recorded_at": SOURCE,
        },
    ),
    KpiMeasurement: (
        SOURCE,
        {
            **_ROW,
            "kpi_id": SOURCE,
            "value": SOURCE,
            "measured_at": SOURCE,
            "source": None,
            "external_id": None,
            "recorded_at": SOURCE,
        },
    ),
}


def effects_of(
    row: Base, *, changed: Iterable[str] = (), created: bool = False, removed: bool = False
) -> set[Effect]:
    """What writing `row` asks of the roll-up (a KeyError names a column nobody classified)."""
    on_row, columns = EFFECTS[type(row)]
    out = {columns[name] for name in changed}
    if created or removed:
        out.add(on_row)
    out.discard(None)
    return out  # type: ignore[return-value]


def targets(row: Base, effects: set[Effect]) -> dict[str, list[uuid.UUID]]:
    """The nodes (key results, objectives, cycles, KPIs) the effects name for `row`."""
    krs: list[uuid.UUID] = []
    objectives: list[uuid.UUID] = []
    cycles: list[uuid.UUID] = []
    kpis: list[uuid.UUID] = []
    if isinstance(row, KeyResult):
        if SELF in effects:
            krs.append(row.id)
    elif isinstance(row, Objective):
        if SELF in effects:
            objectives.append(row.id)
        if CYCLE in effects:
            cycles.append(row.cycle_id)
    elif isinstance(row, Alignment):
        if FED in effects:
            # The parent, named directly: it is fed by this edge whatever the edge says now.
            objectives.extend([row.parent_objective_id] if row.parent_objective_id else [])
            krs.extend([row.parent_key_result_id] if row.parent_key_result_id else [])
    elif isinstance(row, Cycle):
        if CYCLE in effects:
            cycles.append(row.id)
    elif isinstance(row, KpiLink):
        if SOURCE in effects and row.key_result_id is not None:
            krs.append(row.key_result_id)
    elif isinstance(row, CheckIn):
        if SOURCE in effects:
            krs.append(row.key_result_id)
    elif isinstance(row, KpiMeasurement):
        if SOURCE in effects:
            kpis.append(row.kpi_id)
    return {"key_results": krs, "objectives": objectives, "cycles": cycles, "kpis": kpis}


async def request_recalculation(
    session: AsyncSession,
    org_id: uuid.UUID,
    row: Base,
    *,
    type: str,
    subject_type: SubjectType,
    subject_id: uuid.UUID,
    changed: Iterable[str] = (),
    created: bool = False,
    removed: bool = False,
    written: Sequence[ScoreChange] = (),
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Emit the outbox event that asks for the roll-up `row`'s change needs; False when
    no number depends on what changed (and nothing was written synchronously)."""
    changed = list(changed)
    effects = effects_of(row, changed=changed, created=created, removed=removed)
    named = targets(row, effects)
    if not any(named.values()) and not written:
        return False
    recalc = recalc_payload(
        key_result_ids=named["key_results"],
        objective_ids=named["objectives"],
        cycle_ids=named["cycles"],
        kpi_ids=named["kpis"],
        written=[c.to_json() for c in written],
    )
    await emit(
        session,
        org_id=org_id,
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        payload={**(payload or {}), "recalc": recalc},
        now=now,
    )
    return True


async def request_roll_up_above(
    session: AsyncSession,
    org_id: uuid.UUID,
    key_result: KeyResult,
    *,
    type: str,
    written: Sequence[ScoreChange],
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Emit the event of a change that wrote its key result's own numbers itself (a
    check-in: `rescore_own` under the row lock). The roll-up starts above the key
    result, at its objective (a key result fed by check-ins feeds nothing else), and
    is asked for only when its score or status moved: the worker never re-derives
    what the write just computed."""
    if written:
        recalc = recalc_payload(
            objective_ids=[key_result.objective_id], written=[c.to_json() for c in written]
        )
        payload = {**payload, "recalc": recalc}
    await emit(
        session,
        org_id=org_id,
        type=type,
        subject_type=SubjectType.KEY_RESULT,
        subject_id=key_result.id,
        payload=payload,
        now=now,
    )
