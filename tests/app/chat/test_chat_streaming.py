"""Answers stream end to end through a real uvicorn socket from the streaming stand-in."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from chat_fixtures import (  # noqa: F401 - fixtures, used by name
    chat_server_fixture,
    fake_llm_fixture,
    http_fixture,
    knowledge_base_fixture,
    model_answers_fixture,
    new_chatter_fixture,
    offline_answers_fixture,
    read_events,
)
from growbin.chat import service
from growbin.chat.prompts import SYSTEM_INSTRUCTIONS
from growbin.chat.router import AnswerStream
from growbin.core.db import get_databases
from growbin.core.redis import get_redis
from starlette.requests import ClientDisconnect


async def test_answer_streams_token_by_token_and_is_stored(model_answers, new_chatter) -> None:
    model_answers.token_interval_seconds = 0.01
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "How do I throw away a soda PET bottle?")

    assert answer.status_code == 200
    assert [event for event, _ in answer.events][:2] == ["start", "token"]
    assert answer.events[-1][0] == "done"
    tokens = answer.of("token")
    assert len(tokens) > 10
    assert answer.start["answerer"] == "model"
    assert answer.done["status"] == "complete"
    (exchange,) = model_answers.exchanges
    assert exchange.completed
    assert exchange.body["stream"] is True
    assert exchange.messages[0] == {"role": "system", "content": SYSTEM_INSTRUCTIONS}
    assert exchange.messages[-1] == {
        "role": "user",
        "content": "How do I throw away a soda PET bottle?",
    }
    stored = await chatter.messages(conversation)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == answer.text
    assert stored[1]["status"] == "complete"
    assert stored[1]["answerer"] == "model"
    assert stored[1]["citations"] == answer.done["citations"] == ["item:soda-pet-bottle"]


@pytest.mark.parametrize(
    "tokens_before_hang_up",
    [
        pytest.param(3, id="while-tokens-flow"),
        # The answer is then waiting on the model's first token when the client goes.
        pytest.param(0, id="before-first-token"),
    ],
)
async def test_client_disconnect_mid_stream_stores_partial_answer(
    model_answers, new_chatter, tokens_before_hang_up: int
) -> None:
    # Slow enough that the client hangs up long before the model is done.
    model_answers.token_interval_seconds = 0.05
    model_answers.first_token_delay_seconds = 0.5 if tokens_before_hang_up == 0 else 0
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()
    baseline = asyncio.all_tasks()

    received = []
    async with chatter.http.stream(
        "POST",
        f"/api/v1/chat/conversations/{conversation}/messages",
        json={"content": "Where do batteries go?"},
        headers=chatter.headers,
    ) as response:
        assert response.status_code == 200
        async for event, data in read_events(response):
            if event == "token":
                received.append(data["text"])
            if len(received) == tokens_before_hang_up:
                # Hang up only once the model is working on the answer.
                for _ in range(500):
                    if model_answers.exchanges:
                        break
                    await asyncio.sleep(0.01)
                break
    # Leaving the block closed the connection mid-answer.

    (exchange,) = model_answers.exchanges
    assert await asyncio.to_thread(exchange.finished.wait, 10)
    # The service closed its upstream model response: the model server saw the hang-up and
    # did not stream the rest of the answer to nobody.
    assert exchange.hung_up and not exchange.completed
    full_reply = model_answers.reply(exchange)
    assert exchange.tokens_sent < len(full_reply.split())

    for _ in range(100):
        stored = await chatter.messages(conversation)
        if stored[-1]["status"] != "streaming":
            break
        await asyncio.sleep(0.05)
    answer = stored[-1]
    assert answer["status"] == "partial"
    assert answer["answerer"] == "model"
    assert answer["content"].startswith("".join(received))
    assert full_reply.startswith(answer["content"])
    assert len(answer["content"]) < len(full_reply)
    assert answer["citations"] == []

    # Nothing is left running for the abandoned answer.
    assert service.active_streams() == 0
    for _ in range(100):
        leaked = asyncio.all_tasks() - baseline - {asyncio.current_task()}
        if not leaked:
            break
        await asyncio.sleep(0.05)
    assert not leaked, leaked


async def test_model_failure_before_first_token_falls_back_to_offline(
    model_answers, new_chatter
) -> None:
    model_answers.fail_with_status = 503
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "Where do batteries go?")

    assert answer.status_code == 200
    assert answer.done["status"] == "complete"
    assert answer.done["answerer"] == "offline"
    assert answer.text.startswith("[Offline answer]")
    stored = await chatter.messages(conversation)
    assert stored[-1]["answerer"] == "offline"
    assert stored[-1]["content"] == answer.text


async def test_model_breaking_off_mid_answer_is_stored_as_failed(
    model_answers, new_chatter
) -> None:
    model_answers.break_after_tokens = 5
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "Where do batteries go?")

    assert len(answer.of("token")) == 5
    assert answer.of("error")[0]["code"] == "model_error"
    assert answer.done["status"] == "failed"
    stored = await chatter.messages(conversation)
    assert stored[-1]["status"] == "failed"
    assert stored[-1]["content"] == answer.text
    assert service.active_streams() == 0


async def test_client_gone_before_the_first_byte_still_settles_the_answer(
    offline_answers, chat_server
) -> None:
    # At the ASGI level: the connection is already gone when the response starts, so the
    # server fails the very first send and the body generator never runs.
    user_id = uuid.uuid4()
    async with get_databases().sessionmaker("chat")() as session:
        conversation = await service.create_conversation(session, user_id, None)
        prepared = await service.prepare_answer(
            session, get_redis(), user_id, conversation.id, "Where do batteries go?", None
        )

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        raise OSError("connection reset by peer")

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await AnswerStream(prepared)(scope, receive, send)

    assert not prepared.started
    async with get_databases().sessionmaker("chat")() as session:
        listed = await service.list_messages(session, user_id, conversation.id)
    assert [(m.role, m.status, m.content) for m in listed.items] == [
        ("user", "complete", "Where do batteries go?"),
        ("assistant", "partial", ""),
    ]
    assert service.active_streams() == 0
