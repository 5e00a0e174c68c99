"""Fixed-window counters and spaced turns in Redis, shared by every replica of a service."""

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


async def hit(key: str, window_seconds: int, *, extend_window: bool = False) -> WindowState:
    """Count one event in ``key``'s current window and return the count so far.

    With ``extend_window`` every event restarts the window, so the count is only forgotten
    after ``window_seconds`` without an event.
    """
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=not extend_window)
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


# KEYS[1] holds the time (ms, Redis's clock: one clock for every replica) from which the next
# turn may be taken. A caller never seen waits one interval; a caller whose time has come takes
# the turn and the next one is an interval away. Returns the milliseconds to wait, 0 = go.
_CLAIM_TURN = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local forget_after = tonumber(ARGV[2])
local allowed_at = tonumber(redis.call('GET', KEYS[1]))
if allowed_at ~= nil and now >= allowed_at then
  redis.call('SET', KEYS[1], now + interval, 'PX', forget_after)
  return 0
end
if allowed_at == nil then
  allowed_at = now + interval
  redis.call('SET', KEYS[1], allowed_at, 'PX', forget_after)
end
return allowed_at - now
"""


async def claim_turn(key: str, interval_seconds: int, forget_after_seconds: int) -> int:
    """Seconds until ``key`` may act (0: it acts now, its next turn is an interval later).

    The first claim of a key only starts its wait; the key is forgotten after
    ``forget_after_seconds`` without a claim.
    """
    wait_ms = await get_redis().eval(
        _CLAIM_TURN, 1, key, interval_seconds * 1000, forget_after_seconds * 1000
    )
    return 0 if int(wait_ms) <= 0 else _seconds(wait_ms)
