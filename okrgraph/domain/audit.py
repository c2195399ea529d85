"""The audit log: one entry per change, written by the service that makes it.

`subject_type` is a `SubjectType` (one spelling, kept by a check constraint), so
the log can be queried by subject.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.models import AuditEntry
from okrgraph.domain.models.enums import SubjectType


def record_audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    subject_type: SubjectType,
    subject_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """`at`: when (default the database's clock; services on okrgraph's clock pass it)."""
    entry = AuditEntry(
        org_id=principal.org_id,
        actor_person_id=principal.person_id,
        actor_token_id=principal.token_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        changes=_jsonable(changes or {}),
    )
    if at is not None:
        entry.created_at = at
    session.add(entry)


def subject_type_of(row: object) -> SubjectType:
    """The subject type of a model row (`KeyResult` -> KEY_RESULT, `Kpi` -> KPI)."""
    return SubjectType[re.sub(r"(?<!^)(?=[A-Z])", "_", type(row).__name__).upper()]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)
