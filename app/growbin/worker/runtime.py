"""Per-process resources of a worker, created on first use (after the pool forks)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from growbin.core.settings import Settings, get_settings
from growbin.core.storage import ObjectStore, get_store
from growbin.scans import progress
from growbin.worker.journal import Journal

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    journal: Journal
    redis: Redis
    store: ObjectStore

    def publish(self, scan_id: str, status: str, data: dict[str, Any]) -> None:
        # Progress events are a convenience for the client; the journal is the record.
        try:
            progress.publish_sync(self.redis, scan_id, status, {"scan_id": scan_id, **data})
        except RedisError as exc:
            log.warning("progress event %s of scan %s not published: %s", status, scan_id, exc)

    def claim_finish(self, scan_id: str) -> bool:
        """True for the first caller that finishes this scan (so one terminal event)."""
        try:
            return bool(
                self.redis.set(progress.finished_key(scan_id), "1", nx=True, ex=7 * 24 * 3600)
            )
        except RedisError:
            return True

    def already_finished(self, scan_id: str) -> bool:
        try:
            return bool(self.redis.exists(progress.finished_key(scan_id)))
        except RedisError:
            return False


_runtime: Runtime | None = None
_pid: int | None = None


def get_runtime() -> Runtime:
    global _runtime, _pid
    if _runtime is None or _pid != os.getpid():
        settings = get_settings()
        _runtime = Runtime(
            settings=settings,
            journal=Journal(settings.worker.wal_path),
            redis=Redis.from_url(
                settings.redis.url.get_secret_value(),
                decode_responses=True,
                socket_connect_timeout=3,
                socket_timeout=5,
            ),
            store=get_store(),
        )
        _pid = os.getpid()
    return _runtime
