"""The offline answerer: with no model configured (or the model unreachable before its first
token), common questions are answered straight from the retrieved knowledge-base entries.

Every answer starts with a banner saying it is an offline answer and ends with the district
caveat and the refs it used, in the same ``[ref]`` form the model is asked to cite in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum

from growbin.chat.knowledge import Entry

_HANGUL = re.compile(r"[가-힣]")


class Intent(StrEnum):
    RECYCLABLE = "recyclable"  # "is X recyclable"
    WHERE = "where"  # "where do batteries go"
    HOW = "how"  # "how do I throw away X" (and anything else)


def intent_of(question: str) -> Intent:
    lowered = question.lower()
    if re.search(
        r"\brecycl(able|ed)\b|\bcan (i|you|we) recycle\b|재활용\s*(돼|되|가능|할 수)", lowered
    ):
        return Intent.RECYCLABLE
    if re.search(r"\bwhere\b|어디", lowered):
        return Intent.WHERE
    return Intent.HOW


_TEXT = {
    "ko": {
        "banner": "[오프라인 답변] AI 모델 없이 Growbin 분리배출 지식베이스에서 찾은 내용입니다.",
        "unknown": (
            "지식베이스에서 이 질문에 맞는 항목을 찾지 못했습니다. 물건 이름을 넣어 다시 "
            "물어보시거나 구청·주민센터에 문의해 주세요."
        ),
        "goes": "{name}: {category}(으)로 배출합니다.",
        "yes": "{name}은(는) 재활용됩니다 ({category}).",
        "no": "{name}은(는) 재활용 대상이 아닙니다. {category}(으)로 배출합니다.",
        "steps": "배출 방법:",
        "not_accepted": "이 분류에 넣지 않는 것:",
        "caveat": "지역(구·군)마다 배출 규칙이 다를 수 있으니 거주지 구청 안내도 확인하세요.",
        "sources": "출처:",
    },
    "en": {
        "banner": "[Offline answer] From the Growbin recycling knowledge base, without an AI model.",
        "unknown": (
            "I could not find this in the knowledge base. Try naming the item, or ask your "
            "district office (구청/주민센터)."
        ),
        "goes": "{name}: put it out as {category}.",
        "yes": "Yes, {name} is recyclable ({category}).",
        "no": "No, {name} is not recycled; put it out as {category}.",
        "steps": "How:",
        "not_accepted": "Does not belong here:",
        "caveat": "Local district (구/군) rules may differ; check your district office's guide.",
        "sources": "Sources:",
    },
}


def language_of(question: str) -> str:
    return "ko" if _HANGUL.search(question) else "en"


def answer(question: str, entries: list[Entry]) -> str:
    lang = language_of(question)
    text = _TEXT[lang]
    lines = [text["banner"], ""]
    if not entries:
        lines += [text["unknown"], "", text["caveat"]]
        return "\n".join(lines)
    entry = entries[0]
    name = entry.name_ko if lang == "ko" else entry.name_en
    category = entry.category_ko if lang == "ko" else entry.category_en
    intent = intent_of(question)
    if intent is Intent.RECYCLABLE:
        lines.append(text["yes" if entry.recyclable else "no"].format(name=name, category=category))
    else:
        lines.append(text["goes"].format(name=name, category=category))
    lines += ["", text["steps"]]
    lines += [f"{n}. {step[lang]}" for n, step in enumerate(entry.steps, 1)]
    if entry.not_accepted and intent is not Intent.WHERE:
        lines += ["", text["not_accepted"]]
        lines += [f"- {rule['what'][lang]} ({rule['why'][lang]})" for rule in entry.not_accepted]
    others = [e for e in entries[1:] if e.category_slug != entry.category_slug]
    for other in others:
        other_name = other.name_ko if lang == "ko" else other.name_en
        other_category = other.category_ko if lang == "ko" else other.category_en
        lines += ["", text["goes"].format(name=other_name, category=other_category)]
    lines += [
        "",
        text["caveat"],
        "",
        " ".join([text["sources"], *(f"[{e.ref}]" for e in [entry, *others])]),
    ]
    return "\n".join(lines)


def chunks(text: str) -> Iterator[str]:
    """The answer in word-sized pieces, so offline answers stream like model answers."""
    yield from re.findall(r"\S+\s*|\s+", text)
