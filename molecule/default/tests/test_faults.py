"""Fault drills on the running platform: a scan in flight survives its dependencies failing.

Each drill stops or restarts one real service on its node (systemd inside the node's
container) while a scan is on its way, brings it back in a ``finally`` and waits until every
domain answers again, so one failed drill never leaves the shared platform broken. What must
hold: every scan the platform accepted ends ``completed`` (none lost, none stuck), the
platform works afterwards without any manual step, and an outage shows as 503 with the one
JSON error body, never as a 500.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import httpx
from growbin_client import (
    SEOUL,
    TERMINAL_SCAN_STATES,
    EventStream,
    PlatformError,
    User,
    photo_of_a_cup,
)
from growbin_nodes import Nodes

WORKER_UNIT = "growbin-worker"
RABBITMQ_UNIT = "rabbitmq-server"
# The cluster itself: Debian's `postgresql` unit is only an umbrella that runs nothing.
POSTGRESQL_UNIT = "postgresql@15-main"
PG_OUTAGE_SECONDS = float(os.environ.get("GROWBIN_E2E_PG_OUTAGE_SECONDS", "30"))
BROKER_OUTAGE_SECONDS = 30.0
# Long enough to show a scan waits for the stopped worker, not merely that it was slow.
AI_OUTAGE_SECONDS = 5.0
# A scan redelivered after a fault may wait out the worker's retry backoff first.
SCAN_WITHIN = 180.0
STAGE_ORDER = ["queued", "processing", "stored", "classifying", "completed"]


def accept_scan(user: User) -> str:
    response = user.upload_photo(photo_of_a_cup())
    assert response.status_code == 202, response.text
    return response.json()["id"]


def assert_completed(user: User, scan_id: str) -> None:
    """Completed in the database, and its progress stream ends there in stage order."""
    scan = user.wait_for_scan(scan_id, within=SCAN_WITHIN)
    assert scan["status"] == "completed", scan
    assert scan["result"]["steps"], scan
    stream: EventStream = user.follow_scan(scan_id)
    # A redelivered task may repeat a stage or announce a retry; it never goes backwards.
    stages = [STAGE_ORDER.index(name) for name in stream.names if name in STAGE_ORDER]
    assert stages == sorted(stages) and stream.names[-1] == "completed", stream.names


def assert_parked_at_stored(user: User, scan_id: str) -> None:
    """The storage worker did its part; the AI step waits in RabbitMQ for the stopped worker."""
    scan = user.wait_for_scan(scan_id, until=frozenset({"stored"}), within=60)
    assert scan["status"] == "stored", scan


def test_a_scan_waits_for_a_stopped_ai_worker(user: User, nodes: Nodes) -> None:
    # Uploaded before the stop, so it is somewhere in the pipeline when the worker goes:
    # the worker's warm shutdown finishes it, or acks_late hands it to the next worker.
    in_flight = accept_scan(user)
    with nodes.stopped("worker-ai", WORKER_UNIT, user):
        waiting = accept_scan(user)
        assert_parked_at_stored(user, waiting)
        time.sleep(AI_OUTAGE_SECONDS)
        still = user.scan(waiting).json()
        assert still["status"] == "stored", f"a scan finished without its AI worker: {still}"
    for scan_id in (in_flight, waiting):
        assert_completed(user, scan_id)


def test_a_queued_scan_survives_a_rabbitmq_restart(user: User, nodes: Nodes) -> None:
    # With the AI worker stopped, the scan's classify message sits in the `ai` queue while
    # the broker restarts: only a durable queue with a persistent message gets it through.
    with nodes.stopped("worker-ai", WORKER_UNIT, user):
        queued = accept_scan(user)
        assert_parked_at_stored(user, queued)
        try:
            nodes.restart("k8s-rabbitmq", RABBITMQ_UNIT)
        finally:
            nodes.start("k8s-rabbitmq", RABBITMQ_UNIT)
    assert_completed(user, queued)


def test_everyone_reconnects_after_a_rabbitmq_restart(user: User, nodes: Nodes) -> None:
    running = accept_scan(user)
    try:
        nodes.restart("k8s-rabbitmq", RABBITMQ_UNIT)
    finally:
        nodes.start("k8s-rabbitmq", RABBITMQ_UNIT)
        user.wait_until_serving()
    assert_completed(user, running)
    # A new scan needs the API's publisher and both workers' consumers connected again.
    after = accept_scan(user)
    assert_completed(user, after)


def test_scans_sent_while_rabbitmq_is_stopped_are_accepted_and_complete(
    user: User, nodes: Nodes
) -> None:
    # The scan API writes each scan with its task in PostgreSQL (the outbox) and answers 202;
    # its relay publishes the tasks once RabbitMQ is back.
    accepted: list[str] = []
    with nodes.stopped("k8s-rabbitmq", RABBITMQ_UNIT, user):
        outage_ends = time.monotonic() + BROKER_OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            accepted.append(accept_scan(user))
            time.sleep(BROKER_OUTAGE_SECONDS / 6)
        waiting = [user.scan(scan_id).json()["status"] for scan_id in accepted]
        assert waiting == ["queued"] * len(accepted), waiting
    assert len(accepted) >= 5, accepted
    for scan_id in accepted:
        assert_completed(user, scan_id)


def ask_about(user: User, scan_id: str) -> EventStream:
    """A chat answer about the scan, retried while the platform says 503 (and only then)."""
    conversation_id = user.start_conversation().json()["id"]
    deadline = time.monotonic() + 60
    while True:
        try:
            return user.ask(conversation_id, "How do I put this out?", scan_id=scan_id)
        except PlatformError as exc:
            if exc.status_code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_a_postgresql_outage_loses_no_scan(user: User, nodes: Nodes) -> None:
    accepted = [accept_scan(user)]
    broken: list[str] = []

    def during_outage(call: Callable[[], httpx.Response]) -> httpx.Response | None:
        try:
            return call()
        except httpx.TransportError as exc:
            broken.append(repr(exc))
            return None

    # Every response from the outage until a chat about a scan works again: the chat domain
    # also reads the recycling and scans databases, so it needs all its connections back.
    with user.platform.recording() as seen:
        with nodes.stopped("k8s-postgresql", POSTGRESQL_UNIT, user):
            outage_ends = time.monotonic() + PG_OUTAGE_SECONDS
            while time.monotonic() < outage_ends:
                upload = during_outage(lambda: user.upload_photo(photo_of_a_cup()))
                if upload is not None and upload.status_code == 202:
                    accepted.append(upload.json()["id"])
                during_outage(user.history)
                during_outage(lambda: user.platform.nearby(*SEOUL))
                time.sleep(3)

        # Nothing lost: every accepted scan finished and the history lists each of them.
        for scan_id in accepted:
            assert_completed(user, scan_id)
        history = user.history()
        assert history.status_code == 200, history.text
        items = history.json()["items"]
        assert set(accepted) <= {item["id"] for item in items}, (accepted, items)
        stuck = [item for item in items if item["status"] not in TERMINAL_SCAN_STATES]
        assert not stuck, stuck
        after = accept_scan(user)
        assert_completed(user, after)
        assert ask_about(user, after).names[-1] == "done"

    # An outage is "unavailable, try again": never an internal error, a bad gateway or a hang.
    assert not broken, broken
    failed = [exchange for exchange in seen if exchange.status >= 500 and exchange.status != 503]
    assert not failed, f"{len(failed)} of {len(seen)} responses: {failed[:10]}"
    # The app's one error body, not a page from the edge.
    unavailable = [exchange for exchange in seen if exchange.status == 503]
    assert all(e.content_type.startswith("application/json") for e in unavailable), unavailable
