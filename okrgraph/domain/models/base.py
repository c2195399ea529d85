"""Declarative base, naming convention and the tenant key pattern.

Every tenant table has the primary key `(org_id, id)` and references other
tenant rows through composite foreign keys `(org_id, x_id)`, so a row can
never point at another organisation's row.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, ForeignKeyConstraint, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def enum_column(cls: type[enum.Enum], name: str) -> Enum:
    """A text column restricted by a CHECK constraint (easier to evolve than a PG enum)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.name) for m in cls),
        validate_strings=True,
    )


def tenant_fk(columns: list[str], target: str, **kw: Any) -> ForeignKeyConstraint:
    """Composite FK `(org_id, x_id) -> target(org_id, id)`."""
    return ForeignKeyConstraint(["org_id", *columns], [f"{target}.org_id", f"{target}.id"], **kw)


class TenantMixin:
    """`(org_id, id)` primary key; `org_id` references the organisation."""

    @declared_attr
    def org_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805
        return mapped_column(
            ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, sort_order=-20
        )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-10)
