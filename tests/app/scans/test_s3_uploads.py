"""Direct uploads to S3 (a local S3-compatible server, moto) with a presigned PUT, then a scan
from the uploaded object key; the worker reads and writes the bucket through boto3."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from conftest import (
    VENV_BIN,
    Stack,
    free_port,
    read_events,
    start_api,
    stop_process,
    wait_for_port,
    wait_for_scan,
)
from sample_images import coffee_photo, damaged_png

pytestmark = pytest.mark.integration

BUCKET = "growbin-test-images"


def start_moto(port: int, log) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port(port, process, log, 30)
    return process


@pytest.fixture(scope="module")
async def s3_stack(stack: Stack):
    port = free_port()
    moto = await asyncio.to_thread(start_moto, port, stack.tmp / "moto.log")
    env = dict(stack.env)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "growbin-test",
            "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
            "GROWBIN_STORAGE__BACKEND": "s3",
            "GROWBIN_STORAGE__BUCKET": BUCKET,
            "GROWBIN_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "GROWBIN_STORAGE__REGION": "us-east-1",
            "GROWBIN_STORAGE__PUBLIC_BASE_URL": "https://images.growbin.test",
        }
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=env["GROWBIN_STORAGE__ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=BUCKET)
    api_port = free_port()
    api = await asyncio.to_thread(start_api, env, api_port, stack.tmp / "api-s3.log")
    s3_stack = Stack(
        f"http://127.0.0.1:{api_port}", env, stack.objects, stack.tmp, stack.fake_model
    )
    try:
        yield s3_stack, s3
    finally:
        s3_stack.stop_workers()
        stop_process(api)
        stop_process(moto)


@pytest.fixture
async def s3_api(s3_stack):
    stack, _ = s3_stack
    stack.fake_model.reset()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        yield client


async def signed_up(api: httpx.AsyncClient) -> dict[str, str]:
    email = f"s3-{secrets.token_hex(5)}@example.org"
    await api.post("/api/v1/auth/signup", json={"email": email, "password": "Recycle-2026-ok"})
    login = await api.post(
        "/api/v1/auth/login", json={"email": email, "password": "Recycle-2026-ok"}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def upload(api, headers, data: bytes, content_type: str = "image/jpeg") -> str:
    ticket = await api.post(
        "/api/v1/scans/uploads",
        headers=headers,
        json={"content_type": content_type, "content_length": len(data)},
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    assert body["method"] == "PUT"
    assert body["headers"] == {"Content-Type": content_type, "Content-Length": str(len(data))}
    # Type and size are part of the signature, not just advice to the client.
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert 0 < int(query["X-Amz-Expires"][0]) <= 3600
    async with httpx.AsyncClient(timeout=30) as direct:
        put = await direct.put(body["url"], content=data, headers=body["headers"])
    assert put.status_code == 200, put.text
    return body["object_key"]


async def test_presigned_upload_then_scan(s3_stack, s3_api):
    stack, s3 = s3_stack
    stack.start_worker("openai")
    headers = await signed_up(s3_api)
    key = await upload(s3_api, headers, coffee_photo())

    first = await s3_api.post(
        "/api/v1/scans", headers={**headers, "Idempotency-Key": "s3-1"}, json={"object_key": key}
    )
    assert first.status_code == 202, first.text
    scan_id = first.json()["id"]
    events = await read_events(s3_api, scan_id, headers)
    assert [name for name, _ in events] == [
        "queued",
        "processing",
        "stored",
        "classifying",
        "completed",
    ]
    stored = [name for name, _ in events].index("stored")
    assert (
        events[stored][1]["image_url"] == f"https://images.growbin.test/scans/{scan_id}/image.jpg"
    )
    head = s3.head_object(Bucket=BUCKET, Key=f"scans/{scan_id}/image.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert s3.head_object(Bucket=BUCKET, Key=f"scans/{scan_id}/thumbnail.jpg")["ContentLength"] > 0
    scan = await wait_for_scan(s3_api, scan_id, headers)
    assert scan["result"]["category"]["slug"] == "clear-pet"
    # The original upload (with its EXIF) is deleted once the clean copies exist.
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)

    again = await s3_api.post(
        "/api/v1/scans", headers={**headers, "Idempotency-Key": "s3-1"}, json={"object_key": key}
    )
    assert again.json()["id"] == scan_id

    # What was uploaded is checked by its bytes: damaged pixels end as a readable failure.
    broken = await upload(s3_api, headers, damaged_png(), content_type="image/png")
    broken_id = (
        await s3_api.post("/api/v1/scans", headers=headers, json={"object_key": broken})
    ).json()["id"]
    failed = await wait_for_scan(s3_api, broken_id, headers)
    assert failed["status"] == "failed" and "damaged" in failed["failure_reason"]


async def test_upload_tickets_and_keys_are_checked(s3_stack, s3_api):
    headers = await signed_up(s3_api)
    too_big = await s3_api.post(
        "/api/v1/scans/uploads",
        headers=headers,
        json={"content_type": "image/jpeg", "content_length": 3 << 20},
    )
    assert too_big.status_code == 413
    wrong_type = await s3_api.post(
        "/api/v1/scans/uploads",
        headers=headers,
        json={"content_type": "text/html", "content_length": 10},
    )
    assert wrong_type.status_code == 422
    ticket = await s3_api.post(
        "/api/v1/scans/uploads",
        headers=headers,
        json={"content_type": "image/jpeg", "content_length": 10},
    )
    never_uploaded = await s3_api.post(
        "/api/v1/scans", headers=headers, json={"object_key": ticket.json()["object_key"]}
    )
    assert never_uploaded.status_code == 400
    assert "Nothing was uploaded" in never_uploaded.json()["error"]["message"]
    # Another user's upload key is refused.
    other = await signed_up(s3_api)
    key = await upload(s3_api, other, coffee_photo())
    stolen = await s3_api.post("/api/v1/scans", headers=headers, json={"object_key": key})
    assert stolen.status_code == 403
