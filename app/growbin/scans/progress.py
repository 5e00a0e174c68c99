"""Scan progress events in Redis streams: written by the API and the workers, read as SSE.

One stream per scan (``scans:events:<id>``), kept for a day after its last event. A stream
entry id doubles as the SSE event id, so a client reconnecting with ``Last-Event-ID`` resumes
exactly after the last event it saw.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

EVENTS_TTL_SECONDS = 24 * 3600
EVENTS_MAX_LENGTH = 100


def events_key(scan_id: uuid.UUID | str) -> str:
    return f"scans:events:{scan_id}"


def finished_key(scan_id: uuid.UUID | str) -> str:
    """Set once, by the first worker that reaches a terminal state for the scan."""
    return f"scans:finished:{scan_id}"


def _fields(status: str, data: dict[str, Any]) -> dict[str, str]:
    return {"status": status, "data": json.dumps(data, ensure_ascii=False, default=str)}


async def publish(redis: Redis, scan_id: uuid.UUID, status: str, data: dict[str, Any]) -> None:
    key = events_key(scan_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(key, _fields(status, data), maxlen=EVENTS_MAX_LENGTH, approximate=True)
        pipe.expire(key, EVENTS_TTL_SECONDS)
        await pipe.execute()


def publish_sync(redis: SyncRedis, scan_id: str, status: str, data: dict[str, Any]) -> None:
    key = events_key(scan_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(key, _fields(status, data), maxlen=EVENTS_MAX_LENGTH, approximate=True)
        pipe.expire(key, EVENTS_TTL_SECONDS)
        pipe.execute()


def decode(fields: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return fields["status"], json.loads(fields["data"])
