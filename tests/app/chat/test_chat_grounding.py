"""Grounding: questions about knowledge-base items reach the model with the right entries,
and both the model's streamed answer and the offline answer cite them."""

from __future__ import annotations

import pytest
from chat_fixtures import (  # noqa: F401 - fixtures, used by name
    chat_server_fixture,
    fake_llm_fixture,
    http_fixture,
    knowledge_base_fixture,
    model_answers_fixture,
    new_chatter_fixture,
    offline_answers_fixture,
)
from growbin.core.settings import get_settings

# (question, the entry it is about), in the shapes people ask them, English and Korean.
QUESTIONS = [
    ("How do I throw away a soda PET bottle?", "item:soda-pet-bottle"),
    ("Is a yogurt cup recyclable?", "item:yogurt-cup"),
    ("How do I dispose of wet wipes?", "item:wet-wipes"),
    ("Where does chewing gum go?", "item:chewing-gum"),
    ("What do I do with eggshells?", "item:eggshell"),
    ("How do I throw away fruit peel?", "item:fruit-peel"),
    ("Is a mirror recyclable?", "item:mirror"),
    ("How do I get rid of an aerosol can?", "item:aerosol-can"),
    ("Can I recycle a book?", "item:book"),
    ("How do I throw away a used tissue?", "item:tissue"),
    ("Is a plastic egg tray recyclable?", "item:plastic-egg-tray"),
    ("Where do drinking straws go?", "item:straw"),
    ("How do I throw away a desk?", "item:desk"),
    ("Where do I put an old mobile phone?", "item:mobile-phone"),
    ("Where do batteries go?", "item:aa-battery"),
    ("가루약은 어디에 버려요?", "item:powder-medicine"),
    ("스티로폼 컵라면 용기 어떻게 버려요?", "item:eps-cup-noodle"),
    ("커피믹스 봉지 재활용 돼요?", "item:coffee-stick-wrapper"),
    ("휴대폰 배터리는 어디에 버려요?", "item:phone-battery"),
    ("충전기 어떻게 버려요?", "item:charger-cable"),
]


@pytest.fixture(autouse=True)
def enough_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings().chat, "messages_per_window", 100)


def test_twenty_distinct_questions() -> None:
    assert len(QUESTIONS) == 20
    assert len({ref for _, ref in QUESTIONS}) == 20


async def test_model_is_given_and_cites_the_right_entries(model_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()
    mismatches = []
    for number, (question, expected) in enumerate(QUESTIONS):
        answer = await chatter.ask(conversation, question)
        exchange = model_answers.exchanges[number]
        assert exchange.messages[-1] == {"role": "user", "content": question}
        sent = exchange.refs()
        streamed = [source["ref"] for source in answer.start["sources"]]
        if (
            sent[:1] != [expected]
            or streamed != sent
            or answer.done["citations"] != [expected]
            or f"[{expected}]" not in answer.text
        ):
            mismatches.append((question, expected, sent, answer.done["citations"]))
    assert not mismatches, mismatches
    stored = await chatter.messages(conversation)
    answers = [m for m in stored if m["role"] == "assistant"]
    assert [m["citations"] for m in answers] == [[ref] for _, ref in QUESTIONS]
    assert all(m["answerer"] == "model" and m["status"] == "complete" for m in answers)


async def test_offline_answerer_cites_the_same_entries(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()
    mismatches = []
    for question, expected in QUESTIONS:
        answer = await chatter.ask(conversation, question)
        assert answer.start["answerer"] == "offline"
        if answer.done["citations"][:1] != [expected] or f"[{expected}]" not in answer.text:
            mismatches.append((question, expected, answer.done["citations"]))
    assert not mismatches, mismatches
