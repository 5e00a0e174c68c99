"""Bad input: refused with a clear 4xx by the API, or a readable `failed` from the worker."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import read_events, wait_for_scan
from sample_images import (
    coffee_photo,
    damaged_png,
    fifty_megapixel_png,
    small_png,
    truncated_jpeg,
)

pytestmark = pytest.mark.integration


async def post_file(api, headers, data: bytes, key: str | None = None):
    extra = {"Idempotency-Key": key} if key else {}
    return await api.post(
        "/api/v1/scans",
        headers={**headers, **extra},
        files={"image": ("upload.bin", data, "image/jpeg")},
    )


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["request_id"]
    return error


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty_image"),
        (b"%PDF-1.7 this is a document, not a photo", 415, "not_an_image"),
        (b"GIF89a" + b"\x00" * 64, 415, "unsupported_image_type"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, 415, "unsupported_image_type"),
        (truncated_jpeg(), 422, "truncated_image"),
        (fifty_megapixel_png(), 422, "image_too_large"),
    ],
    ids=["zero-bytes", "not-an-image", "gif", "heic", "truncated", "50-megapixel"],
)
async def test_unacceptable_files_are_refused(scans_stack, api, new_user, data, status, code):
    headers = await new_user()
    error_of(await post_file(api, headers, data), status, code)
    assert (await api.get("/api/v1/scans", headers=headers)).json()["items"] == []


async def test_oversized_upload_is_refused(scans_stack, api, new_user):
    headers = await new_user()
    # The stack limits uploads to 2 MiB.
    error = error_of(
        await post_file(api, headers, b"\xff\xd8\xff" + b"\0" * (3 << 20)), 413, "payload_too_large"
    )
    assert error["details"]["max_bytes"] == 2 << 20


async def test_idempotency_key_reused_with_another_image(scans_stack, api, new_user):
    headers = await new_user()
    first = await post_file(api, headers, small_png(1), key="key-1")
    assert first.status_code == 202
    error = error_of(
        await post_file(api, headers, small_png(2), key="key-1"), 422, "idempotency_key_reused"
    )
    assert error["details"]["scan_id"] == first.json()["id"]
    # Keys are per user: another user may use the same key.
    other = await post_file(api, await new_user(), small_png(2), key="key-1")
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


async def test_malformed_requests(scans_stack, api, new_user):
    headers = await new_user()
    no_field = await api.post(
        "/api/v1/scans", headers=headers, files={"photo": ("a.jpg", coffee_photo(), "image/jpeg")}
    )
    error_of(no_field, 422, "invalid_request")
    plain = await api.post(
        "/api/v1/scans", headers={**headers, "Content-Type": "text/plain"}, content=b"hello"
    )
    error_of(plain, 400, "bad_request")
    foreign = await api.post(
        "/api/v1/scans",
        headers=headers,
        json={"object_key": "uploads/00000000-0000-0000-0000-000000000000/x"},
    )
    error_of(foreign, 403, "forbidden")
    extra = await api.post("/api/v1/scans", headers=headers, json={"object_key": "a", "x": 1})
    error_of(extra, 422, "invalid_request")
    # Presigned uploads need S3; the filesystem store says so instead of pretending.
    ticket = await api.post(
        "/api/v1/scans/uploads",
        headers=headers,
        json={"content_type": "image/jpeg", "content_length": 1000},
    )
    error_of(ticket, 409, "conflict")
    bad_cursor = await api.get("/api/v1/scans", headers=headers, params={"cursor": "!!"})
    error_of(bad_cursor, 400, "bad_request")


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}",  # parses, but has no UTC equivalent
        f"9999-12-31T23:59:59-14:00|{uuid.uuid4()}",
        f"2026-12-01T10:00:00|{uuid.uuid4()}",  # no UTC offset
        "2026-12-01T10:00:00+00:00|not-a-uuid",
        "2026-12-01T10:00:00+00:00",
    ],
    ids=["year-1-at-plus-14", "year-9999-at-minus-14", "naive", "bad-uuid", "no-separator"],
)
async def test_out_of_range_cursors_are_a_400(scans_stack, api, new_user, raw):
    headers = await new_user()
    response = await api.get("/api/v1/scans", headers=headers, params={"cursor": _cursor(raw)})
    error_of(response, 400, "bad_request")


async def test_a_valid_cursor_from_another_offset_pages_on(scans_stack, api, new_user):
    headers = await new_user()
    later = (datetime.now(UTC) + timedelta(days=1)).astimezone(timezone(timedelta(hours=14)))
    response = await api.get(
        "/api/v1/scans",
        headers=headers,
        params={"cursor": _cursor(f"{later.isoformat()}|{uuid.uuid4()}")},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "event_id",
    ["99999999999999999999-0", "0-18446744073709551616"],
    ids=["time-part", "sequence-part"],
)
async def test_a_last_event_id_beyond_a_stream_id_is_a_422_before_the_stream(
    scans_stack, api, new_user, event_id
):
    headers = await new_user()
    scan_id = (await post_file(api, headers, small_png(5))).json()["id"]
    response = await api.get(
        f"/api/v1/scans/{scan_id}/events", headers={**headers, "Last-Event-ID": event_id}
    )
    error_of(response, 422, "invalid_request")
    # The largest id Redis can hold is read, not refused: the stream waits after it.
    largest = "18446744073709551615-18446744073709551615"
    async with api.stream(
        "GET", f"/api/v1/scans/{scan_id}/events", headers={**headers, "Last-Event-ID": largest}
    ) as stream:
        assert stream.status_code == 200


async def test_damaged_pixels_fail_in_the_worker_which_keeps_serving(scans_stack, api, new_user):
    scans_stack.start_worker("openai")
    headers = await new_user()
    damaged = (await post_file(api, headers, damaged_png())).json()["id"]
    good = (await post_file(api, headers, coffee_photo())).json()["id"]
    events = await read_events(api, damaged, headers)
    assert [name for name, _ in events] == ["queued", "processing", "failed"]
    assert "damaged" in events[-1][1]["reason"]
    scan = await wait_for_scan(api, damaged, headers)
    assert scan["status"] == "failed" and "damaged" in scan["failure_reason"]
    assert (await wait_for_scan(api, good, headers))["status"] == "completed"
