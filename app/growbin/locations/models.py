from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, Index, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from growbin.core.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class GeographyPoint(UserDefinedType):
    """PostGIS ``geography(Point, 4326)``; read and written through SQL functions."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "geography(Point, 4326)"


class DropOffPoint(Base):
    __tablename__ = "drop_off_points"
    __table_args__ = (
        UniqueConstraint("name", "address", name="uq_drop_off_points_name_address"),
        Index("ix_drop_off_points_location", "location", postgresql_using="gist"),
        Index("ix_drop_off_points_categories", "categories", postgresql_using="gin"),
        CheckConstraint("cardinality(categories) > 0", name="has_category"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    opening_hours: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[object] = mapped_column(GeographyPoint())
    source: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
