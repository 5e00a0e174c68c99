from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from growbin.core.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class ScanStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    STORED = "stored"
    CLASSIFYING = "classifying"
    COMPLETED = "completed"
    NEEDS_CLARIFICATION = "needs_clarification"
    FAILED = "failed"


TERMINAL_STATUSES = frozenset(
    {ScanStatus.COMPLETED, ScanStatus.NEEDS_CLARIFICATION, ScanStatus.FAILED}
)

# Progress only moves forward: a state is written only over a lower stage, so a redelivered
# task or a replayed journal entry can never undo progress or write a second result.
STAGES: dict[ScanStatus, int] = {
    ScanStatus.QUEUED: 0,
    ScanStatus.PROCESSING: 1,
    ScanStatus.STORED: 2,
    ScanStatus.CLASSIFYING: 3,
    ScanStatus.COMPLETED: 4,
    ScanStatus.NEEDS_CLARIFICATION: 4,
    ScanStatus.FAILED: 4,
}


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_scans_user_id_idempotency_key"),
        Index("ix_scans_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # sha256 of what the request asked for, to tell a retry from a reused key.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    stage: Mapped[int] = mapped_column(SmallInteger)
    source_key: Mapped[str] = mapped_column(String(512))
    image_key: Mapped[str | None] = mapped_column(String(512))
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    category: Mapped[str | None] = mapped_column(String(64))
    item: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    classifier: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    stats_recorded: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """A task the scan API hands to the workers, written in the transaction that accepts it.

    The relay (growbin.scans.outbox) publishes pending rows in ``id`` order with publisher
    confirms and then sets ``sent_at``; sent rows are kept for a while, then pruned.
    """

    __tablename__ = "scan_outbox"
    __table_args__ = (
        # The relay reads only pending rows, oldest first.
        Index("ix_scan_outbox_pending", "id", postgresql_where="sent_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    # The Celery task id: fixed per scan and stage, so a second publish is recognisable.
    task_id: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
