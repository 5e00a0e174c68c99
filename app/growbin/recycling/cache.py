"""Redis cache of search results, invalidated by a generation counter.

Every cache key embeds the current generation; ``growbin seed recycling`` increments it after
committing a new catalog, so results computed from the old catalog become unreachable at once
(even one written by a request that raced the seed) and expire with their TTL.
"""

from __future__ import annotations

from prometheus_client import Counter
from pydantic import ValidationError
from redis.asyncio import Redis

from growbin.recycling.schemas import SearchResult

PREFIX = "growbin:recycling"
GENERATION_KEY = f"{PREFIX}:generation"
SEARCH_TTL_SECONDS = 3600

SEARCH_CACHE = Counter(
    "growbin_recycling_search_cache_total",
    "Recycling search cache lookups by outcome",
    ["outcome"],
)


def _search_key(generation: str, key: str, limit: int) -> str:
    return f"{PREFIX}:search:{generation}:{limit}:{key}"


async def generation(redis: Redis) -> str:
    return await redis.get(GENERATION_KEY) or "0"


async def get_search(redis: Redis, key: str, limit: int) -> tuple[str, SearchResult | None]:
    """The current generation and the cached result for it, if any."""
    current = await generation(redis)
    raw = await redis.get(_search_key(current, key, limit))
    if raw is None:
        return current, None
    try:
        return current, SearchResult.model_validate_json(raw)
    except ValidationError:
        # Written by a version with another response shape (a rolling deploy): recompute.
        return current, None


async def put_search(
    redis: Redis, current: str, key: str, limit: int, result: SearchResult
) -> None:
    await redis.set(
        _search_key(current, key, limit), result.model_dump_json(), ex=SEARCH_TTL_SECONDS
    )


async def invalidate(redis: Redis) -> int:
    """Start a new generation; returns it."""
    return await redis.incr(GENERATION_KEY)
