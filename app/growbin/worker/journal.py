"""The worker's local write-ahead journal (SQLite in WAL mode).

Every scan state transition and result is appended here, durably (``synchronous=FULL``),
before the task returns and the broker message is acknowledged. The drain loop
(:mod:`growbin.worker.drain`) copies entries to PostgreSQL in order and deletes them; entries
left over by a crash or a PostgreSQL outage are replayed when the worker starts again.
Every process and thread has its own connection; SQLite's locking serialises the writers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    scan_id: str
    user_id: str
    status: str
    fields: dict[str, Any]
    created_at: float
    attempts: int


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork (prefork pool children) or a thread.
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(SCHEMA)
        self._local.connection = connection
        self._local.pid = os.getpid()
        return connection

    def append(self, scan_id: str, user_id: str, status: str, fields: dict[str, Any]) -> int:
        cursor = self._connection().execute(
            "INSERT INTO journal (scan_id, user_id, status, fields, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (scan_id, user_id, status, json.dumps(fields, ensure_ascii=False), time.time()),
        )
        return int(cursor.lastrowid)

    def pending(self, limit: int = 100) -> list[Entry]:
        rows = self._connection().execute(
            "SELECT seq, scan_id, user_id, status, fields, created_at, attempts "
            "FROM journal ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            Entry(seq, scan_id, user_id, status, json.loads(fields), created_at, attempts)
            for seq, scan_id, user_id, status, fields, created_at, attempts in rows
        ]

    def remove_through(self, seq: int) -> None:
        """Delete every entry up to ``seq``: a drained batch is always the oldest entries."""
        self._connection().execute("DELETE FROM journal WHERE seq <= ?", (seq,))

    def record_failure(self, seq: int, error: str) -> None:
        self._connection().execute(
            "UPDATE journal SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
            (error[:500], seq),
        )

    def depth(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM journal").fetchone()[0])

    def oldest_age_seconds(self) -> float:
        oldest = self._connection().execute("SELECT min(created_at) FROM journal").fetchone()[0]
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.connection = None
