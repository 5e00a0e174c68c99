"""The scan tasks: ``ingest`` on queue ``storage``, ``classify`` on queue ``ai``.

Each state transition is journalled (growbin.worker.journal) before the progress event is
published and before the task returns, and therefore before the broker message is
acknowledged (``acks_late``). Tasks are idempotent: outputs have fixed keys per scan, the
journal only ever moves a scan forward, and the first finisher alone announces the result.

Temporary failures (model provider down, 429, timeouts, object store errors) are retried with
exponential backoff and jitter up to ``GROWBIN_WORKER__MAX_ATTEMPTS`` tries; then the scan
ends ``failed`` with a reason the user can read. A malformed message is rejected without
requeue, so RabbitMQ dead-letters it to ``<queue>.dlq``.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Any

from celery import Task
from celery.exceptions import Reject

from growbin.core.storage import ObjectNotFound, ObjectTooLarge
from growbin.core.tasks import AI_QUEUE, CLASSIFY_TASK, INGEST_TASK, classify_task_id
from growbin.scans import guidance, images
from growbin.scans.models import ScanStatus
from growbin.scans.service import image_key, thumbnail_key
from growbin.vision.base import ClassificationFailed, ProviderUnavailable, get_classifier
from growbin.worker.celery_app import app
from growbin.worker.metrics import TASKS
from growbin.worker.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


def _checked_ids(scan_id: Any, user_id: Any) -> tuple[str, str]:
    try:
        return str(uuid.UUID(str(scan_id))), str(uuid.UUID(str(user_id)))
    except ValueError as exc:
        # Retrying cannot fix a malformed message: dead-letter it.
        raise Reject(f"malformed scan message ({scan_id!r}, {user_id!r})", requeue=False) from exc


def transition(
    runtime: Runtime, scan_id: str, user_id: str, status: ScanStatus, **fields: Any
) -> None:
    runtime.journal.append(scan_id, user_id, status, fields)
    runtime.publish(scan_id, status, {"at": time.time(), **_event_fields(status, fields)})


def _event_fields(status: ScanStatus, fields: dict[str, Any]) -> dict[str, Any]:
    if status is ScanStatus.FAILED:
        return {"reason": fields["failure_reason"]}
    if "result" in fields:
        return {"result": fields["result"]}
    return {k: v for k, v in fields.items() if k in ("image_url", "thumbnail_url")}


def finish(
    runtime: Runtime, task: str, scan_id: str, user_id: str, status: ScanStatus, **fields: Any
) -> None:
    runtime.journal.append(scan_id, user_id, status, fields)
    if runtime.claim_finish(scan_id):
        runtime.publish(scan_id, status, {"at": time.time(), **_event_fields(status, fields)})
    TASKS.labels(task, "failed" if status is ScanStatus.FAILED else "done").inc()


def retry_delay(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    ceiling = min(cap, base * 2**retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_or_fail(
    task: Task, runtime: Runtime, scan_id: str, user_id: str, reason: str, exc: Exception
) -> None:
    settings = runtime.settings.worker
    attempt = task.request.retries + 1
    if attempt >= settings.max_attempts:
        finish(
            runtime,
            task.name,
            scan_id,
            user_id,
            ScanStatus.FAILED,
            failure_reason=f"{reason} Gave up after {attempt} attempts; please try again later.",
        )
        return
    delay = retry_delay(
        task.request.retries, settings.retry_base_seconds, settings.retry_max_seconds
    )
    runtime.publish(
        scan_id,
        "retrying",
        {"at": time.time(), "attempt": attempt, "in_seconds": delay, "reason": reason},
    )
    TASKS.labels(task.name, "retried").inc()
    raise task.retry(countdown=delay, exc=exc, max_retries=settings.max_attempts)


def _already_stored(runtime: Runtime, scan_id: str) -> bool:
    try:
        runtime.store.size(thumbnail_key(scan_id))  # written last
    except ObjectNotFound:
        return False
    return True


@app.task(bind=True, name=INGEST_TASK)
def ingest(self: Task, scan_id: str, user_id: str, source_key: str) -> None:
    """Sniff, check, normalise (EXIF stripped) and store the photo and its thumbnail."""
    scan_id, user_id = _checked_ids(scan_id, user_id)
    if not isinstance(source_key, str):
        raise Reject(f"malformed source key {source_key!r}", requeue=False)
    runtime = get_runtime()
    if runtime.already_finished(scan_id):
        TASKS.labels(self.name, "skipped").inc()
        return
    limits = runtime.settings.scans
    transition(runtime, scan_id, user_id, ScanStatus.PROCESSING)
    try:
        data = runtime.store.get(source_key, max_bytes=limits.max_upload_bytes)
        normalized = images.normalize(
            data, limits.max_pixels, limits.normalized_max_side, limits.thumbnail_max_side
        )
        runtime.store.put(image_key(scan_id), normalized.jpeg, "image/jpeg")
        runtime.store.put(thumbnail_key(scan_id), normalized.thumbnail, "image/jpeg")
    except images.ImageRejected as exc:
        finish(runtime, self.name, scan_id, user_id, ScanStatus.FAILED, failure_reason=exc.message)
        return
    except ObjectNotFound:
        if not _already_stored(runtime, scan_id):
            finish(
                runtime,
                self.name,
                scan_id,
                user_id,
                ScanStatus.FAILED,
                failure_reason="The uploaded photo is missing; please upload it again.",
            )
            return
        # A redelivery after the original was deleted: the clean copies are there already.
    except ObjectTooLarge:
        finish(
            runtime,
            self.name,
            scan_id,
            user_id,
            ScanStatus.FAILED,
            failure_reason="The uploaded photo is larger than allowed.",
        )
        return
    except Exception as exc:
        log.warning("image store error for scan %s: %s", scan_id, exc)
        retry_or_fail(self, runtime, scan_id, user_id, "The image store is unavailable.", exc)
        return
    transition(
        runtime,
        scan_id,
        user_id,
        ScanStatus.STORED,
        image_key=image_key(scan_id),
        thumbnail_key=thumbnail_key(scan_id),
        image_url=runtime.store.public_url(image_key(scan_id)),
        thumbnail_url=runtime.store.public_url(thumbnail_key(scan_id)),
    )
    classify.apply_async(args=[scan_id, user_id], queue=AI_QUEUE, task_id=classify_task_id(scan_id))
    # The original may carry GPS and camera EXIF: only the clean copies are kept.
    try:
        runtime.store.delete(source_key)
    except Exception as exc:
        log.warning("original upload %s of scan %s not deleted: %s", source_key, scan_id, exc)
    TASKS.labels(self.name, "done").inc()


@app.task(bind=True, name=CLASSIFY_TASK)
def classify(self: Task, scan_id: str, user_id: str) -> None:
    """Classify the stored photo and join the answer with the knowledge base."""
    scan_id, user_id = _checked_ids(scan_id, user_id)
    runtime = get_runtime()
    if runtime.already_finished(scan_id):
        TASKS.labels(self.name, "skipped").inc()
        return
    transition(runtime, scan_id, user_id, ScanStatus.CLASSIFYING)
    try:
        jpeg = runtime.store.get(image_key(scan_id))
    except ObjectNotFound:
        finish(
            runtime,
            self.name,
            scan_id,
            user_id,
            ScanStatus.FAILED,
            failure_reason="The stored photo is missing; please scan again.",
        )
        return
    except Exception as exc:
        retry_or_fail(self, runtime, scan_id, user_id, "The image store is unavailable.", exc)
        return
    try:
        classification = get_classifier().classify(jpeg)
    except ProviderUnavailable as exc:
        retry_or_fail(self, runtime, scan_id, user_id, str(exc), exc)
        return
    except ClassificationFailed as exc:
        finish(runtime, self.name, scan_id, user_id, ScanStatus.FAILED, failure_reason=str(exc))
        return
    min_confidence = runtime.settings.scans.min_confidence
    status = guidance.outcome(classification, min_confidence)
    result = guidance.build_result(classification, min_confidence)
    finish(
        runtime,
        self.name,
        scan_id,
        user_id,
        status,
        category=result["category"]["slug"] if result["category"] else None,
        item=result["item"]["slug"] if result["item"] else None,
        confidence=classification.confidence,
        classifier=classification.classifier,
        result=result,
    )
