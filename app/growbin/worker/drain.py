"""The drain loop: journal entries to PostgreSQL in batches, oldest first, then deleted.

A batch is folded per scan (fields merged, the furthest state wins) and written in one
transaction.

Applying an entry is idempotent: a state is written only over a lower stage (see
``growbin.scans.models.STAGES``), so replaying an entry, or a second delivery of the same task,
changes nothing. While PostgreSQL is unreachable entries stay in the journal (the depth and
age metrics show it) and the loop retries with a growing pause.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from growbin.core.db import close_databases, get_databases
from growbin.scans.models import STAGES, Scan, ScanStatus
from growbin.users import service as users_service
from growbin.worker.journal import Entry, Journal

log = logging.getLogger(__name__)

BATCH = 500
SHUTDOWN_DRAIN_SECONDS = 10
APPLY_TIMEOUT_SECONDS = 10
MAX_PAUSE_SECONDS = 5.0
_COLUMNS = {
    "image_key",
    "thumbnail_key",
    "category",
    "item",
    "confidence",
    "classifier",
    "result",
    "failure_reason",
}


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class ScanUpdate:
    """Journal entries of one scan folded into one write: fields merged, furthest state wins."""

    scan_id: uuid.UUID
    status: ScanStatus
    created_at: float
    fields: dict[str, Any]


def fold(entries: list[Entry]) -> list[ScanUpdate]:
    updates: dict[str, ScanUpdate] = {}
    for entry in entries:
        status = ScanStatus(entry.status)
        folded = updates.get(entry.scan_id)
        if folded is None:
            updates[entry.scan_id] = ScanUpdate(
                uuid.UUID(entry.scan_id), status, entry.created_at, dict(entry.fields)
            )
        elif STAGES[status] > STAGES[folded.status]:
            # A second terminal entry (from a duplicate delivery) is ignored: the first wins.
            folded.status = status
            folded.created_at = entry.created_at
            folded.fields.update(entry.fields)
    return list(updates.values())


async def apply_updates(updates: list[ScanUpdate]) -> None:
    """Write folded entries in one transaction; each moves its scan only forward."""
    sessionmaker = get_databases().sessionmaker("scans")
    async with sessionmaker() as session:
        for item in updates:
            at = _timestamp(item.created_at)
            values = {key: value for key, value in item.fields.items() if key in _COLUMNS}
            values.update(status=item.status, stage=STAGES[item.status], updated_at=at)
            if STAGES[item.status] == STAGES[ScanStatus.COMPLETED]:
                values["completed_at"] = at
            await session.execute(
                update(Scan)
                .where(Scan.id == item.scan_id, Scan.stage < STAGES[item.status])
                .values(**values)
            )
        await session.commit()
    for item in updates:
        if item.status is ScanStatus.COMPLETED:
            await _record_statistics(item.scan_id)


async def _record_statistics(scan_id: uuid.UUID) -> None:
    """Count a completed scan in the users domain once (the flag survives replays)."""
    sessionmaker = get_databases().sessionmaker("scans")
    async with sessionmaker() as session:
        scan = await session.get(Scan, scan_id, with_for_update=True)
        if scan is None or scan.stats_recorded or scan.category is None:
            return
        await users_service.record_scan(scan.user_id, scan.category, scan.completed_at)
        scan.stats_recorded = True
        await session.commit()


class Drainer:
    """Runs the drain loop in a thread of the worker's main process."""

    def __init__(self, journal: Journal, interval_seconds: float) -> None:
        self.journal = journal
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def drain_once(self) -> int:
        entries = self.journal.pending(BATCH)
        if not entries:
            return 0
        try:
            await asyncio.wait_for(apply_updates(fold(entries)), APPLY_TIMEOUT_SECONDS)
        except Exception as exc:
            self.journal.record_failure(entries[0].seq, f"{type(exc).__name__}: {exc}")
            raise
        self.journal.remove_through(entries[-1].seq)
        return len(entries)

    async def _loop(self) -> None:
        pause = self.interval
        try:
            while not self._stop.is_set():
                try:
                    applied = await self.drain_once()
                    pause = self.interval
                    if applied:
                        continue
                except Exception as exc:
                    log.warning("journal drain failed (%s); entries stay pending", exc)
                    pause = min(MAX_PAUSE_SECONDS, pause * 2)
                await asyncio.sleep(pause)
            # Last passes so a clean shutdown leaves nothing behind when PostgreSQL is up.
            deadline = time.monotonic() + SHUTDOWN_DRAIN_SECONDS
            try:
                while await self.drain_once() and time.monotonic() < deadline:
                    pass
            except Exception as exc:
                log.warning("journal not empty at shutdown (%s); replayed on next start", exc)
        finally:
            await close_databases()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._loop()), name="wal-drain", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
