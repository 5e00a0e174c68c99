"""SQL of the chat domain. Every read and write names the owner: no query reaches another
user's rows, whatever identifiers a request carries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.chat.models import Conversation, Message


async def create_conversation(
    session: AsyncSession, user_id: uuid.UUID, title: str
) -> Conversation:
    conversation = Conversation(id=uuid.uuid4(), user_id=user_id, title=title)
    session.add(conversation)
    await session.flush()
    await session.refresh(conversation)
    return conversation


async def conversation(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )


async def conversations(
    session: AsyncSession, user_id: uuid.UUID, limit: int
) -> list[Conversation]:
    result = await session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(Conversation.updated_at.desc(), Conversation.id)
        .limit(limit)
    )
    return list(result)


async def touch(session: AsyncSession, conversation_id: uuid.UUID) -> None:
    await session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(updated_at=func.now())
    )


async def delete_conversation(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> bool:
    result = await session.execute(
        delete(Conversation).where(
            Conversation.id == conversation_id, Conversation.user_id == user_id
        )
    )
    return result.rowcount > 0


async def add_message(session: AsyncSession, **values: Any) -> Message:
    message = Message(id=uuid.uuid4(), **values)
    session.add(message)
    await session.flush()
    await session.refresh(message)
    return message


async def finish_message(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    content: str,
    status: str,
    citations: list[str],
    token_estimate: int,
    answerer: str,
) -> None:
    await session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            content=content,
            status=status,
            citations=citations,
            token_estimate=token_estimate,
            answerer=answerer,
        )
    )


async def messages(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[Message]:
    result = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.user_id == user_id)
        .order_by(Message.seq)
    )
    return list(result)


async def recent_messages(
    session: AsyncSession,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    *,
    before_seq: int,
    limit: int,
) -> list[Message]:
    """The newest ``limit`` messages before ``before_seq``, newest first."""
    result = await session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.user_id == user_id,
            Message.seq < before_seq,
        )
        .order_by(Message.seq.desc())
        .limit(limit)
    )
    return list(result)


async def delete_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(Message).where(Message.user_id == user_id))
    await session.execute(delete(Conversation).where(Conversation.user_id == user_id))
