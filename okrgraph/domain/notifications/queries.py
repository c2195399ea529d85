"""The notifier's reads: who hears about a thing, and the names a notification uses.

- an objective's owners: its owner person and, when a team owns it, the team's
  leads (memberships with role LEAD);
- a key result's owner: its owner person, or when it has none its objective's owners;
- a team's leads; the organisation's admins (for what no team owns);
- who made a change (its audit entry's person), people's and cycles' names.

Each takes many ids at once (one statement per call, whatever the batch holds).
Archived people are dropped later, by `notify`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass
class Owned:
    """A key result or objective, by title, and the people who own it."""

    id: uuid.UUID
    title: str
    owners: set[uuid.UUID] = field(default_factory=set)


async def objective_owners(
    session: AsyncSession, org_id: uuid.UUID, objective_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Owned]:
    """The objectives among `objective_ids` that exist, with their owners."""
    if not objective_ids:
        return {}
    rows = await session.execute(
        text(
            """
            SELECT o.id, o.title, o.owner_person_id AS person FROM objectives o
            WHERE o.org_id = CAST(:org AS uuid) AND o.id = ANY(CAST(:ids AS uuid[]))
            UNION ALL
            SELECT o.id, o.title, m.person_id FROM objectives o
            JOIN memberships m ON m.org_id = o.org_id AND m.team_id = o.owner_team_id
                              AND m.role = 'LEAD'
            WHERE o.org_id = CAST(:org AS uuid) AND o.id = ANY(CAST(:ids AS uuid[]))
            """
        ),
        {"org": org_id, "ids": list(objective_ids)},
    )
    out: dict[uuid.UUID, Owned] = {}
    for r in rows:
        owned = out.setdefault(r.id, Owned(r.id, r.title))
        if r.person is not None:
            owned.owners.add(r.person)
    return out


async def key_result_owners(
    session: AsyncSession, org_id: uuid.UUID, key_result_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Owned]:
    """The key results among `key_result_ids` that exist, with their owners."""
    if not key_result_ids:
        return {}
    rows = (
        await session.execute(
            text(
                """
                SELECT id, title, objective_id, owner_person_id FROM key_results
                WHERE org_id = CAST(:org AS uuid) AND id = ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"org": org_id, "ids": list(key_result_ids)},
        )
    ).all()
    unowned = {r.objective_id for r in rows if r.owner_person_id is None}
    objectives = await objective_owners(session, org_id, unowned)
    out: dict[uuid.UUID, Owned] = {}
    for r in rows:
        if r.owner_person_id is not None:
            out[r.id] = Owned(r.id, r.title, {r.owner_person_id})
        else:
            objective = objectives.get(r.objective_id)
            out[r.id] = Owned(r.id, r.title, set(objective.owners) if objective else set())
    return out


async def team_leads(
    session: AsyncSession, org_id: uuid.UUID, team_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Each team's leads (a team without leads is missing)."""
    if not team_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT team_id, person_id FROM memberships WHERE org_id = CAST(:org AS uuid) "
            "AND team_id = ANY(CAST(:ids AS uuid[])) AND role = 'LEAD'"
        ),
        {"org": org_id, "ids": list(team_ids)},
    )
    out: dict[uuid.UUID, set[uuid.UUID]] = {}
    for team_id, person_id in rows:
        out.setdefault(team_id, set()).add(person_id)
    return out


async def admins(session: AsyncSession, org_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.execute(
        text(
            "SELECT id FROM people WHERE org_id = CAST(:org AS uuid) AND org_role = 'ADMIN' "
            "AND archived_at IS NULL"
        ),
        {"org": org_id},
    )
    return {r[0] for r in rows}


async def org_timezone(session: AsyncSession, org_id: uuid.UUID) -> ZoneInfo:
    """The organisation's time zone (UTC when it names none that exists)."""
    name = await session.scalar(
        text("SELECT timezone FROM organizations WHERE id = CAST(:org AS uuid)"), {"org": org_id}
    )
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def actors(
    session: AsyncSession, org_id: uuid.UUID, action: str, subject_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The person whose audit entry `action` names each subject (none for the system or
    an integration token)."""
    if not subject_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT subject_id, actor_person_id FROM audit_entries "
            "WHERE org_id = CAST(:org AS uuid) AND action = :action "
            "AND subject_id = ANY(CAST(:ids AS uuid[])) AND actor_person_id IS NOT NULL"
        ),
        {"org": org_id, "action": action, "ids": list(subject_ids)},
    )
    return {r[0]: r[1] for r in rows}


async def person_names(
    session: AsyncSession, org_id: uuid.UUID, person_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not person_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT id, name FROM people WHERE org_id = CAST(:org AS uuid) "
            "AND id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"org": org_id, "ids": list(person_ids)},
    )
    return {r[0]: r[1] for r in rows}


async def cycle_name(session: AsyncSession, org_id: uuid.UUID, cycle_id: uuid.UUID) -> str | None:
    name = await session.scalar(
        text(
            "SELECT name FROM cycles WHERE org_id = CAST(:org AS uuid) AND id = CAST(:id AS uuid)"
        ),
        {"org": org_id, "id": cycle_id},
    )
    return str(name) if name is not None else None
