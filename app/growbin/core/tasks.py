"""Names of the work the API hands to the workers: tasks and the queues that carry them.

Shared by the publisher (the scans outbox) and the consumers (growbin.worker), so neither
spells them on its own.
"""

STORAGE_QUEUE = "storage"
AI_QUEUE = "ai"
INGEST_TASK = "growbin.scans.ingest"
CLASSIFY_TASK = "growbin.scans.classify"


def ingest_task_id(scan_id: str) -> str:
    # Fixed per scan: a redelivered or republished message carries the same id.
    return f"ingest-{scan_id}"


def classify_task_id(scan_id: str) -> str:
    return f"classify-{scan_id}"
