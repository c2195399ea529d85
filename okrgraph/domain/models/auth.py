"""API tokens and mutation idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from okrgraph.domain.models.base import Base, TenantMixin, tenant_fk


class ApiToken(TenantMixin, Base):
    """A bearer token, stored as its SHA-256; the secret is shown once at creation."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        tenant_fk(["person_id"], "people"),
        CheckConstraint(
            "num_nonnulls(person_id, integration_name) = 1", name="person_or_integration"
        ),
        CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin']::varchar[] AND cardinality(scopes) > 0",
            name="scopes_known",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    person_id: Mapped[uuid.UUID | None]
    integration_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(TenantMixin, Base):
    """The first result of a mutation called with an `idempotencyKey`."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        tenant_fk(["token_id"], "api_tokens"),
        UniqueConstraint("org_id", "token_id", "key"),
    )

    token_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
