"""A request's one transaction (issue 11): its first statement checks the token and
sets the tenant (tokens.authenticate_in); the view's `served` closes it."""

from __future__ import annotations

from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import Request

from okrgraph.domain.auth.tokens import Principal, authenticate_in

INVALID_TOKEN = "Invalid, expired or revoked API token."


async def begin_request(request: Request, token: str) -> Principal:
    """The request's one transaction, its first statement checking the token and
    setting the tenant (401 for a bad token); `served` closes it."""
    session = request.state.session = request.app.state.sessionmaker()
    authenticated = await authenticate_in(session, token)
    if authenticated is None:
        raise HTTPException(401, INVALID_TOKEN)
    request.state.authenticated = authenticated
    return authenticated.principal


async def check_token(request: Request, token: str) -> None:
    """Only the token's check, for an answer that reads nothing else (introspection):
    one statement in PostgreSQL's implicit transaction, no BEGIN and ROLLBACK around
    it. When the app's sessions share one connection's transaction (tests), in it."""
    bind = request.app.state.sessionmaker.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        await begin_request(request, token)
        return
    async with bind.connect() as connection:
        alone = await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=alone) as session:
            authenticated = await authenticate_in(session, token)
    if authenticated is None:
        raise HTTPException(401, INVALID_TOKEN)
    request.state.authenticated = authenticated
