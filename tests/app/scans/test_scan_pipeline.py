"""End to end: upload -> 202 -> SSE progress in order -> result with category and steps."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import pytest
from conftest import read_events, wait_for_scan
from growbin.core.db import get_databases
from growbin.scans.models import Scan
from growbin.vision.base import category_slugs, item_slugs
from PIL import Image
from sample_images import cat_photo, coffee_photo, small_png
from sqlalchemy import func, select

pytestmark = pytest.mark.integration

PROGRESS = ["queued", "processing", "stored", "classifying"]


async def post_photo(api, headers, data: bytes, key: str | None = None, name="photo.jpg"):
    extra = {"Idempotency-Key": key} if key else {}
    return await api.post(
        "/api/v1/scans",
        headers={**headers, **extra},
        files={"image": (name, data, "application/octet-stream")},
    )


async def wait_for_stats(api, headers, expected: dict[str, int], path: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        body = (await api.get(path, headers=headers)).json()
        counts = {c["category"]: c["scans"] for c in body["categories"]}
        if counts == expected or time.monotonic() > deadline:
            assert counts == expected, body
            return body
        await asyncio.sleep(0.2)


async def test_openai_classifier_end_to_end(scans_stack, api, new_user):
    scans_stack.start_worker("openai")
    headers = await new_user()
    photo = coffee_photo(with_exif=True)

    accepted = await post_photo(api, headers, photo, key="first-photo")
    assert accepted.status_code == 202, accepted.text
    scan_id = accepted.json()["id"]
    assert accepted.json()["status"] == "queued"
    assert accepted.headers["location"].endswith(f"/api/v1/scans/{scan_id}")

    ids: list[str] = []
    events = await read_events(api, scan_id, headers, ids=ids)
    assert [name for name, _ in events] == [*PROGRESS, "completed"]
    assert all(ids) and len(set(ids)) == len(ids)
    final = events[-1][1]["result"]
    # A client that lost its connection resumes after the last event it saw.
    resumed = await read_events(api, scan_id, {**headers, "Last-Event-ID": ids[1]})
    assert resumed == events[2:]
    assert final["category"]["slug"] == "clear-pet"
    assert final["item"]["slug"] == "water-bottle"
    assert final["steps"] and all(step["ko"] and step["en"] for step in final["steps"])

    scan = await wait_for_scan(api, scan_id, headers)
    assert scan["status"] == "completed"
    assert scan["result"] == final
    assert scan["image_url"] == f"https://cdn.growbin.test/scans/{scan_id}/image.jpg"

    # The model got the normalised JPEG and a schema limited to the knowledge base.
    (request,) = scans_stack.fake_model.requests
    schema = request["response_format"]["json_schema"]["schema"]["properties"]
    assert schema["category"]["enum"] == [*category_slugs(), None]
    assert schema["item"]["enum"] == [*item_slugs(), None]
    assert scans_stack.fake_model.problems == []

    # Stored image: a clean JPEG without the camera and GPS tags, and a small thumbnail.
    stored = Image.open(
        io.BytesIO((scans_stack.objects / f"scans/{scan_id}/image.jpg").read_bytes())
    )
    assert stored.format == "JPEG" and dict(stored.getexif()) == {}
    assert "exif" not in stored.info
    # The original upload, GPS tags and all, is not kept.
    assert (scans_stack.objects / "uploads").is_dir()
    assert not list((scans_stack.objects / "uploads").rglob(f"*{scan_id}*"))
    thumb = Image.open(
        io.BytesIO((scans_stack.objects / f"scans/{scan_id}/thumbnail.jpg").read_bytes())
    )
    assert max(thumb.size) <= 320

    # Same key, same photo: the same scan, nothing new queued.
    again = await post_photo(api, headers, photo, key="first-photo")
    assert again.status_code == 202 and again.json()["id"] == scan_id
    assert again.headers["idempotent-replayed"] == "true"
    assert len(scans_stack.fake_model.requests) == 1

    # The result feeds the statistics of both the scans and the users domain.
    await wait_for_stats(api, headers, {"clear-pet": 1}, "/api/v1/scans/stats")
    await wait_for_stats(api, headers, {"clear-pet": 1}, "/api/v1/users/me/stats")
    history = (await api.get("/api/v1/scans", headers=headers)).json()
    assert [item["id"] for item in history["items"]] == [scan_id]


async def test_offline_classifier_end_to_end(scans_stack, api, new_user, offline_model):
    scans_stack.start_worker("offline")
    headers = await new_user()

    coffee = (await post_photo(api, headers, coffee_photo())).json()["id"]
    cat = (await post_photo(api, headers, cat_photo())).json()["id"]

    events = await read_events(api, coffee, headers)
    assert [name for name, _ in events] == [*PROGRESS, "completed"]
    result = events[-1][1]["result"]
    assert result["classifier"] == "offline:efficientnet-lite0"
    # A cup (ceramic): 불연성 쓰레기, with the knowledge base's steps.
    assert result["category"]["slug"] == "non-combustible"
    assert result["item"]["slug"] == "ceramic-dish"
    assert result["confidence"] >= 0.55
    assert result["steps"]

    # A cat is no household item: no category is asserted, the user gets candidates.
    events = await read_events(api, cat, headers)
    assert [name for name, _ in events] == [*PROGRESS, "needs_clarification"]
    unsure = events[-1][1]["result"]
    assert unsure["category"] is None and unsure["steps"] == []
    assert 1 <= len(unsure["candidates"]) <= 3
    assert unsure["reasons"]
    scan = await wait_for_scan(api, cat, headers)
    assert scan["status"] == "needs_clarification"
    assert scans_stack.fake_model.requests == []


async def test_only_the_owner_sees_a_scan(scans_stack, api, new_user):
    owner, stranger = await new_user(), await new_user()
    scan_id = (await post_photo(api, owner, small_png())).json()["id"]
    for path in (f"/api/v1/scans/{scan_id}", f"/api/v1/scans/{scan_id}/events"):
        response = await api.get(path, headers=stranger)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert (await api.get(f"/api/v1/scans/{scan_id}")).status_code == 401
    assert (await api.get("/api/v1/scans", headers=stranger)).json()["items"] == []
    missing = await api.get(f"/api/v1/scans/{uuid.uuid4()}", headers=owner)
    assert missing.status_code == 404


async def test_account_deletion_purges_scans_and_images(scans_stack, api, new_user):
    scans_stack.start_worker("openai")
    headers = await new_user()
    scan_id = (await post_photo(api, headers, small_png())).json()["id"]
    await wait_for_scan(api, scan_id, headers)
    user_id = (await api.get("/api/v1/users/me", headers=headers)).json()["user_id"]
    image = scans_stack.objects / f"scans/{scan_id}/image.jpg"
    assert image.exists()
    assert (await api.delete("/api/v1/users/me", headers=headers)).status_code == 202

    async def remaining() -> int:
        async with get_databases().sessionmaker("scans")() as session:
            return await session.scalar(
                select(func.count()).select_from(Scan).where(Scan.user_id == uuid.UUID(user_id))
            )

    for _ in range(100):  # up to 20 s
        if not await remaining():
            break
        await asyncio.sleep(0.2)
    assert await remaining() == 0
    assert not image.exists()
