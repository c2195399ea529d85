"""Declared permissions: every field says what it needs, checked here only."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from okrgraph.domain.auth.tokens import Principal
from okrgraph.schema.context import Info
from okrgraph.schema.errors import NotAllowed, NotAuthenticated


def require_principal(info: Info) -> Principal:
    principal = info.context.principal
    if principal is None:
        raise NotAuthenticated()
    return principal


class CanRead(BasePermission):
    """Everyone in an organisation reads its graph (transparency)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = require_principal(info)
        if not principal.has_scope("read"):
            raise NotAllowed("This token lacks the `read` scope.")
        return True


class IsAdmin(BasePermission):
    """Admins with an `admin`-scoped token (organisation settings)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not require_principal(info).is_admin:
            raise NotAllowed("Only admins (with an `admin`-scoped token) read this.")
        return True
