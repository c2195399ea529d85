"""What the compiler knows: per GraphQL type, its table, the fields that are
plain SQL expressions, and the relations to follow. A field not listed here
(computed, paginated with `after`, filtered, private) makes the compiler fall
back to normal execution, so listing a field is a promise that its SQL gives
exactly what its resolver gives; tests/api/test_compiled.py holds it to that.

Templates use `{t}` for the row's alias, `{p}` for the parent's and `{c}` for
the child's. Orders mirror the resolvers' (okrgraph/schema/*/types.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def gid(type_name: str) -> str:
    """The Relay global id in SQL: urlsafe base64 of `Type:uuid` (as node.py).
    PostgreSQL's base64 breaks its output into lines of 76 characters (a type name
    of 22 characters or more makes the id longer): the newlines go with `+/`."""
    return (
        f"translate(encode(convert_to('{type_name}:' || {{t}}.id::text, 'UTF8'), 'base64'), "
        "'+/' || chr(10), '-_')"
    )


@dataclass(frozen=True)
class Relation:
    type_name: str  # the child's GraphQL type
    join: str  # condition on {p} (parent), {c} (child) and {l} (the `via` row)
    shape: str = "object"  # "object", "connection" (`first`, `nodes`) or "list" (`first`)
    order: str = ""  # ORDER BY (connections, lists; an object takes the first row)
    args: frozenset[str] = frozenset({"first"})  # arguments the compiler understands
    via: str = ""  # a link table joined to the child as {l}


@dataclass(frozen=True)
class TypeSpec:
    table: str
    leaves: dict[str, str]  # GraphQL field -> SQL expression on {t}
    relations: dict[str, Relation] = field(default_factory=dict)


def timestamp(column: str) -> str:
    """A timestamptz as Python's isoformat writes it (UTC; microseconds only when
    not zero, always six digits), so both paths give the same string."""
    c = f"{{t}}.{column}"
    return (
        f"CASE WHEN {c} IS NULL THEN NULL "
        # +-infinity (stored before the input bounds): what asyncpg reads them as,
        # datetime.max / datetime.min (naive), written by isoformat.
        f"WHEN {c} = 'infinity' THEN '9999-12-31T23:59:59.999999' "
        f"WHEN {c} = '-infinity' THEN '0001-01-01T00:00:00' ELSE "
        f"""to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') """
        f"|| CASE WHEN date_part('microseconds', {c})::bigint % 1000000 = 0 THEN '' "
        f"ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END || '+00:00' END"
    )


TIMESTAMPS = {
    "archived_at",
    "created_at",
    "updated_at",
    "last_check_in_at",
    "effective_at",
    "recorded_at",
    "measured_at",
}


def day(column: str) -> str:
    """A date as Python's isoformat writes it; +-infinity as asyncpg reads them
    (date.max, date.min), not PostgreSQL's 'infinity'."""
    c = f"{{t}}.{column}"
    return (
        f"CASE WHEN {c} = 'infinity' THEN '9999-12-31' "
        f"WHEN {c} = '-infinity' THEN '0001-01-01' ELSE to_char({c}, 'YYYY-MM-DD') END"
    )


DATES = {"starts_on", "ends_on"}


def _cols(*names: str) -> dict[str, str]:
    """Fields whose SQL is the column of the same (snake_case) name."""
    out = {}
    for name in names:
        column = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)
        if column in TIMESTAMPS:
            out[name] = timestamp(column)
        else:
            out[name] = day(column) if column in DATES else f"{{t}}.{column}"
    return out


def _many(type_name: str, fk: str, order: str) -> Relation:
    join = f"{{c}}.org_id = {{p}}.org_id AND {{c}}.{fk} = {{p}}.id"
    return Relation(type_name, join, "connection", order)


def _linked_kpis(column: str, shape: str) -> Relation:
    """KPIs linked to a key result or objective, in link order (kpis_linked); the
    list (`Objective.kpis`) takes `first`."""
    return Relation(
        "Kpi",
        f"{{l}}.org_id = {{p}}.org_id AND {{l}}.{column} = {{p}}.id",
        shape,
        "{l}.created_at, {l}.id",
        frozenset({"first"}) if shape == "list" else frozenset(),
        "kpi_links {l} ON {l}.org_id = {c}.org_id AND {l}.kpi_id = {c}.id",
    )


def _one(type_name: str, table_fk: str) -> Relation:
    return Relation(type_name, f"{{c}}.org_id = {{p}}.org_id AND {{c}}.id = {{p}}.{table_fk}")


BY_NAME = "{c}.name, {c}.id"
BY_CREATED = "{c}.created_at, {c}.id"
NEWEST_CHECK_IN = "{c}.effective_at DESC, {c}.id DESC"
NEWEST_MEASUREMENT = "{c}.measured_at DESC, {c}.id DESC"


# scoring.kpi_on_target, as the resolver computes it
KPI_ON_TARGET = (
    "CASE WHEN {t}.latest_value IS NULL OR {t}.target IS NULL THEN NULL "
    "WHEN {t}.direction = 'HIGHER_IS_BETTER' THEN {t}.latest_value >= {t}.target "
    "ELSE {t}.latest_value <= {t}.target END"
)

# The types the compiler may build, by hand: public to everyone in the
# organisation (transparency). A type with per-row visibility (node.py's
# `visible`: tokens, notifications, notification preferences, webhook endpoints
# and deliveries) must never be listed; compiler.compilable refuses it even then.
PUBLIC_TYPES = frozenset(
    {
        "Organization",
        "Team",
        "Person",
        "Membership",
        "Cycle",
        "Objective",
        "Alignment",
        "KeyResult",
        "CheckIn",
        "Initiative",
        "Kpi",
        "KpiMeasurement",
    }
)

TYPES: dict[str, TypeSpec] = {
    "Organization": TypeSpec(
        "organizations",
        {"id": gid("Organization"), **_cols("name", "slug", "timezone", "reminderCadenceDays")},
        {
            "people": Relation("Person", "{c}.org_id = {p}.id", "connection", BY_NAME),
            # `teams` lists top-level teams unless `all: true` (compiler.py handles `all`)
            "teams": Relation(
                "Team", "{c}.org_id = {p}.id", "connection", BY_NAME, frozenset({"first", "all"})
            ),
        },
    ),
    "Team": TypeSpec(
        "teams",
        {"id": gid("Team"), **_cols("name", "description", "archivedAt")},
        {
            "parent": _one("Team", "parent_team_id"),
            "children": _many("Team", "parent_team_id", BY_NAME),
            "members": _many("Membership", "team_id", BY_CREATED),
            "objectives": _many("Objective", "owner_team_id", BY_CREATED),
        },
    ),
    "Person": TypeSpec(
        "people",
        {"id": gid("Person"), **_cols("name", "email", "orgRole", "archivedAt")},
        {
            "memberships": _many("Membership", "person_id", BY_CREATED),
            "objectives": _many("Objective", "owner_person_id", BY_CREATED),
        },
    ),
    "Membership": TypeSpec(
        "memberships",
        {"id": gid("Membership"), **_cols("role")},
        {"team": _one("Team", "team_id"), "person": _one("Person", "person_id")},
    ),
    "Cycle": TypeSpec(
        "cycles",
        {"id": gid("Cycle"), **_cols("name", "cadence", "startsOn", "endsOn", "state")},
        {
            "parent": _one("Cycle", "parent_cycle_id"),
            "children": _many("Cycle", "parent_cycle_id", "{c}.starts_on DESC, {c}.id DESC"),
            "objectives": _many("Objective", "cycle_id", BY_CREATED),
        },
    ),
    "Objective": TypeSpec(
        "objectives",
        {
            "id": gid("Objective"),
            **_cols(
                "title",
                "description",
                "level",
                "state",
                "progressDriver",
                "progress",
                "status",
                "finalScore",
                "createdAt",
                "updatedAt",
            ),
        },
        {
            "cycle": _one("Cycle", "cycle_id"),
            "ownerTeam": _one("Team", "owner_team_id"),
            "ownerPerson": _one("Person", "owner_person_id"),
            "carriedOverFrom": _one("Objective", "carried_over_from_id"),
            "keyResults": _many("KeyResult", "objective_id", BY_CREATED),
            "parents": _many("Alignment", "child_objective_id", BY_CREATED),
            "children": _many("Alignment", "parent_objective_id", BY_CREATED),
            "kpis": _linked_kpis("objective_id", "list"),
        },
    ),
    "Alignment": TypeSpec(
        "alignments",
        {"id": gid("Alignment"), **_cols("weight", "contributes")},
        {
            "child": _one("Objective", "child_objective_id"),
            "parentObjective": _one("Objective", "parent_objective_id"),
            "parentKeyResult": _one("KeyResult", "parent_key_result_id"),
        },
    ),
    "KeyResult": TypeSpec(
        "key_results",
        {
            "id": gid("KeyResult"),
            **_cols(
                "title",
                "kind",
                "unit",
                "weight",
                "progressDriver",
                "stretch",
                "state",
                "score",
                "status",
                "confidence",
                "finalScore",
                "lastCheckInAt",
            ),
            "start": "{t}.start_value",
            "target": "{t}.target_value",
            "current": "{t}.current_value",
        },
        {
            "objective": _one("Objective", "objective_id"),
            "owner": _one("Person", "owner_person_id"),
            "checkIns": _many("CheckIn", "key_result_id", NEWEST_CHECK_IN),
            "initiatives": _many("Initiative", "key_result_id", BY_CREATED),
            "children": _many("Alignment", "parent_key_result_id", BY_CREATED),
            "kpi": _linked_kpis("key_result_id", "object"),
        },
    ),
    "CheckIn": TypeSpec(
        "check_ins",
        {
            "id": gid("CheckIn"),
            **_cols("value", "confidence", "comment", "effectiveAt", "recordedAt"),
        },
        {
            "author": _one("Person", "author_person_id"),
            "supersedes": _one("CheckIn", "supersedes_id"),
            "keyResult": _one("KeyResult", "key_result_id"),
        },
    ),
    "Initiative": TypeSpec(
        "initiatives",
        {"id": gid("Initiative"), **_cols("title", "status", "link")},
        {"owner": _one("Person", "owner_person_id")},
    ),
    "Kpi": TypeSpec(
        "kpis",
        {
            "id": gid("Kpi"),
            **_cols(
                "name",
                "description",
                "unit",
                "direction",
                "target",
                "warningThreshold",
                "criticalThreshold",
                "cadence",
                "health",  # kept with latest_value by kpis.service.refresh_kpis
            ),
            "onTarget": KPI_ON_TARGET,
        },
        {
            "ownerTeam": _one("Team", "owner_team_id"),
            "measurements": _many("KpiMeasurement", "kpi_id", NEWEST_MEASUREMENT),
            # the newest measurement: a one-row "connection" read as an object
            "latest": Relation(
                "KpiMeasurement",
                "{c}.org_id = {p}.org_id AND {c}.kpi_id = {p}.id",
                "object",
                NEWEST_MEASUREMENT,
            ),
        },
    ),
    "KpiMeasurement": TypeSpec(
        "kpi_measurements",
        {"id": gid("KpiMeasurement"), **_cols("value", "measuredAt", "source", "externalId")},
    ),
}
