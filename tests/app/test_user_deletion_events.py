"""The user.deleted stream: at-least-once delivery, retry after a failed purge."""

from __future__ import annotations

import uuid

from growbin.core.events import (
    RETRY_IDLE_MS,
    USER_DELETED_STREAM,
    UserDeletionConsumer,
    publish_user_deleted,
)
from growbin.core.redis import get_redis


async def test_failed_purge_stays_pending_and_is_retried(monkeypatch):
    purged: list[uuid.UUID] = []
    failures = [RuntimeError("database down")]

    async def purge(user_id: uuid.UUID) -> None:
        if failures:
            raise failures.pop()
        purged.append(user_id)

    consumer = UserDeletionConsumer("scratch", purge, block_ms=10)
    await consumer._ensure_group()
    user_id = uuid.uuid4()
    await publish_user_deleted(user_id)

    assert await consumer.process_once() == 0
    pending = await get_redis().xpending(USER_DELETED_STREAM, "scratch")
    assert pending["pending"] == 1

    # Reclaimed once it has been idle for RETRY_IDLE_MS; pretend that time has passed.
    monkeypatch.setattr("growbin.core.events.RETRY_IDLE_MS", 0)
    assert RETRY_IDLE_MS > 0
    assert await consumer.process_once() == 1
    assert purged == [user_id]
    assert (await get_redis().xpending(USER_DELETED_STREAM, "scratch"))["pending"] == 0


async def test_each_domain_group_gets_every_deletion():
    seen: dict[str, list[uuid.UUID]] = {"one": [], "two": []}
    consumers = []
    for name in seen:

        async def purge(user_id: uuid.UUID, name: str = name) -> None:
            seen[name].append(user_id)

        consumer = UserDeletionConsumer(name, purge, block_ms=10)
        await consumer._ensure_group()
        consumers.append(consumer)
    users = [uuid.uuid4(), uuid.uuid4()]
    for user_id in users:
        await publish_user_deleted(user_id)
    for consumer in consumers:
        assert await consumer.process_once() == 2
    assert seen == {"one": users, "two": users}
