"""Chat: conversations, and answers streamed token by token while they are generated.

An answer streams from this process (the chat API node) straight from the model over the
async OpenAI client: no queue hop between the model's first token and the user's (see the
"Chat" section of app/README.md). The stream owns its cleanup: whether it ends normally,
fails, or the client disconnects, the upstream model response is closed and the assistant
message is stored with what was generated and a status saying which of those happened.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import anyio
from openai import APIError
from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.chat import knowledge, offline, prompts, repository
from growbin.chat.knowledge import Entry
from growbin.chat.models import Answerer, Conversation, Message, MessageStatus, Role
from growbin.chat.schemas import Conversation as ConversationView
from growbin.chat.schemas import ConversationList, MessageList
from growbin.chat.schemas import Message as MessageView
from growbin.core import ratelimit
from growbin.core.db import get_databases
from growbin.core.errors import InvalidRequest, NotFound, RateLimited
from growbin.core.llm import get_async_llm_client, llm_configured
from growbin.core.settings import get_settings

log = logging.getLogger(__name__)

MAX_CONVERSATIONS_LISTED = 100
# Replaced by the first question's first line when that question arrives.
DEFAULT_TITLE = "New conversation"
# Turns read from the database before the token budget trims them.
HISTORY_ROWS = 50

ACTIVE_STREAMS = Gauge("growbin_chat_streams_active", "Answers being streamed now")
ANSWERS = Counter(
    "growbin_chat_answers_total", "Answers by answerer and final status", ["answerer", "status"]
)
FIRST_TOKEN = Histogram(
    "growbin_chat_first_token_seconds",
    "From the request being accepted to the first answer token",
    ["answerer"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)

_active: set[uuid.UUID] = set()


def active_streams() -> int:
    return len(_active)


def _conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView.model_validate(conversation, from_attributes=True)


def _message_view(message: Message) -> MessageView:
    return MessageView.model_validate(message, from_attributes=True)


def _default_title(question: str) -> str:
    return question.strip().splitlines()[0][:60]


async def create_conversation(
    session: AsyncSession, user_id: uuid.UUID, title: str | None
) -> ConversationView:
    conversation = await repository.create_conversation(session, user_id, title or DEFAULT_TITLE)
    await session.commit()
    return _conversation_view(conversation)


async def list_conversations(session: AsyncSession, user_id: uuid.UUID) -> ConversationList:
    rows = await repository.conversations(session, user_id, MAX_CONVERSATIONS_LISTED)
    return ConversationList(items=[_conversation_view(c) for c in rows])


async def owned_conversation(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await repository.conversation(session, user_id, conversation_id)
    # Another user's conversation is "not found": its existence is not revealed.
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


async def rename_conversation(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID, title: str
) -> ConversationView:
    conversation = await owned_conversation(session, user_id, conversation_id)
    conversation.title = title
    await repository.touch(session, conversation.id)
    await session.commit()
    await session.refresh(conversation)
    return _conversation_view(conversation)


async def delete_conversation(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> None:
    if not await repository.delete_conversation(session, user_id, conversation_id):
        raise NotFound("No such conversation.")
    await session.commit()


async def list_messages(
    session: AsyncSession, user_id: uuid.UUID, conversation_id: uuid.UUID
) -> MessageList:
    await owned_conversation(session, user_id, conversation_id)
    rows = await repository.messages(session, user_id, conversation_id)
    return MessageList(items=[_message_view(m) for m in rows])


def fit_history(newest_first: list[Message], budget: int) -> list[dict[str, str]]:
    """The most recent turns whose estimated tokens fit ``budget``, oldest first.

    A turn that does not fit ends the history (a gap in the middle would misquote the
    conversation). Partial and failed answers stay in: the user saw them.
    """
    kept: list[dict[str, str]] = []
    used = 0
    for message in newest_first:
        if not message.content:
            continue
        cost = message.token_estimate
        if used + cost > budget:
            break
        used += cost
        kept.append({"role": message.role, "content": message.content})
    kept.reverse()
    return kept


@dataclass
class PreparedAnswer:
    """Everything an answer stream needs, fixed before the first byte is sent."""

    conversation_id: uuid.UUID
    user_message_id: uuid.UUID
    message_id: uuid.UUID
    question: str
    entries: list[Entry]
    history: list[dict[str, str]]
    answerer: Answerer
    accepted_at: float
    # Set when the stream's body begins; a response closed before that never ran it.
    started: bool = False


async def _check_rate(user_id: uuid.UUID) -> None:
    settings = get_settings().chat
    state = await ratelimit.hit(f"chat:messages:{user_id}", settings.window_seconds)
    if state.count > settings.messages_per_window:
        raise RateLimited(
            state.retry_after_seconds,
            f"At most {settings.messages_per_window} messages per "
            f"{settings.window_seconds} seconds.",
        )


async def prepare_answer(
    session: AsyncSession,
    redis: Redis,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    content: str,
    scan_id: uuid.UUID | None,
) -> PreparedAnswer:
    """Validate, rate-limit, retrieve and store the question; the answer row starts empty."""
    settings = get_settings()
    limit = settings.chat.max_message_chars
    if len(content) > limit:
        raise InvalidRequest(
            f"A message may have at most {limit} characters.",
            details={"max_chars": limit, "chars": len(content)},
        )
    if not content.strip():
        raise InvalidRequest("The message is empty.")
    conversation = await owned_conversation(session, user_id, conversation_id)
    await _check_rate(user_id)
    accepted_at = time.perf_counter()

    entries: list[Entry] = []
    if scan_id is not None:
        scan, refs = await knowledge.scan_entry(user_id, scan_id)
        entries = [scan, *await knowledge.entries_for(refs)]
    for entry in await knowledge.retrieve(redis, content):
        if entry.ref not in {e.ref for e in entries}:
            entries.append(entry)

    question = await repository.add_message(
        session,
        conversation_id=conversation.id,
        user_id=user_id,
        role=Role.USER,
        content=content,
        status=MessageStatus.COMPLETE,
        scan_id=scan_id,
        token_estimate=prompts.estimate_tokens(content),
    )
    earlier = await repository.recent_messages(
        session, user_id, conversation.id, before_seq=question.seq, limit=HISTORY_ROWS
    )
    history = fit_history(earlier, settings.chat.history_token_budget)
    answerer = Answerer.MODEL if llm_configured(settings.llm) else Answerer.OFFLINE
    answer = await repository.add_message(
        session,
        conversation_id=conversation.id,
        user_id=user_id,
        role=Role.ASSISTANT,
        content="",
        status=MessageStatus.STREAMING,
        answerer=answerer,
        sources=[e.source() for e in entries],
        token_estimate=0,
    )
    if conversation.title == DEFAULT_TITLE:
        conversation.title = _default_title(content)
    await repository.touch(session, conversation.id)
    await session.commit()
    return PreparedAnswer(
        conversation_id=conversation.id,
        user_message_id=question.id,
        message_id=answer.id,
        question=content,
        entries=entries,
        history=history,
        answerer=answerer,
        accepted_at=accepted_at,
    )


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _model_tokens(prepared: PreparedAnswer) -> AsyncIterator[str]:
    settings = get_settings()
    stream = await get_async_llm_client().chat.completions.create(
        model=settings.llm.model,
        messages=prompts.build_messages(prepared.entries, prepared.history, prepared.question),
        stream=True,
        max_tokens=settings.chat.max_answer_tokens,
        temperature=0.2,
    )
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    finally:
        # Closing the response frees the upstream connection, and tells the model server to
        # stop generating, also when this generator is closed mid-answer.
        with anyio.CancelScope(shield=True):
            await stream.close()


async def _offline_tokens(prepared: PreparedAnswer) -> AsyncIterator[str]:
    for piece in offline.chunks(offline.answer(prepared.question, prepared.entries)):
        yield piece


async def _store_answer(
    prepared: PreparedAnswer, answerer: Answerer, content: str, status: MessageStatus
) -> list[str]:
    citations = prompts.cited_refs(content, prepared.entries)
    async with get_databases().sessionmaker("chat")() as session:
        await repository.finish_message(
            session,
            prepared.message_id,
            content=content,
            status=status,
            citations=citations,
            token_estimate=prompts.estimate_tokens(content) if content else 0,
            answerer=answerer,
        )
        await session.commit()
    ANSWERS.labels(answerer, status).inc()
    return citations


async def stream_answer(prepared: PreparedAnswer) -> AsyncIterator[str]:
    """The SSE body: ``start``, ``token``..., then ``done`` (or ``error``).

    Whatever ends the stream, the ``finally`` stores the text generated so far: complete,
    partial (the client went away, or the server stopped) or failed (the model broke off).
    """
    prepared.started = True
    parts: list[str] = []
    answerer = prepared.answerer
    status = MessageStatus.PARTIAL
    _active.add(prepared.message_id)
    ACTIVE_STREAMS.inc()
    try:
        yield _sse(
            "start",
            {
                "conversation_id": str(prepared.conversation_id),
                "user_message_id": str(prepared.user_message_id),
                "message_id": str(prepared.message_id),
                "answerer": answerer,
                "sources": [e.source() for e in prepared.entries],
            },
        )
        source = (
            _model_tokens(prepared) if answerer is Answerer.MODEL else _offline_tokens(prepared)
        )
        try:
            async with aclosing(source) as pieces:
                async for piece in pieces:
                    if not parts:
                        FIRST_TOKEN.labels(answerer).observe(
                            time.perf_counter() - prepared.accepted_at
                        )
                    parts.append(piece)
                    yield _sse("token", {"text": piece})
        except APIError as exc:
            if parts:
                raise
            # The model failed before saying anything: the knowledge base still can.
            log.warning("chat model unavailable, answering offline: %s", exc)
            answerer = Answerer.OFFLINE
            async with aclosing(_offline_tokens(prepared)) as pieces:
                async for piece in pieces:
                    parts.append(piece)
                    yield _sse("token", {"text": piece})
        status = MessageStatus.COMPLETE
    except APIError as exc:
        log.warning("chat model stream broke off: %s", exc)
        status = MessageStatus.FAILED
        yield _sse("error", {"code": "model_error", "message": "The answer broke off."})
    finally:
        # Shielded: on a client disconnect this runs inside a cancelled scope, and the
        # partial answer must still reach the database.
        with anyio.CancelScope(shield=True):
            try:
                citations = await _store_answer(prepared, answerer, "".join(parts), status)
            finally:
                _active.discard(prepared.message_id)
                ACTIVE_STREAMS.dec()
    yield _sse(
        "done",
        {
            "message_id": str(prepared.message_id),
            "status": status,
            "answerer": answerer,
            "citations": citations,
        },
    )


async def settle_unstarted(prepared: PreparedAnswer) -> None:
    """Store an answer whose stream never began (the client left before the first byte)."""
    if not prepared.started:
        with anyio.CancelScope(shield=True):
            await _store_answer(prepared, prepared.answerer, "", MessageStatus.PARTIAL)


async def purge_user(user_id: uuid.UUID) -> None:
    async with get_databases().sessionmaker("chat")() as session:
        await repository.delete_user(session, user_id)
        await session.commit()
