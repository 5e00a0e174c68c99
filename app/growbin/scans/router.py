from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.core.errors import AppError, ErrorBody, InvalidRequest
from growbin.core.processes import UPLOAD_REQUEST_OVERHEAD_BYTES
from growbin.core.redis import get_redis
from growbin.core.security import CurrentUser
from growbin.scans import outbox, service
from growbin.scans.schemas import (
    Scan,
    ScanAccepted,
    ScanFromUpload,
    ScanPage,
    ScanStats,
    UploadRequest,
    UploadTicket,
)

ScansSession = Annotated[AsyncSession, Depends(session_dependency("scans"))]
RedisClient = Annotated[Redis, Depends(get_redis)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retrying with the same key returns the same scan",
    ),
]
READ_CHUNK = 1024 * 1024

router = APIRouter()

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ScanFromUpload.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {
            "model": ErrorBody,
            "description": "The image store takes no direct uploads (filesystem backend)",
        },
        413: {"model": ErrorBody, "description": "Image too large"},
    },
)
async def create_upload(body: UploadRequest, user: CurrentUser) -> UploadTicket:
    """A presigned S3 PUT for one image; its content type and exact size are signed."""
    return await service.upload_ticket(user.id, body)


async def _read_image(request: Request) -> bytes:
    limit = service.max_upload_bytes()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + UPLOAD_REQUEST_OVERHEAD_BYTES:
        raise service.too_large(int(declared))
    form = await request.form(max_files=1, max_fields=1)
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest(
                "The multipart body needs the photo in a file field named 'image'."
            )
        chunks, size = [], 0
        while chunk := await upload.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise service.too_large(size)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await form.close()


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_CREATE_BODY,
    responses={
        413: {"model": ErrorBody, "description": "Image too large"},
        415: {"model": ErrorBody, "description": "Not an image"},
    },
)
async def create_scan(
    request: Request,
    response: Response,
    user: CurrentUser,
    session: ScansSession,
    redis: RedisClient,
    idempotency_key: IdempotencyKey = None,
) -> ScanAccepted:
    """Start a scan from an uploaded object key (JSON) or a photo sent as multipart.

    202 with the scan id; follow ``events_url`` for progress. A retry with the same
    ``Idempotency-Key`` and the same image answers with the same scan.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        data = await _read_image(request)
        scan, created = await service.scan_from_bytes(
            session, redis, user.id, data, idempotency_key
        )
    elif content_type.startswith("application/json"):
        try:
            body = ScanFromUpload.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidRequest(
                details=[
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ]
            ) from exc
        scan, created = await service.scan_from_upload(
            session, redis, user.id, body.object_key, idempotency_key
        )
    else:
        raise AppError(
            "Send the photo as multipart/form-data or an uploaded object key as JSON.",
            details={"content_type": content_type},
        )
    response.headers["Location"] = str(request.url_for("get_scan", scan_id=scan.id))
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return ScanAccepted(
        id=scan.id,
        status=scan.status,
        events_url=str(request.url_for("scan_events", scan_id=scan.id)),
    )


router.add_api_route(
    "/",
    create_scan,
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    include_in_schema=False,
)


@router.get("")
async def list_scans(
    user: CurrentUser,
    session: ScansSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ScanPage:
    """The user's scans, newest first."""
    return await service.history(session, user.id, limit, cursor)


@router.get("/stats")
async def scan_stats(user: CurrentUser, session: ScansSession) -> ScanStats:
    """Completed scans per knowledge-base category."""
    return await service.stats(session, user.id)


@router.get("/{scan_id}")
async def get_scan(scan_id: uuid.UUID, user: CurrentUser, session: ScansSession) -> Scan:
    return service.view(await service.owned_scan(session, user.id, scan_id))


@router.get(
    "/{scan_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def scan_events(
    scan_id: uuid.UUID,
    user: CurrentUser,
    session: ScansSession,
    redis: RedisClient,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^\d{1,20}-\d{1,20}$")
    ] = None,
) -> StreamingResponse:
    """Progress as Server-Sent Events, oldest first, ending with the final state."""
    service.check_event_id(last_event_id)
    scan = await service.owned_scan(session, user.id, scan_id)
    return StreamingResponse(
        service.events(redis, scan, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


domain = DomainSpec(
    name="scans",
    router=router,
    purge_user=service.purge_user,
    # Wherever the scans API runs, its outbox relay runs: both runtimes, every replica.
    background=(outbox.start_relay,),
)
