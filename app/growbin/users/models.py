from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from growbin.core.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Profile(Base):
    __tablename__ = "profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(50))
    preferred_language: Mapped[str] = mapped_column(String(2), server_default="ko")
    district: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CategoryStat(Base):
    """Scans per knowledge-base category for one user, written by the scans pipeline."""

    __tablename__ = "category_stats"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    scans: Mapped[int] = mapped_column(Integer, server_default="0")
    last_scan_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
