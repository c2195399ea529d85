"""Reading one row to change it, or NotFound."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.errors import NotFound
from okrgraph.domain.models import Base

M = TypeVar("M", bound=Base)


async def get_row(
    session: AsyncSession, model: type[M], id: uuid.UUID, *, for_update: bool = False
) -> M:
    """The row with this id in the transaction's organisation (row-level security
    hides every other one), or NotFound: another organisation's id is not found.
    `for_update` locks it until the transaction ends."""
    id_column: Any = model.id  # type: ignore[attr-defined]
    query = select(model).where(id_column == id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(model.__name__, id)
    return row
