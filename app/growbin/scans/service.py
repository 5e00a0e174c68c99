"""Scans: accept a photo, hand it to the workers, report progress and results to its owner."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.db import get_databases
from growbin.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from growbin.core.settings import get_settings
from growbin.core.storage import (
    DirectUploadUnsupported,
    ObjectNotFound,
    get_store,
)
from growbin.scans import images, outbox, progress, repository
from growbin.scans.models import TERMINAL_STATUSES, Scan, ScanStatus
from growbin.scans.schemas import (
    CategoryCount,
    ScanPage,
    ScanResult,
    ScanStats,
    UploadRequest,
    UploadTicket,
)
from growbin.scans.schemas import Scan as ScanView

log = logging.getLogger(__name__)

# An SSE connection ends after this long even if the scan is still running; the client
# reconnects with Last-Event-ID and resumes.
SSE_MAX_SECONDS = 300
SSE_POLL_MS = 2000
SSE_KEEPALIVE_SECONDS = 15


class ImageRejectedError(AppError):
    """An upload that is not an acceptable image; code and status come from the check."""

    def __init__(self, rejected: images.ImageRejected) -> None:
        super().__init__(rejected.message)
        self.status_code = rejected.status_code
        self.code = rejected.code


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The image is larger than allowed."


class IdempotencyKeyReused(AppError):
    status_code = 422
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different image."


def upload_prefix(user_id: uuid.UUID) -> str:
    return f"uploads/{user_id}/"


def image_key(scan_id: uuid.UUID | str) -> str:
    return f"scans/{scan_id}/image.jpg"


def thumbnail_key(scan_id: uuid.UUID | str) -> str:
    return f"scans/{scan_id}/thumbnail.jpg"


def max_upload_bytes() -> int:
    return get_settings().scans.max_upload_bytes


def too_large(size: int) -> PayloadTooLarge:
    limit = max_upload_bytes()
    return PayloadTooLarge(
        f"The image is {size} bytes; the limit is {limit} bytes.",
        details={"max_bytes": limit},
    )


async def upload_ticket(user_id: uuid.UUID, request: UploadRequest) -> UploadTicket:
    if request.content_length > max_upload_bytes():
        raise too_large(request.content_length)
    key = f"{upload_prefix(user_id)}{uuid.uuid4()}"
    try:
        signed = await asyncio.to_thread(
            get_store().presigned_put, key, request.content_type, request.content_length
        )
    except DirectUploadUnsupported as exc:
        raise Conflict(str(exc), details={"storage_backend": "filesystem"}) from exc
    return UploadTicket(
        object_key=key,
        url=signed.url,
        method="PUT",
        headers=signed.headers,
        expires_in=signed.expires_in,
    )


def _fingerprint(kind: str, value: bytes) -> str:
    return hashlib.sha256(kind.encode() + b"\0" + value).hexdigest()


async def _existing(
    session: AsyncSession, user_id: uuid.UUID, idempotency_key: str, fingerprint: str
) -> Scan | None:
    found = await repository.by_idempotency_key(session, user_id, idempotency_key)
    if found is not None and found.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={"scan_id": str(found.id)})
    return found


async def _publish(redis: Redis, scan_id: uuid.UUID, status: ScanStatus, data: dict) -> None:
    try:
        await progress.publish(
            redis, scan_id, status, {"scan_id": str(scan_id), "at": time.time(), **data}
        )
    except RedisError:
        # Progress is a convenience: GET /{id} reports the state from PostgreSQL.
        log.warning("could not publish the %s event of scan %s", status, scan_id)


async def _accept(
    session: AsyncSession,
    redis: Redis,
    *,
    user_id: uuid.UUID,
    idempotency_key: str | None,
    fingerprint: str,
    scan_id: uuid.UUID,
    source_key: str,
    write_source: bytes | None,
) -> tuple[Scan, bool]:
    if write_source is not None:
        try:
            await asyncio.to_thread(
                get_store().put, source_key, write_source, "application/octet-stream"
            )
        except Exception as exc:
            log.exception("could not store the upload of scan %s", scan_id)
            raise ServiceUnavailable("The image store is unavailable; please try again.") from exc
    scan = await repository.insert_queued(
        session,
        scan_id=scan_id,
        user_id=user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        source_key=source_key,
    )
    if scan is None:
        # A concurrent request with the same key won the insert.
        await session.rollback()
        assert idempotency_key is not None
        existing = await _existing(session, user_id, idempotency_key, fingerprint)
        assert existing is not None
        return existing, False
    # Announced before the commit that makes the task visible to the relay, so "queued"
    # always precedes the workers' events (a scan whose commit fails is never shown).
    await _publish(redis, scan_id, ScanStatus.QUEUED, {})
    # The scan and its ingest task commit together; the relay hands the task to the broker,
    # now or, while RabbitMQ is away, when it is back.
    await session.commit()
    outbox.wake()
    return scan, True


async def scan_from_bytes(
    session: AsyncSession,
    redis: Redis,
    user_id: uuid.UUID,
    data: bytes,
    idempotency_key: str | None,
) -> tuple[Scan, bool]:
    fingerprint = _fingerprint("bytes", hashlib.sha256(data).digest())
    if idempotency_key:
        existing = await _existing(session, user_id, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    try:
        images.inspect(data, get_settings().scans.max_pixels)
    except images.ImageRejected as exc:
        raise ImageRejectedError(exc) from exc
    scan_id = uuid.uuid4()
    return await _accept(
        session,
        redis,
        user_id=user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        scan_id=scan_id,
        source_key=f"{upload_prefix(user_id)}direct-{scan_id}",
        write_source=data,
    )


async def scan_from_upload(
    session: AsyncSession,
    redis: Redis,
    user_id: uuid.UUID,
    object_key: str,
    idempotency_key: str | None,
) -> tuple[Scan, bool]:
    if not object_key.startswith(upload_prefix(user_id)) or ".." in object_key:
        raise Forbidden("The object key does not belong to one of your uploads.")
    fingerprint = _fingerprint("object", object_key.encode())
    if idempotency_key:
        existing = await _existing(session, user_id, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    try:
        size = await asyncio.to_thread(get_store().size, object_key)
    except ObjectNotFound as exc:
        raise AppError(
            "Nothing was uploaded under this object key (or the upload has not finished).",
            details={"object_key": object_key},
        ) from exc
    except ValueError as exc:
        raise Forbidden("The object key is not valid.") from exc
    except Exception as exc:
        log.exception("could not look up upload %s", object_key)
        raise ServiceUnavailable("The image store is unavailable; please try again.") from exc
    if size == 0:
        raise ImageRejectedError(images.ImageRejected("empty_image", "The upload is empty."))
    if size > max_upload_bytes():
        raise too_large(size)
    return await _accept(
        session,
        redis,
        user_id=user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        scan_id=uuid.uuid4(),
        source_key=object_key,
        write_source=None,
    )


async def owned_scan(session: AsyncSession, user_id: uuid.UUID, scan_id: uuid.UUID) -> Scan:
    scan = await repository.get(session, scan_id)
    # Someone else's scan is "not found": its existence is not revealed.
    if scan is None or scan.user_id != user_id:
        raise NotFound("No such scan.")
    return scan


def view(scan: Scan) -> ScanView:
    store = get_store()
    return ScanView(
        id=scan.id,
        status=ScanStatus(scan.status),
        created_at=scan.created_at,
        updated_at=scan.updated_at,
        completed_at=scan.completed_at,
        image_url=store.public_url(scan.image_key) if scan.image_key else None,
        thumbnail_url=store.public_url(scan.thumbnail_key) if scan.thumbnail_key else None,
        result=ScanResult.model_validate(scan.result) if scan.result else None,
        failure_reason=scan.failure_reason,
    )


def _encode_cursor(scan: Scan) -> str:
    raw = f"{scan.created_at.isoformat()}|{scan.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, scan_id = raw.split("|")
        # PostgreSQL compares in UTC: a time that parses but has no UTC equivalent (year 1 at
        # +14:00, or no offset at all) is as invalid as one that does not parse.
        after = datetime.fromisoformat(created_at)
        if after.tzinfo is None:
            raise ValueError("the cursor's time has no UTC offset")
        return after.astimezone(UTC), uuid.UUID(scan_id)
    except (ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise AppError("The cursor is not valid.", details={"cursor": cursor}) from exc


async def history(
    session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None
) -> ScanPage:
    after = _decode_cursor(cursor) if cursor else None
    rows = await repository.history(session, user_id, limit + 1, after)
    page = rows[:limit]
    return ScanPage(
        items=[view(scan) for scan in page],
        next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None,
    )


async def stats(session: AsyncSession, user_id: uuid.UUID) -> ScanStats:
    counts = await repository.category_counts(session, user_id)
    return ScanStats(
        total_scans=sum(n for _, n in counts),
        categories=[CategoryCount(category=c, scans=n) for c, n in counts],
    )


def _sse(event: str, data: dict, event_id: str | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id else []
    lines += [f"event: {event}", f"data: {json.dumps(data, ensure_ascii=False, default=str)}"]
    return "\n".join(lines) + "\n\n"


def _final_from_database(scan: Scan) -> str:
    data: dict = {"scan_id": str(scan.id)}
    if scan.status == ScanStatus.FAILED:
        data["reason"] = scan.failure_reason
    elif scan.result:
        data["result"] = scan.result
    return _sse(scan.status, data)


# A Redis stream id is two unsigned 64-bit integers.
STREAM_ID_PART_MAX = 2**64 - 1


def check_event_id(last_event_id: str | None) -> None:
    """Refuse a Last-Event-ID that Redis cannot read before the stream starts, not inside it."""
    if last_event_id is None:
        return
    if any(int(part) > STREAM_ID_PART_MAX for part in last_event_id.split("-")):
        raise InvalidRequest(
            "Last-Event-ID is not an event id of this stream.",
            details={"last_event_id": last_event_id},
        )


async def events(redis: Redis, scan: Scan, last_event_id: str | None) -> AsyncIterator[str]:
    """Progress as SSE frames, oldest first, ending with the terminal event."""
    key = progress.events_key(scan.id)
    cursor = last_event_id or "0-0"
    if not await redis.exists(key):
        # Events expire after a day; a finished scan still answers with its outcome.
        async with get_databases().sessionmaker("scans")() as session:
            fresh = await repository.get(session, scan.id)
        if fresh is not None and fresh.status in TERMINAL_STATUSES:
            yield _final_from_database(fresh)
            return
    started = last_sent = time.monotonic()
    while time.monotonic() - started < SSE_MAX_SECONDS:
        response = await redis.xread({key: cursor}, count=50, block=SSE_POLL_MS)
        for _, entries in response or []:
            for entry_id, fields in entries:
                cursor = entry_id
                status, data = progress.decode(fields)
                yield _sse(status, data, entry_id)
                last_sent = time.monotonic()
                if status in TERMINAL_STATUSES:
                    return
        if time.monotonic() - last_sent >= SSE_KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()


async def purge_user(user_id: uuid.UUID) -> None:
    async with get_databases().sessionmaker("scans")() as session:
        # Objects first: if this fails, the rows still list them for the retry.
        store = get_store()
        for key in await repository.object_keys_of(session, user_id):
            await asyncio.to_thread(store.delete, key)
        await repository.delete_user(session, user_id)
        await session.commit()
