"""Fixed-window counters in Redis, shared by every replica of a service."""

from __future__ import annotations

import math
from dataclasses import dataclass

from growbin.core.redis import get_redis


@dataclass(frozen=True)
class WindowState:
    count: int
    retry_after_seconds: int


def _seconds(ttl_ms: int) -> int:
    # Rounded up: a client that waits Retry-After seconds finds the window over.
    return max(1, math.ceil(int(ttl_ms) / 1000))


async def hit(key: str, window_seconds: int) -> WindowState:
    """Count one event in ``key``'s current window and return the count so far."""
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=True)
        pipe.pttl(key)
        count, _, ttl_ms = await pipe.execute()
    return WindowState(count=int(count), retry_after_seconds=_seconds(ttl_ms))


async def peek(key: str) -> WindowState:
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.pttl(key)
        count, ttl_ms = await pipe.execute()
    return WindowState(count=int(count or 0), retry_after_seconds=_seconds(ttl_ms))


async def clear(key: str) -> None:
    await get_redis().delete(key)
