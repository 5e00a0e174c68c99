"""Account deletion across domain databases: a durable ``user.deleted`` event.

Each domain owns its database, so no service can delete another domain's rows. The users
service records the deletion and appends it to a Redis stream; every running service whose
domain keeps user data consumes the stream in its own consumer group (named after the domain)
and purges the user from its own database. An entry is acknowledged only after the purge
committed, so a crash or an outage leaves it pending and it is retried (pending entries older
than ``RETRY_IDLE_MS`` are reclaimed). Purges are idempotent, so a retry is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError, ResponseError

from growbin.core.redis import get_redis
from growbin.core.security import user_tokens_invalid_before_key

logger = logging.getLogger(__name__)

USER_DELETED_STREAM = "growbin:events:user-deleted"
STREAM_MAX_LENGTH = 100_000
RETRY_IDLE_MS = 30_000
DELETION_MARKER_TTL_SECONDS = 90 * 24 * 3600

PurgeUser = Callable[[uuid.UUID], Awaitable[None]]


def deleted_user_key(user_id: uuid.UUID | str) -> str:
    return f"users:deleted:{user_id}"


async def publish_user_deleted(user_id: uuid.UUID) -> None:
    """Revoke every token of the user now and announce the deletion to all domains."""
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        # Tokens issued up to this second stop working in every service immediately.
        pipe.set(
            user_tokens_invalid_before_key(user_id),
            int(time.time()) + 1,
            ex=DELETION_MARKER_TTL_SECONDS,
        )
        pipe.set(deleted_user_key(user_id), "1", ex=DELETION_MARKER_TTL_SECONDS)
        pipe.xadd(
            USER_DELETED_STREAM,
            {"user_id": str(user_id)},
            maxlen=STREAM_MAX_LENGTH,
            approximate=True,
        )
        await pipe.execute()


async def is_user_deleted(user_id: uuid.UUID) -> bool:
    return bool(await get_redis().exists(deleted_user_key(user_id)))


class UserDeletionConsumer:
    """Runs one domain's purge for every ``user.deleted`` entry, at least once."""

    def __init__(self, domain: str, purge: PurgeUser, *, block_ms: int = 1000) -> None:
        self.domain = domain
        self.purge = purge
        self.block_ms = block_ms
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _ensure_group(self) -> None:
        try:
            await get_redis().xgroup_create(USER_DELETED_STREAM, self.domain, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            user_id = uuid.UUID(fields["user_id"])
        except (KeyError, ValueError):
            logger.error("dropping malformed user.deleted entry %s", entry_id)
            await get_redis().xack(USER_DELETED_STREAM, self.domain, entry_id)
            return
        await self.purge(user_id)
        await get_redis().xack(USER_DELETED_STREAM, self.domain, entry_id)
        logger.info("purged deleted user from %s", self.domain)

    async def process_once(self) -> int:
        """Handle reclaimed stale entries and new ones; return how many were handled."""
        redis = get_redis()
        handled = 0
        _, reclaimed, *_ = await redis.xautoclaim(
            USER_DELETED_STREAM, self.domain, self.consumer, RETRY_IDLE_MS, "0", count=50
        )
        batches = [reclaimed]
        response = await redis.xreadgroup(
            self.domain,
            self.consumer,
            {USER_DELETED_STREAM: ">"},
            count=50,
            block=self.block_ms,
        )
        for _, entries in response or []:
            batches.append(entries)
        for entries in batches:
            for entry_id, fields in entries:
                if fields is None:  # trimmed from the stream while pending
                    continue
                try:
                    await self._handle(entry_id, fields)
                    handled += 1
                except Exception:
                    # Left pending: reclaimed and retried after RETRY_IDLE_MS.
                    logger.exception("purge of a deleted user failed in %s", self.domain)
        return handled

    async def _run(self) -> None:
        # The flag, not only cancellation, ends the loop: redis-py may turn a cancellation in
        # the middle of a blocking read into a connection error, which the loop would survive.
        while not self._stopping:
            try:
                await self._ensure_group()
                while not self._stopping:
                    await self.process_once()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                # The stream or group vanished (Redis restarted without persistence, or was
                # flushed): recreate it at once.
                if "NOGROUP" not in str(exc):
                    logger.exception("user deletion consumer for %s failed", self.domain)
                    await asyncio.sleep(2)
            except (RedisError, OSError):
                if not self._stopping:
                    logger.warning("user deletion consumer for %s lost Redis", self.domain)
                    await asyncio.sleep(2)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"user-deletion-{self.domain}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
