"""The scan outbox: a scan accepted while RabbitMQ is away is published when it is back.

Real processes throughout: the API (with its outbox relay) and a worker under a private
RabbitMQ node and a private scans database, so stopping the broker disturbs no other test.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import jwt
import pika
import pytest
from conftest import (
    BrokerStack,
    amqp_parameters,
    connect_as_scans_owner,
    post_photo,
    read_events,
    user_stats,
    wait_for_scan,
    wait_until,
)
from sample_images import small_png
from support import assert_error

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "needs_clarification", "failed"}


async def metric(api: httpx.AsyncClient, name: str) -> float:
    """One unlabelled sample of the API's /metrics."""
    text = (await api.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not exported"
    return float(match.group(1))


def queued_task_ids(broker: BrokerStack) -> list[str]:
    """Ids of the messages in the storage queue, front first (they stay in the queue)."""
    connection = pika.BlockingConnection(amqp_parameters(broker.rabbit.url))
    try:
        channel = connection.channel()
        ids = []
        while (message := channel.basic_get("storage", auto_ack=False))[0] is not None:
            ids.append(message[1].headers["id"])
        return ids  # unacknowledged: closing the channel puts them back
    finally:
        connection.close()


async def wait_for_queue(broker: BrokerStack, depths: dict[str, int], what: str) -> None:
    """Until the private broker's queues hold exactly ``depths`` messages (30 s at most)."""

    async def reached() -> bool:
        now = await asyncio.to_thread(broker.queue_depths)
        return all(now[queue] == count for queue, count in depths.items())

    await wait_until(reached, 30, what)


async def test_scans_accepted_while_the_broker_is_down_complete_when_it_is_back(
    private_broker: BrokerStack, new_user
):
    stack = private_broker.stack
    headers = await new_user()
    await asyncio.to_thread(private_broker.rabbit.stop)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        scan_ids = []
        for n in range(4):
            response = await api.post(
                "/api/v1/scans",
                headers={**headers, "Idempotency-Key": f"outage-{n}"},
                files={"image": ("p.png", small_png(n), "image/png")},
            )
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "queued"
            scan_ids.append(response.json()["id"])

        # They wait in the outbox, visibly: depth and age of the oldest.
        async def backlog_exported() -> bool:
            return await metric(api, "growbin_scans_outbox_depth") == len(scan_ids)

        await wait_until(backlog_exported, 20, "the outbox depth metric")
        assert await metric(api, "growbin_scans_outbox_oldest_age_seconds") > 0
        for scan_id in scan_ids:
            scan = (await api.get(f"/api/v1/scans/{scan_id}", headers=headers)).json()
            assert scan["status"] == "queued", scan

        await asyncio.to_thread(private_broker.rabbit.start)

        await wait_for_queue(
            private_broker, {"storage": len(scan_ids)}, "the relay to publish after the outage"
        )
        # In the order they were accepted.
        task_ids = await asyncio.to_thread(queued_task_ids, private_broker)
        assert task_ids == [f"ingest-{scan_id}" for scan_id in scan_ids]

        stack.start_worker("openai")
        for scan_id in scan_ids:
            scan = await wait_for_scan(api, scan_id, headers, within=60)
            assert scan["status"] == "completed", scan

        async def backlog_cleared() -> bool:
            return await metric(api, "growbin_scans_outbox_depth") == 0

        await wait_until(backlog_cleared, 20, "the outbox depth to return to 0")
        assert await metric(api, "growbin_scans_outbox_oldest_age_seconds") == 0


async def test_a_relay_killed_between_confirm_and_mark_makes_one_result(
    private_broker: BrokerStack, new_user
):
    """The relay publishes, the broker confirms, the process dies before marking it sent."""
    stack = private_broker.stack
    headers = await new_user()
    await asyncio.to_thread(private_broker.rabbit.stop)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        scan_id = await post_photo(api, headers, small_png(7))

    env = private_broker.stack.env
    database = await connect_as_scans_owner(env, env["GROWBIN_DATABASE__SCANS__NAME"])
    try:
        # A SHARE lock lets the relay lock and read its rows but blocks the UPDATE that
        # marks them sent: the relay stops exactly after the broker's confirmation.
        async with database.transaction():
            await database.execute("LOCK TABLE scan_outbox IN SHARE MODE")
            await asyncio.to_thread(private_broker.rabbit.start)

            await wait_for_queue(private_broker, {"storage": 1}, "the relay to publish once")
            blocked = await database.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE scan_outbox%'"
            )
            assert blocked == 1, "the relay is not waiting to mark the message sent"
            await asyncio.to_thread(private_broker.kill_api)
        pending = await database.fetchval("SELECT count(*) FROM scan_outbox WHERE sent_at IS NULL")
        assert pending == 1, "the killed relay's mark must not have committed"
    finally:
        await database.close()

    # The next relay (a new API process) publishes the same task again.
    await asyncio.to_thread(private_broker.start_api)

    await wait_for_queue(
        private_broker, {"storage": 2}, "the message to be published a second time"
    )
    stack.start_worker("openai", concurrency=2)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        scan = await wait_for_scan(api, scan_id, headers, within=60)
        assert scan["status"] == "completed", scan

        await wait_for_queue(
            private_broker, {"storage": 0, "ai": 0}, "both deliveries to be consumed"
        )
        # One result: one terminal event, one scan in the history, counted once.
        events = await read_events(api, scan_id, headers)
        assert [name for name, _ in events if name in TERMINAL] == ["completed"]
        history = (await api.get("/api/v1/scans", headers=headers)).json()["items"]
        assert [item["id"] for item in history] == [scan_id]

        async def counted_once() -> bool:
            return sum((await user_stats(api, headers)).values()) == 1

        await wait_until(counted_once, 15, "the scan to be counted in the user's stats")
        await asyncio.sleep(1)  # a second count would come from the second delivery's drain
        assert sum((await user_stats(api, headers)).values()) == 1


async def test_a_503_says_when_to_retry_and_the_same_key_retry_completes(
    scans_stack, api, new_user
):
    headers = await new_user()
    token = headers["Authorization"].removeprefix("Bearer ")
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    # The image store fails for this user: a file where the user's upload folder goes.
    blocker = scans_stack.objects / "uploads" / user_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    try:
        request = {
            "headers": {**headers, "Idempotency-Key": "after-503"},
            "files": {"image": ("p.png", small_png(3), "image/png")},
        }
        refused = await api.post("/api/v1/scans", **request)
        assert_error(refused, 503, "service_unavailable")
        uploaded = await api.post(
            "/api/v1/scans",
            headers=headers,
            json={"object_key": f"uploads/{user_id}/photo"},
        )
        assert_error(uploaded, 503, "service_unavailable")
    finally:
        blocker.unlink()
    # Nothing was accepted, so the same key starts the scan (not a replayed failure).
    scans_stack.start_worker("openai")
    retried = await api.post("/api/v1/scans", **request)
    assert retried.status_code == 202, retried.text
    assert "idempotent-replayed" not in retried.headers
    scan = await wait_for_scan(api, retried.json()["id"], headers)
    assert scan["status"] == "completed", scan
