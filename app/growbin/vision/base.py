"""The classifier interface and the choice between the OpenAI and the offline model."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from growbin.core.llm import llm_configured
from growbin.core.settings import get_settings
from growbin.recycling.catalog import Catalog, load_catalog


@dataclass(frozen=True)
class Candidate:
    category: str
    confidence: float
    item: str | None = None


@dataclass(frozen=True)
class Classification:
    classifier: str
    # None when the classifier cannot name a category at all.
    category: str | None
    confidence: float
    item: str | None = None
    item_guess: str | None = None
    candidates: tuple[Candidate, ...] = ()
    reasons: tuple[str, ...] = field(default_factory=tuple)


class ProviderUnavailable(Exception):
    """A temporary failure (timeout, 429, 5xx, connection): worth retrying later.

    The message is written for the user; it becomes the scan's failure reason when the
    retries run out.
    """


class ClassificationFailed(Exception):
    """A failure that a retry will not fix (bad credentials, refused request)."""


class VisionClassifier(Protocol):
    name: str

    def classify(self, jpeg: bytes) -> Classification: ...


@lru_cache
def knowledge_base() -> Catalog:
    return load_catalog()


def category_slugs() -> list[str]:
    return [c.slug for c in knowledge_base().categories]


def item_slugs() -> list[str]:
    return [i.slug for i in knowledge_base().items]


@lru_cache
def get_classifier() -> VisionClassifier:
    settings = get_settings()
    if llm_configured(settings.llm):
        from growbin.vision.openai_classifier import OpenAIClassifier

        return OpenAIClassifier.from_settings(settings.llm)
    from growbin.vision.offline import OfflineClassifier

    return OfflineClassifier.from_path(settings.llm.offline_model_path)
