"""Worker metrics on their own port (9808): journal depth and age, task outcomes.

The journal gauges are read from SQLite at scrape time, so they are right whichever pool
process wrote the entries.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from growbin.worker.journal import Journal

TASKS = Counter(
    "growbin_worker_tasks_total",
    "Scan tasks by task name and outcome (done, retried, failed, skipped).",
    ["task", "outcome"],
)


class JournalCollector(Collector):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "growbin_worker_wal_depth",
            "Journal entries not yet written to PostgreSQL.",
            value=self.journal.depth(),
        )
        yield GaugeMetricFamily(
            "growbin_worker_wal_oldest_age_seconds",
            "Age of the oldest journal entry not yet written to PostgreSQL (0 when empty).",
            value=self.journal.oldest_age_seconds(),
        )


def serve(journal: Journal, port: int) -> None:
    REGISTRY.register(JournalCollector(journal))
    start_http_server(port)
