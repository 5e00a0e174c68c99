"""Tables of the chat database: conversations and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from growbin.core.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    # Still being streamed; a row left in this state means the process died mid-answer.
    STREAMING = "streaming"
    # The client went away (or the stream was stopped) before the answer ended.
    PARTIAL = "partial"
    FAILED = "failed"


class Answerer(StrEnum):
    MODEL = "model"
    OFFLINE = "offline"


class Conversation(Base):
    __tablename__ = "chat_conversations"
    __table_args__ = (Index("ix_chat_conversations_user_id_updated_at", "user_id", "updated_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Message(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_conversation_id_seq", "conversation_id", "seq"),
        Index("ix_chat_messages_user_id", "user_id"),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        CheckConstraint("status IN ('complete', 'streaming', 'partial', 'failed')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Monotonic order within the database (created_at ties within one transaction).
    seq: Mapped[int] = mapped_column(Integer, Identity(), unique=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    # Denormalised owner, so every read filters by owner without a join and purges are one
    # statement.
    user_id: Mapped[uuid.UUID]
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    answerer: Mapped[str | None] = mapped_column(String(16))
    scan_id: Mapped[uuid.UUID | None]
    # Knowledge-base entries the answer was given (`sources`) and the ones it cited.
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    citations: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    token_estimate: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
