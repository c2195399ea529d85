"""Reading one row to change it, or NotFound."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.errors import NotFound
from okrgraph.domain.models import Base

M = TypeVar("M", bound=Base)


async def get_row(session: AsyncSession, model: type[M], id: uuid.UUID) -> M:
    """The row with this id in the transaction's organisation (row-level security
    hides every other one), or NotFound: another organisation's id is not found."""
    id_column: Any = model.id  # type: ignore[attr-defined]
    row = (await session.execute(select(model).where(id_column == id))).scalar_one_or_none()
    if row is None:
        raise NotFound(model.__name__, id)
    return row
