"""The outbox relay: hands accepted scans to the workers, also across a broker outage.

The scan API writes each scan and its ingest task (``scan_outbox``) in one PostgreSQL
transaction and answers 202 at once; it never talks to RabbitMQ in the request. The relay
runs inside every process that serves the scans API (both runtimes start it with the API, see
``growbin.scans.router.domain``): it publishes pending messages oldest first, waiting for the
broker's confirmation of each (Celery's ``confirm_publish``), and marks them sent in the
transaction that locked them. While RabbitMQ is away the messages wait and the relay retries
with a growing pause; when it is back they go out in order.

One relay publishes at a time (a PostgreSQL advisory lock held for the transaction), so API
processes and replicas never reorder or double-publish between themselves. A relay that dies
after the broker confirmed a message but before its transaction committed leaves the message
pending, and it is published again: the workers recognise a second delivery (fixed task ids,
a journal that only moves a scan forward, one finisher per scan), so it never makes a second
result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from prometheus_client import Gauge

from growbin.core.db import get_databases
from growbin.core.settings import get_settings
from growbin.scans import repository
from growbin.scans.models import OutboxMessage

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key of the relay ("GRWBOUTB" as an int64).
RELAY_LOCK_KEY = 0x4752_5742_4F55_5442
# Publishing gives up after these tries within one attempt; the relay then pauses.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
RETRY_MAX_SECONDS = 10.0
# How often the backlog gauges are refreshed.
OBSERVE_SECONDS = 5.0
# Sent rows are kept this long (when was a scan handed to the broker?), then deleted.
SENT_RETENTION_SECONDS = 3600
PRUNE_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0

OUTBOX_DEPTH = Gauge(
    "growbin_scans_outbox_depth",
    "Accepted scan tasks not yet confirmed by the broker.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "growbin_scans_outbox_oldest_age_seconds",
    "Age of the oldest scan task not yet confirmed by the broker (0 when none waits).",
)


@dataclass(frozen=True)
class Message:
    id: int
    task: str
    queue: str
    task_id: str
    args: list

    @classmethod
    def of(cls, row: OutboxMessage) -> Message:
        return cls(row.id, row.task, row.queue, row.task_id, row.args)


class PublishFailed(Exception):
    def __init__(self, published: list[int], cause: BaseException) -> None:
        super().__init__(f"published {len(published)} before failing: {cause!r}")
        self.published = published


def publish(messages: list[Message]) -> list[int]:
    """Publish in order, each confirmed by the broker; the ids published (blocking)."""
    from growbin.worker.celery_app import app as celery_app

    published: list[int] = []
    try:
        with celery_app.producer_or_acquire() as producer:
            for message in messages:
                celery_app.send_task(
                    message.task,
                    args=message.args,
                    queue=message.queue,
                    task_id=message.task_id,
                    producer=producer,
                    retry_policy=PUBLISH_RETRY_POLICY,
                )
                published.append(message.id)
    except Exception as exc:
        raise PublishFailed(published, exc) from exc
    return published


class OutboxRelay:
    def __init__(self, *, poll_seconds: float, batch_size: int) -> None:
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observed_at = float("-inf")
        self._pruned_at = float("-inf")

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scan-outbox-relay")

    async def stop(self) -> None:
        global _current
        if _current is self:
            _current = None
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            # A batch being published finishes and is marked; one stuck on an unreachable
            # database is cancelled (its messages stay pending for the next relay).
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, STOP_TIMEOUT_SECONDS)

    async def relay_once(self) -> int:
        """Publish one batch of pending messages; how many were published and marked sent."""
        async with get_databases().sessionmaker("scans")() as session, session.begin():
            if not await session.scalar(repository.try_relay_lock(RELAY_LOCK_KEY)):
                return 0  # another process is relaying; it takes these too
            rows = await repository.pending_outbox(session, self.batch_size)
            if not rows:
                return 0
            failure: PublishFailed | None = None
            try:
                published = await asyncio.to_thread(publish, [Message.of(row) for row in rows])
            except PublishFailed as exc:
                failure, published = exc, exc.published
            if published:
                await repository.mark_outbox_sent(session, published)
                if time.monotonic() - self._pruned_at >= PRUNE_SECONDS:
                    await repository.prune_outbox(session, SENT_RETENTION_SECONDS)
                    self._pruned_at = time.monotonic()
        if failure is not None:
            raise failure
        return len(published)

    async def observe(self) -> None:
        """Refresh the backlog gauges (a read: it never waits for the relay's row locks)."""
        async with get_databases().sessionmaker("scans", autocommit=True)() as session:
            depth, oldest_age = await repository.outbox_backlog(session)
        OUTBOX_DEPTH.set(depth)
        OUTBOX_OLDEST_AGE.set(oldest_age)

    async def _run(self) -> None:
        pause = 0.0
        while not self._stop.is_set():
            # Cleared before reading the outbox: a scan accepted meanwhile wakes the next round.
            self._wake.clear()
            published = 0
            try:
                published = await self.relay_once()
                pause = 0.0
            except Exception as exc:
                pause = min(RETRY_MAX_SECONDS, max(0.5, pause * 2))
                log.warning("scan outbox not relayed (retrying in %.1f s): %s", pause, exc)
            if time.monotonic() - self._observed_at >= OBSERVE_SECONDS:
                try:
                    await self.observe()
                    self._observed_at = time.monotonic()
                except Exception as exc:
                    log.warning("scan outbox backlog not observed: %s", exc)
            if pause:
                # Not woken by new scans while the broker or the database is away.
                await self._sleep(pause)
            elif published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


_current: OutboxRelay | None = None


def start_relay() -> OutboxRelay:
    """Start this process's relay (with the scans API, see its DomainSpec)."""
    global _current
    scans = get_settings().scans
    _current = OutboxRelay(
        poll_seconds=scans.outbox_poll_seconds, batch_size=scans.outbox_batch_size
    )
    _current.start()
    return _current


def wake() -> None:
    """Tell this process's relay that a message was just committed."""
    if _current is not None:
        _current.wake()
