"""Reads of API tokens: admins see all of the organisation's, others their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession

from okrgraph.domain.auth.tokens import Principal
from okrgraph.domain.graph.queries import Order, Page, page_of
from okrgraph.domain.models import ApiToken

NEWEST_FIRST = Order("created_at", descending=True)


def visible_tokens(principal: Principal) -> list[ColumnElement[bool]]:
    """The tokens `principal` may list (see `service.may_see_token`)."""
    if principal.is_admin:
        return []
    mine: list[ColumnElement[bool]] = [ApiToken.id == principal.token_id]
    if principal.person_id is not None:
        mine.append(ApiToken.person_id == principal.person_id)
    return [or_(*mine)]


async def tokens_page(
    session: AsyncSession, principal: Principal, page: Page, *, include_revoked: bool = False
) -> list[Any]:
    where = visible_tokens(principal)
    if not include_revoked:
        where.append(ApiToken.revoked_at.is_(None))
    return await page_of(session, ApiToken, where=where, order=NEWEST_FIRST, page=page)
