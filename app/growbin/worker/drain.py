"""The drain loop: journal entries to PostgreSQL, oldest first, then deleted from the journal.

Applying an entry is idempotent: a state is written only over a lower stage (see
``growbin.scans.models.STAGES``), so replaying an entry, or a second delivery of the same task,
changes nothing. While PostgreSQL is unreachable entries stay in the journal (the depth and
age metrics show it) and the loop retries with a growing pause.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import update

from growbin.core.db import close_databases, get_databases
from growbin.scans.models import STAGES, Scan, ScanStatus
from growbin.users import service as users_service
from growbin.worker.journal import Entry, Journal

log = logging.getLogger(__name__)

BATCH = 100
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


async def apply_entry(entry: Entry) -> bool:
    """Write one entry to PostgreSQL; True if it moved the scan forward."""
    status = ScanStatus(entry.status)
    at = _timestamp(entry.created_at)
    scan_id = uuid.UUID(entry.scan_id)
    values = {key: value for key, value in entry.fields.items() if key in _COLUMNS}
    values.update(status=status, stage=STAGES[status], updated_at=at)
    if STAGES[status] == STAGES[ScanStatus.COMPLETED]:
        values["completed_at"] = at
    sessionmaker = get_databases().sessionmaker("scans")
    async with sessionmaker() as session:
        moved = await session.scalar(
            update(Scan)
            .where(Scan.id == scan_id, Scan.stage < STAGES[status])
            .values(**values)
            .returning(Scan.id)
        )
        await session.commit()
    if status is ScanStatus.COMPLETED:
        await _record_statistics(scan_id)
    return moved is not None


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
        applied = 0
        for entry in self.journal.pending(BATCH):
            try:
                await asyncio.wait_for(apply_entry(entry), APPLY_TIMEOUT_SECONDS)
            except Exception as exc:
                self.journal.record_failure(entry.seq, f"{type(exc).__name__}: {exc}")
                raise
            self.journal.remove(entry.seq)
            applied += 1
        return applied

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
            # A last pass so a clean shutdown leaves nothing behind when PostgreSQL is up.
            try:
                await self.drain_once()
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
