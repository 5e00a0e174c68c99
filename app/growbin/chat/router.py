from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

from growbin.chat import service
from growbin.chat.schemas import (
    Conversation,
    ConversationCreate,
    ConversationList,
    ConversationRename,
    MessageCreate,
    MessageList,
)
from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.core.redis import get_redis
from growbin.core.security import CurrentUser

ChatSession = Annotated[AsyncSession, Depends(session_dependency("chat"))]
RedisClient = Annotated[Redis, Depends(get_redis)]

router = APIRouter()


class AnswerStream(StreamingResponse):
    """SSE that always finalises its answer, also when the client disconnects.

    Starlette cancels the sending task on disconnect; if that happens while the body
    generator waits at a ``yield`` the generator is left suspended, and its cleanup (closing
    the model response, storing the partial answer) would wait for garbage collection;
    if it happens before the first byte, the body never runs at all. Both are settled here.
    """

    media_type = "text/event-stream"

    def __init__(self, prepared: service.PreparedAnswer) -> None:
        self._body = service.stream_answer(prepared)
        self._prepared = prepared
        super().__init__(
            self._body, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()
            await service.settle_unstarted(self._prepared)


@router.post("/conversations", status_code=201)
async def create_conversation(
    user: CurrentUser, session: ChatSession, body: ConversationCreate | None = None
) -> Conversation:
    return await service.create_conversation(session, user.id, body.title if body else None)


@router.get("/conversations")
async def list_conversations(user: CurrentUser, session: ChatSession) -> ConversationList:
    """Your conversations, most recently active first."""
    return await service.list_conversations(session, user.id)


@router.patch("/conversations/{conversation_id}")
async def rename_conversation(
    conversation_id: uuid.UUID, body: ConversationRename, user: CurrentUser, session: ChatSession
) -> Conversation:
    return await service.rename_conversation(session, user.id, conversation_id, body.title)


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, session: ChatSession
) -> Response:
    await service.delete_conversation(session, user.id, conversation_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: uuid.UUID, user: CurrentUser, session: ChatSession
) -> MessageList:
    """Questions and answers in order; an answer's ``status`` says whether it is complete."""
    return await service.list_messages(session, user.id, conversation_id)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=200,
    response_class=AnswerStream,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The answer stream"}},
)
async def send_message(
    conversation_id: uuid.UUID,
    body: MessageCreate,
    user: CurrentUser,
    session: ChatSession,
    redis: RedisClient,
) -> AnswerStream:
    """Ask a question; the answer streams as Server-Sent Events.

    Events: ``start`` (message ids, ``answerer`` = ``model`` or ``offline``, and the
    knowledge-base ``sources`` the answer is grounded on), ``token`` (``text``, in order),
    then ``done`` (``status`` and the ``citations`` the answer made) or ``error``. Errors
    found before streaming (limits, unknown conversation or scan) are ordinary JSON errors.
    """
    prepared = await service.prepare_answer(
        session, redis, user.id, conversation_id, body.content, body.scan_id
    )
    return AnswerStream(prepared)


domain = DomainSpec(
    name="chat",
    router=router,
    purge_user=service.purge_user,
)
