"""Classification by an OpenAI-compatible chat model with image input and structured output.

The answer is constrained by a strict JSON schema to the knowledge base's category and item
slugs, so the model cannot invent a category; it also says how sure it is and, when it cannot
decide, why.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
from openai import OpenAI
from pydantic import BaseModel, Field, ValidationError

from growbin.core.llm import build_client
from growbin.core.settings import LlmSettings
from growbin.vision.base import (
    Candidate,
    Classification,
    ClassificationFailed,
    ProviderUnavailable,
    category_slugs,
    item_slugs,
    knowledge_base,
)

SCHEMA_NAME = "waste_classification"
MAX_CANDIDATES = 3


class _Candidate(BaseModel):
    category: str
    confidence: float = Field(ge=0, le=1)


class _Answer(BaseModel):
    category: str | None
    item: str | None
    item_guess: str
    confidence: float = Field(ge=0, le=1)
    candidates: list[_Candidate]
    undecided_reasons: list[str]


def answer_schema(categories: list[str], items: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "category",
            "item",
            "item_guess",
            "confidence",
            "candidates",
            "undecided_reasons",
        ],
        "properties": {
            "category": {"type": ["string", "null"], "enum": [*categories, None]},
            "item": {"type": ["string", "null"], "enum": [*items, None]},
            "item_guess": {"type": "string", "description": "What the object is, in words"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "candidates": {
                "type": "array",
                "maxItems": MAX_CANDIDATES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["category", "confidence"],
                    "properties": {
                        "category": {"type": "string", "enum": categories},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                },
            },
            "undecided_reasons": {"type": "array", "items": {"type": "string"}},
        },
    }


def _instructions() -> str:
    catalog = knowledge_base()
    lines = [
        "You classify a photo of one household item for Korean waste separation (분리배출).",
        "Choose the most specific category from this list (slug: name):",
    ]
    lines += [f"- {c.slug}: {c.name.ko} / {c.name.en}" for c in catalog.categories]
    lines += [
        "If the item matches a known item slug, give it, else null.",
        "confidence is your probability that the category is right.",
        "candidates: up to three plausible categories, best first.",
        "If you cannot decide (blurry, several items, no waste item), set category to null "
        "and list the reasons in undecided_reasons, in plain words for the user.",
    ]
    return "\n".join(lines)


class OpenAIClassifier:
    def __init__(self, client: OpenAI, model: str) -> None:
        self.client = client
        self.model = model
        self.name = f"openai:{model}"

    @classmethod
    def from_settings(cls, settings: LlmSettings) -> OpenAIClassifier:
        return cls(build_client(settings), settings.model)

    def _request(self, jpeg: bytes) -> Any:
        image_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        try:
            return self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": _instructions()},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Classify this item."},
                            {"type": "image_url", "image_url": {"url": image_url}},
                        ],
                    },
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": SCHEMA_NAME,
                        "strict": True,
                        "schema": answer_schema(category_slugs(), item_slugs()),
                    },
                },
            )
        except openai.RateLimitError as exc:
            raise ProviderUnavailable(
                "The image recognition service is overloaded (rate limited)."
            ) from exc
        except openai.APITimeoutError as exc:
            raise ProviderUnavailable(
                "The image recognition service did not answer in time."
            ) from exc
        except openai.APIConnectionError as exc:
            raise ProviderUnavailable("The image recognition service cannot be reached.") from exc
        except openai.InternalServerError as exc:
            raise ProviderUnavailable(
                f"The image recognition service failed (HTTP {exc.status_code})."
            ) from exc
        except openai.APIStatusError as exc:
            raise ClassificationFailed(
                f"The image recognition service refused the request (HTTP {exc.status_code})."
            ) from exc

    def classify(self, jpeg: bytes) -> Classification:
        response = self._request(jpeg)
        if not response.choices:
            raise ProviderUnavailable("The image recognition service returned no answer.")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            return Classification(
                classifier=self.name,
                category=None,
                confidence=0.0,
                reasons=(f"The model declined: {message.refusal}",),
            )
        try:
            answer = _Answer.model_validate(json.loads(message.content or ""))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ProviderUnavailable(
                "The image recognition service returned an unreadable answer."
            ) from exc
        categories, items = set(category_slugs()), set(item_slugs())
        if answer.category is not None and answer.category not in categories:
            raise ProviderUnavailable("The image recognition service named an unknown category.")
        return Classification(
            classifier=self.name,
            category=answer.category,
            confidence=answer.confidence,
            item=answer.item if answer.item in items else None,
            item_guess=answer.item_guess or None,
            candidates=tuple(
                Candidate(category=c.category, confidence=c.confidence)
                for c in answer.candidates[:MAX_CANDIDATES]
                if c.category in categories
            ),
            reasons=tuple(answer.undecided_reasons),
        )
