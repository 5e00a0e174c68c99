"""The OpenAI-compatible client shared by the vision classifier and the chat answerer.

With no API key configured there is no client: callers fall back to their offline
implementations. Retries belong to the Celery tasks (bounded, with backoff and a readable
final reason), so the SDK's own retries are off.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from openai import AsyncOpenAI, OpenAI

from growbin.core.settings import LlmSettings, get_settings


def llm_configured(settings: LlmSettings | None = None) -> bool:
    settings = settings or get_settings().llm
    return settings.api_key is not None and bool(settings.api_key.get_secret_value())


def _client_options(settings: LlmSettings) -> dict[str, Any]:
    if not llm_configured(settings):
        raise RuntimeError("GROWBIN_LLM__API_KEY is not set")
    assert settings.api_key is not None
    return {
        "api_key": settings.api_key.get_secret_value(),
        "base_url": settings.base_url,
        "timeout": settings.timeout_seconds,
        "max_retries": 0,
    }


def build_client(settings: LlmSettings) -> OpenAI:
    """The blocking client, for the vision classifier inside a Celery task."""
    return OpenAI(**_client_options(settings))


@lru_cache
def get_async_llm_client() -> AsyncOpenAI:
    """The async client, for answers streamed straight from an API process (chat)."""
    return AsyncOpenAI(**_client_options(get_settings().llm))
