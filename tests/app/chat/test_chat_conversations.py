"""Conversations and their history in PostgreSQL; history sent to the model within budget;
questions about one of the user's own scans."""

from __future__ import annotations

import hashlib
import uuid

from chat_fixtures import (  # noqa: F401 - fixtures, used by name
    chat_server_fixture,
    fake_llm_fixture,
    http_fixture,
    knowledge_base_fixture,
    model_answers_fixture,
    new_chatter_fixture,
    offline_answers_fixture,
    use_model,
)
from growbin.chat import service
from growbin.chat.prompts import estimate_tokens
from growbin.core.db import get_databases
from growbin.core.settings import get_settings
from growbin.scans.models import Scan
from sqlalchemy import text


async def test_create_list_rename_delete(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    first = await chatter.new_conversation("balcony clean-up")
    second = await chatter.new_conversation()
    await chatter.ask(second, "Where do batteries go?")
    base = "/api/v1/chat/conversations"

    listed = (await chatter.http.get(base, headers=chatter.headers)).json()["items"]
    renamed = await chatter.http.patch(
        f"{base}/{first}", json={"title": "  garage  "}, headers=chatter.headers
    )
    bad_title = await chatter.http.patch(
        f"{base}/{first}", json={"title": ""}, headers=chatter.headers
    )
    deleted = await chatter.http.delete(f"{base}/{second}", headers=chatter.headers)
    gone = await chatter.http.get(f"{base}/{second}/messages", headers=chatter.headers)
    anonymous = await chatter.http.get(base)

    # Most recently active first; an untitled conversation is named after its first question.
    assert [c["id"] for c in listed] == [second, first]
    assert listed[0]["title"] == "Where do batteries go?"
    assert renamed.status_code == 200 and renamed.json()["title"] == "garage"
    assert bad_title.status_code == 422
    assert deleted.status_code == 204 and gone.status_code == 404
    assert anonymous.status_code == 401
    async with get_databases().engine("chat").connect() as connection:
        left = await connection.scalar(
            text("SELECT count(*) FROM chat_messages WHERE conversation_id = :id"),
            {"id": uuid.UUID(second)},
        )
    assert left == 0


async def test_history_is_stored_and_sent_within_the_token_budget(
    offline_answers, new_chatter, monkeypatch, fake_llm
) -> None:
    monkeypatch.setattr(get_settings().chat, "history_token_budget", 400)
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()
    questions = [
        "How do I throw away a desk?",
        "Is a yogurt cup recyclable?",
        "Where do batteries go?",
        "How do I throw away wet wipes?",
        "Is a mirror recyclable?",
        "Where does chewing gum go?",
    ]
    for question in questions:
        await chatter.ask(conversation, question)
    earlier = await chatter.messages(conversation)
    assert len(earlier) == 12

    fake_llm.reset()
    use_model(fake_llm.base_url)
    try:
        await chatter.ask(conversation, "And how do I throw away a book?")
    finally:
        use_model(None)

    (exchange,) = fake_llm.exchanges
    history = exchange.messages[2:-1]
    sent_tokens = sum(estimate_tokens(m["content"]) for m in history)
    assert 0 < len(history) < len(earlier)
    assert sent_tokens <= 400
    # The newest turns, in order, with nothing skipped in between ...
    assert history == [
        {"role": m["role"], "content": m["content"]} for m in earlier[-len(history) :]
    ]
    # ... and the next older one would not have fitted.
    next_older = earlier[-len(history) - 1]
    assert sent_tokens + estimate_tokens(next_older["content"]) > 400
    # The whole conversation stays in PostgreSQL.
    assert len(await chatter.messages(conversation)) == 14


async def _completed_scan(user_id: uuid.UUID) -> uuid.UUID:
    """A finished scan row as the scans worker leaves it (result in the ScanResult shape)."""
    scan_id = uuid.uuid4()
    result = {
        "classifier": "openai:gpt-4o-mini",
        "confidence": 0.91,
        "category": {"slug": "clear-pet", "name": {"ko": "투명 페트병", "en": "Clear PET bottle"}},
        "item": {
            "slug": "soda-pet-bottle",
            "name": {"ko": "탄산음료 페트병", "en": "Soda PET bottle"},
        },
        "item_guess": "a clear soda bottle",
        "steps": [{"ko": "내용물을 비웁니다.", "en": "Empty it."}],
        "not_accepted": [],
        "candidates": [],
        "reasons": [],
    }
    async with get_databases().sessionmaker("scans")() as session:
        session.add(
            Scan(
                id=scan_id,
                user_id=user_id,
                request_fingerprint=hashlib.sha256(scan_id.bytes).hexdigest(),
                status="completed",
                stage=4,
                source_key=f"uploads/{user_id}/{scan_id}",
                category="clear-pet",
                item="soda-pet-bottle",
                confidence=0.91,
                classifier="openai:gpt-4o-mini",
                result=result,
            )
        )
        await session.commit()
    return scan_id


async def test_question_about_own_scan_is_grounded_on_it(model_answers, new_chatter) -> None:
    owner, other = await new_chatter(), await new_chatter()
    scan_id = await _completed_scan(owner.user_id)
    conversation = await owner.new_conversation()

    answer = await owner.ask(conversation, "What do I do with this?", scan_id=str(scan_id))
    refused = await other.ask(
        await other.new_conversation(), "What do I do with this?", scan_id=str(scan_id)
    )

    exchange = model_answers.exchanges[0]
    knowledge = exchange.knowledge()
    assert [entry["ref"] for entry in knowledge[:2]] == [
        f"scan:{scan_id}",
        "item:soda-pet-bottle",
    ]
    assert knowledge[0]["name"]["en"] == "Soda PET bottle"
    assert knowledge[0]["recyclable"] is True
    assert answer.done["citations"] == [f"scan:{scan_id}"]
    stored = await owner.messages(conversation)
    assert stored[0]["scan_id"] == str(scan_id)
    # Someone else's scan is indistinguishable from a missing one.
    assert refused.status_code == 404
    assert len(model_answers.exchanges) == 1


async def test_purge_user_removes_their_conversations(offline_answers, new_chatter) -> None:
    leaving, staying = await new_chatter(), await new_chatter()
    await leaving.ask(await leaving.new_conversation(), "Where do batteries go?")
    kept = await staying.new_conversation()
    await staying.ask(kept, "Where do batteries go?")

    await service.purge_user(leaving.user_id)

    listed = await leaving.http.get("/api/v1/chat/conversations", headers=leaving.headers)
    assert listed.json()["items"] == []
    assert len(await staying.messages(kept)) == 2
