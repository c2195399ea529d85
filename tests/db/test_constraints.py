"""Every check constraint of the schema refuses what it should and accepts a
valid value; a constraint without a case here fails `test_every_check_constraint_is_covered`.

Enum columns are text with a CHECK (see `enum_column`): their cases are
generated from the models, and the bad value goes in as raw SQL text
(`literal(...)`), past the ORM's own validation.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, Enum, String, literal, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.cycles.carry_over import CarryOverPolicy
from okrgraph.domain.models import Base
from okrgraph.domain.models.enums import Cadence, Direction, KeyResultKind, Level
from tests.db.pg_errors import CHECK_VIOLATION, pg_error
from tests.factories import (
    FACTORIES,
    make_check_in,
    make_cycle,
    make_objective,
    make_org,
    make_team,
)

Build = Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]


def row(table: str, **fields: Any) -> Build:
    """A row of `table` through its factory, with `fields` overridden."""
    return lambda session, org_id: FACTORIES[table](session, org_id, **fields)


@dataclass(frozen=True)
class Case:
    constraint: str
    bad: list[Build]
    good: list[Build] = field(default_factory=list)


async def team_own_parent(s: AsyncSession, org: uuid.UUID) -> Any:
    same = uuid.uuid4()
    return await make_team(s, org, id=same, parent_team_id=same)


async def team_with_parent(s: AsyncSession, org: uuid.UUID) -> Any:
    return await make_team(s, org, parent_team_id=(await make_team(s, org)).id)


async def cycle_own_parent(s: AsyncSession, org: uuid.UUID) -> Any:
    same = uuid.uuid4()
    return await make_cycle(s, org, id=same, parent_cycle_id=same)


async def quarter_in_year(s: AsyncSession, org: uuid.UUID) -> Any:
    year = await make_cycle(s, org, cadence=Cadence.YEAR)
    return await make_cycle(s, org, parent_cycle_id=year.id)


async def objective_aligned_to_itself(s: AsyncSession, org: uuid.UUID) -> Any:
    objective = await make_objective(s, org)
    return await row(
        "alignments", child_objective_id=objective.id, parent_objective_id=objective.id
    )(s, org)


async def check_in_superseding_itself(s: AsyncSession, org: uuid.UUID) -> Any:
    same = uuid.uuid4()
    return await make_check_in(s, org, id=same, supersedes_id=same)


async def check_in_superseding_another(s: AsyncSession, org: uuid.UUID) -> Any:
    first = await make_check_in(s, org)
    return await make_check_in(s, org, key_result_id=first.key_result_id, supersedes_id=first.id)


async def token_of_person_and_integration(s: AsyncSession, org: uuid.UUID) -> Any:
    person = await FACTORIES["people"](s, org)
    return await row("api_tokens", person_id=person.id, integration_name="ci")(s, org)  # type: ignore[attr-defined]


async def token_of_person(s: AsyncSession, org: uuid.UUID) -> Any:
    person = await FACTORIES["people"](s, org)
    return await row("api_tokens", person_id=person.id)(s, org)  # type: ignore[attr-defined]


async def key_result_parent(s: AsyncSession, org: uuid.UUID) -> Any:
    kr = await FACTORIES["key_results"](s, org)
    return await row("alignments", parent_key_result_id=kr.id)(s, org)  # type: ignore[attr-defined]


async def key_result_and_objective_parents(s: AsyncSession, org: uuid.UUID) -> Any:
    kr = await FACTORIES["key_results"](s, org)
    parent = await make_objective(s, org)
    return await row(
        "alignments",
        parent_key_result_id=kr.id,  # type: ignore[attr-defined]
        parent_objective_id=parent.id,
    )(s, org)


async def kpi_link_to_objective(s: AsyncSession, org: uuid.UUID) -> Any:
    return await row("kpi_links", objective_id=(await make_objective(s, org)).id)(s, org)


async def kpi_link_to_both(s: AsyncSession, org: uuid.UUID) -> Any:
    kr = await FACTORIES["key_results"](s, org)
    objective = await make_objective(s, org)
    return await row("kpi_links", key_result_id=kr.id, objective_id=objective.id)(s, org)  # type: ignore[attr-defined]


def unit_interval(table: str, column: str, constraint: str, *, nullable: bool = False) -> Case:
    good = [row(table, **{column: v}) for v in (0.0, 0.5, 1.0)]
    if nullable:
        good.append(row(table, **{column: None}))
    bad = [row(table, **{column: v}) for v in (-0.01, 1.01)]
    return Case(constraint, bad, good)


def not_empty(table: str, column: str, constraint: str) -> Case:
    return Case(constraint, [row(table, **{column: ""})], [row(table, **{column: "x"})])


def not_negative(table: str, column: str, constraint: str) -> Case:
    return Case(constraint, [row(table, **{column: -1})], [row(table, **{column: 0})])


def confidence(table: str) -> Case:
    return Case(
        f"ck_{table}_confidence_0_to_10",
        [row(table, confidence=v) for v in (-1, 11)],
        [row(table, confidence=v) for v in (0, 10, None)],
    )


INC, DEC = KeyResultKind.INCREASE, KeyResultKind.DECREASE
HIGHER, LOWER = Direction.HIGHER_IS_BETTER, Direction.LOWER_IS_BETTER
Q4 = date(2026, 10, 1)

CASES = [
    Case(
        "ck_organizations_reminder_cadence_positive",
        [row("organizations", reminder_cadence_days=v) for v in (0, -7)],
        [row("organizations", reminder_cadence_days=1)],
    ),
    Case(
        "ck_organizations_rollup_mode_known",
        [row("organizations", rollup_mode=v) for v in ("MEDIAN", "")],
        [row("organizations", rollup_mode="WEIGHTED_MEAN")],
    ),
    Case("ck_teams_not_own_parent", [team_own_parent], [team_with_parent]),
    Case(
        "ck_people_email_has_at",
        [row("people", email=v) for v in ("ada.example.test", "@example.test")],
        [row("people", email="a@b")],
    ),
    Case(
        "ck_cycles_ends_after_start",
        [row("cycles", starts_on=Q4, ends_on=d) for d in (Q4, date(2026, 9, 30))],
        [row("cycles", starts_on=Q4, ends_on=date(2026, 10, 2))],
    ),
    Case("ck_cycles_not_own_parent", [cycle_own_parent], [quarter_in_year]),
    Case(
        "ck_objectives_individual_has_person",
        [row("objectives", level=Level.INDIVIDUAL, owner_person_id=None)],
        [row("objectives", level=Level.INDIVIDUAL)],
    ),
    Case(
        "ck_objectives_team_has_team",
        [row("objectives", level=Level.TEAM, owner_team_id=None)],
        [row("objectives", level=Level.TEAM)],
    ),
    unit_interval("objectives", "progress", "ck_objectives_progress_in_unit"),
    unit_interval("objectives", "final_score", "ck_objectives_final_score_in_unit", nullable=True),
    not_empty("objectives", "title", "ck_objectives_title_not_empty"),
    Case(
        "ck_alignments_exactly_one_parent",
        [
            row("alignments", parent_objective_id=None, parent_key_result_id=None),
            key_result_and_objective_parents,
        ],
        [key_result_parent],
    ),
    Case("ck_alignments_not_own_parent", [objective_aligned_to_itself], [row("alignments")]),
    not_negative("alignments", "weight", "ck_alignments_weight_not_negative"),
    unit_interval("reflections", "final_score", "ck_reflections_final_score_in_unit"),
    Case(
        "ck_key_results_target_differs_from_start",
        [row("key_results", kind=k, start_value=5, target_value=5) for k in (INC, DEC)],
        [
            *[
                row("key_results", kind=k, start_value=5, target_value=5)
                for k in (KeyResultKind.ABOVE, KeyResultKind.BELOW, KeyResultKind.MILESTONE)
            ],
            row("key_results", kind=INC, start_value=5, target_value=6),
            row("key_results", kind=DEC, start_value=5, target_value=4),
        ],
    ),
    Case(
        "ck_key_results_weight_not_negative",
        [row("key_results", weight=-0.5)],
        [row("key_results", weight=v) for v in (0, 2.5)],
    ),
    unit_interval("key_results", "score", "ck_key_results_score_in_unit"),
    unit_interval(
        "key_results", "final_score", "ck_key_results_final_score_in_unit", nullable=True
    ),
    confidence("key_results"),
    not_empty("key_results", "title", "ck_key_results_title_not_empty"),
    confidence("check_ins"),
    Case("ck_check_ins_not_self", [check_in_superseding_itself], [check_in_superseding_another]),
    not_empty("initiatives", "title", "ck_initiatives_title_not_empty"),
    Case(
        "ck_kpis_thresholds_ordered",
        [
            row("kpis", direction=HIGHER, warning_threshold=60, critical_threshold=80),
            row("kpis", direction=LOWER, warning_threshold=30, critical_threshold=20),
        ],
        [
            row("kpis", direction=HIGHER, warning_threshold=80, critical_threshold=60),
            row("kpis", direction=HIGHER, warning_threshold=80, critical_threshold=80),
            row("kpis", direction=LOWER, warning_threshold=20, critical_threshold=30),
            row("kpis", direction=LOWER, warning_threshold=None, critical_threshold=5),
        ],
    ),
    not_empty("kpis", "name", "ck_kpis_name_not_empty"),
    Case(
        "ck_kpi_links_exactly_one_target",
        [
            row("kpi_links", key_result_id=None, objective_id=None),
            kpi_link_to_both,
        ],
        [kpi_link_to_objective, row("kpi_links")],
    ),
    Case(
        "ck_api_tokens_person_or_integration",
        [
            token_of_person_and_integration,
            row("api_tokens", person_id=None, integration_name=None),
        ],
        [token_of_person, row("api_tokens", integration_name="ci")],
    ),
    Case(
        "ck_api_tokens_scopes_known",
        [row("api_tokens", scopes=v) for v in (["read", "root"], ["READ"], [])],
        [row("api_tokens", scopes=v) for v in (["admin"], ["read", "write", "admin"])],
    ),
    Case(
        "ck_webhook_endpoints_url_is_http",
        [
            row("webhook_endpoints", url=v)
            for v in ("ftp://hooks.example.test", "hooks.example.test", "javascript:alert(1)")
        ],
        [row("webhook_endpoints", url=v) for v in ("http://h.test/x", "https://h.test/x")],
    ),
    not_negative(
        "webhook_endpoints", "failure_count", "ck_webhook_endpoints_failure_count_not_negative"
    ),
    Case(
        "ck_webhook_endpoints_secret_not_plaintext",
        [row("webhook_endpoints", secret_sealed="whsec_" + "A" * 44)],
        [row("webhook_endpoints", secret_sealed="v1.k.data")],
    ),
    Case(
        "ck_webhook_endpoints_enabled_has_secret",
        [row("webhook_endpoints", secret_sealed=None, enabled=True)],
        [row("webhook_endpoints", secret_sealed=None, enabled=False)],
    ),
    not_negative("webhook_deliveries", "attempts", "ck_webhook_deliveries_attempts_not_negative"),
    Case(
        "ck_webhook_attempts_attempt_positive",
        [row("webhook_attempts", attempt=0)],
        [row("webhook_attempts", attempt=1)],
    ),
    not_negative("webhook_attempts", "duration_ms", "ck_webhook_attempts_duration_not_negative"),
    not_negative("notification_sends", "attempts", "ck_notification_sends_attempts_not_negative"),
    not_negative("close_jobs", "attempts", "ck_close_jobs_attempts_not_negative"),
    Case(
        "ck_close_jobs_carry_over_policy",
        [row("close_jobs", carry_over="carry_remainder"), row("close_jobs", carry_over="")],
        [row("close_jobs", carry_over=p.value) for p in CarryOverPolicy],
    ),
    Case(
        "ck_kpis_alert_level_known",
        [row("kpis", alert_level="warning"), row("kpis", alert_level="")],
        [row("kpis", alert_level="WARNING"), row("kpis", alert_level=None)],
    ),
    unit_interval("score_history", "value", "ck_score_history_value_in_unit"),
]


def enum_cases() -> list[Case]:
    """Per enum column: an unknown or wrongly cased value refused, every member accepted."""
    cases = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, Enum):
                continue
            members = list(column.type.enum_class or [])
            assert members, column
            raw = [literal(v, String()) for v in ("NOPE", members[0].value.lower())]
            cases.append(
                Case(
                    f"ck_{table.name}_{column.type.name}",
                    [row(table.name, **{column.name: v}) for v in raw],
                    [row(table.name, **{column.name: m}) for m in members],
                )
            )
    return cases


ALL_CASES = CASES + enum_cases()


async def violated(session: AsyncSession, org_id: uuid.UUID, build: Build) -> str | None:
    """The check constraint the row violates (None if it was accepted); never kept."""
    nested = await session.begin_nested()
    try:
        await build(session, org_id)
    except DBAPIError as exc:
        error = pg_error(exc)
        return error.constraint if error.sqlstate == CHECK_VIOLATION else error.message
    finally:
        await nested.rollback()  # also undoes make_org's switch of the tenant
    return None


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.constraint)
async def test_check_constraint(db: AsyncSession, case: Case) -> None:
    org = await make_org(db)
    assert case.bad
    assert case.good
    assert [await violated(db, org.id, bad) for bad in case.bad] == [case.constraint] * len(
        case.bad
    )
    assert [await violated(db, org.id, good) for good in case.good] == [None] * len(case.good)


def test_every_check_constraint_of_the_models_is_covered() -> None:
    in_models = {
        str(c.name)
        for table in Base.metadata.tables.values()
        for c in table.constraints
        if isinstance(c, CheckConstraint)
    }
    covered = [case.constraint for case in ALL_CASES]
    assert len(covered) == len(set(covered)), "one case per constraint"
    assert set(covered) == in_models


async def test_every_check_constraint_in_the_database_is_covered(db: AsyncSession) -> None:
    in_database = (
        await db.execute(
            text(
                "SELECT conname FROM pg_constraint"
                " WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
            )
        )
    ).scalars()
    assert set(in_database) == {case.constraint for case in ALL_CASES}
