"""Without an API key the common questions are answered from the knowledge base, marked."""

from __future__ import annotations

from chat_fixtures import (  # noqa: F401 - fixtures, used by name
    chat_server_fixture,
    http_fixture,
    knowledge_base_fixture,
    new_chatter_fixture,
    offline_answers_fixture,
)
from growbin.recycling.catalog import load_catalog

CATALOG = load_catalog()
ITEMS = {item.slug: item for item in CATALOG.items}
CATEGORIES = {category.slug: category for category in CATALOG.categories}


async def test_how_do_i_throw_away(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "How do I throw away a yogurt cup?")

    item = ITEMS["yogurt-cup"]
    category = CATEGORIES[item.category]
    text = answer.text
    assert answer.start["answerer"] == answer.done["answerer"] == "offline"
    assert text.startswith("[Offline answer]")
    assert f"{item.name.en}: put it out as {category.name.en}." in text
    for step in [*item.steps, *category.steps]:
        assert step.en in text
    assert "district" in text
    assert answer.done["citations"][0] == "item:yogurt-cup"
    stored = await chatter.messages(conversation)
    assert stored[-1]["answerer"] == "offline" and stored[-1]["content"] == text


async def test_is_it_recyclable_follows_the_category(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    recyclable = await chatter.ask(conversation, "Is a yogurt cup recyclable?")
    not_recyclable = await chatter.ask(conversation, "Is wet wipes recyclable?")
    korean = await chatter.ask(conversation, "물티슈 재활용 돼요?")

    assert "Yes, Yogurt cup is recyclable" in recyclable.text
    assert "No, Wet wipes is not recycled" in not_recyclable.text
    assert "재활용 대상이 아닙니다" in korean.text
    assert korean.text.startswith("[오프라인 답변]")
    assert korean.done["citations"][0] == "item:wet-wipes"


async def test_where_do_batteries_go(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "Where do batteries go?")

    assert answer.text.startswith("[Offline answer]")
    assert "Put it in a battery collection box." in answer.text
    assert "Batteries" in answer.text
    assert answer.done["citations"][0] in ("item:aa-battery", "category:batteries")


async def test_unknown_question_says_so(offline_answers, new_chatter) -> None:
    chatter = await new_chatter()
    conversation = await chatter.new_conversation()

    answer = await chatter.ask(conversation, "What is the capital of Mongolia?")

    assert answer.start["sources"] == []
    assert "could not find this in the knowledge base" in answer.text
    assert answer.done["citations"] == []
