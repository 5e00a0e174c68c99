"""API shapes of the chat domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from growbin.chat.models import Answerer, MessageStatus, Role

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# A hard cap on the body; the configured per-message limit (GROWBIN_CHAT__MAX_MESSAGE_CHARS)
# is checked in the service so it can be changed without a new API schema.
HARD_MAX_MESSAGE_CHARS = 8000


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None


class ConversationRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title


class Conversation(BaseModel):
    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationList(BaseModel):
    items: list[Conversation]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=HARD_MAX_MESSAGE_CHARS)
    scan_id: uuid.UUID | None = Field(
        default=None, description="One of your scans this question is about"
    )


class Source(BaseModel):
    ref: str
    name: dict[str, str]


class Message(BaseModel):
    id: uuid.UUID
    role: Role
    content: str
    status: MessageStatus
    answerer: Answerer | None
    scan_id: uuid.UUID | None
    sources: list[Source]
    citations: list[str]
    created_at: datetime


class MessageList(BaseModel):
    items: list[Message]
