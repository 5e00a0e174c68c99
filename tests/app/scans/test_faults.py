"""Faults: a worker killed mid-task, the model provider failing, poison messages, and
PostgreSQL going away while scans finish. Nothing is lost and nothing happens twice."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import (
    Stack,
    free_port,
    post_photo,
    purge_queues,
    queue_depths,
    read_events,
    start_api,
    stop_process,
    user_stats,
    wait_for_scan,
    wait_until,
)
from growbin.scans import progress
from redis import Redis
from sample_images import coffee_photo, small_png

pytestmark = pytest.mark.integration

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The issue asks for 30 s; CI keeps the default shorter, the mechanism is the same.
PG_OUTAGE_SECONDS = float(os.environ.get("GROWBIN_TEST_PG_OUTAGE_SECONDS", "8"))


async def test_worker_killed_mid_task_completes_exactly_once(scans_stack, api, new_user):
    fake = scans_stack.fake_model
    fake.latency_seconds = 5
    wal = scans_stack.tmp / "killed-node-wal.sqlite3"
    worker = scans_stack.start_worker("openai", wal_path=wal)
    headers = await new_user()
    scan_id = await post_photo(api, headers, coffee_photo())

    async def model_called() -> bool:
        return len(fake.requests) == 1

    await wait_until(model_called, 30, "the model call")
    worker.kill()  # SIGKILL, main process and pool: the message is still unacknowledged
    fake.latency_seconds = 0
    # The replacement starts on the same node (same journal): it replays what was pending
    # and RabbitMQ redelivers the classification.
    scans_stack.start_worker("openai", wal_path=wal)

    events = await read_events(api, scan_id, headers)
    names = [name for name, _ in events]
    assert names.count("completed") == 1 and names[-1] == "completed"
    assert names.index("stored") < names.index("classifying") < names.index("completed")
    scan = await wait_for_scan(api, scan_id, headers)
    assert scan["status"] == "completed"
    assert len(fake.requests) == 2  # the killed attempt and the redelivery

    async def counted() -> bool:
        return await user_stats(api, headers) == {"clear-pet": 1}

    await wait_until(counted, 15, "the statistics")
    await asyncio.sleep(1)  # a second count would have arrived by now
    assert await user_stats(api, headers) == {"clear-pet": 1}
    assert queue_depths()["ai"] == 0


async def test_pool_process_killed_mid_task_is_redelivered(scans_stack, api, new_user):
    fake = scans_stack.fake_model
    fake.latency_seconds = 5
    worker = scans_stack.start_worker("openai", pool="prefork", concurrency=1)
    headers = await new_user()
    scan_id = await post_photo(api, headers, small_png())

    async def model_called() -> bool:
        return len(fake.requests) == 1

    await wait_until(model_called, 30, "the model call")
    (child,) = worker.pool_processes()
    os.kill(child, signal.SIGKILL)  # the main process survives and sees the child die
    fake.latency_seconds = 0
    events = await read_events(api, scan_id, headers)
    assert [name for name, _ in events].count("completed") == 1
    assert (await wait_for_scan(api, scan_id, headers))["status"] == "completed"
    assert len(fake.requests) == 2
    assert worker.process.poll() is None


async def test_model_errors_are_retried_then_succeed(scans_stack, api, new_user):
    scans_stack.fake_model.faults.extend(["500", "429"])
    scans_stack.start_worker("openai")
    headers = await new_user()
    scan_id = await post_photo(api, headers, small_png())
    events = await read_events(api, scan_id, headers)
    retries = [data for name, data in events if name == "retrying"]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert "HTTP 500" in retries[0]["reason"] and "rate limited" in retries[1]["reason"]
    assert all(0 < r["in_seconds"] <= 1 for r in retries)
    assert events[-1][0] == "completed"
    assert len(scans_stack.fake_model.requests) == 3


@pytest.mark.parametrize(
    ("faults", "reason"),
    [(["429"] * 3, "rate limited"), (["hang:3"] * 3, "did not answer in time")],
    ids=["rate-limited", "timeouts"],
)
async def test_model_errors_exhaust_the_attempts(scans_stack, api, new_user, faults, reason):
    scans_stack.fake_model.faults.extend(faults)
    scans_stack.start_worker("openai")
    headers = await new_user()
    scan_id = await post_photo(api, headers, small_png())
    events = await read_events(api, scan_id, headers)
    assert [name for name, _ in events].count("retrying") == 2
    assert events[-1][0] == "failed"
    scan = await wait_for_scan(api, scan_id, headers)
    assert scan["status"] == "failed"
    assert reason in scan["failure_reason"]
    assert "Gave up after 3 attempts" in scan["failure_reason"]
    assert len(scans_stack.fake_model.requests) == 3


async def test_poison_messages_are_dead_lettered(scans_stack, api, new_user):
    from growbin.worker.celery_app import app as celery_app

    worker = scans_stack.start_worker("openai")
    purge_queues()
    celery_app.send_task("growbin.scans.ingest", args=["not-a-uuid", "nobody", 7], queue="storage")
    celery_app.send_task("growbin.scans.no_such_task", args=[1], queue="storage")

    async def dead_lettered() -> bool:
        return (await asyncio.to_thread(queue_depths))["storage.dlq"] == 2

    await wait_until(dead_lettered, 20, "two messages in storage.dlq")
    # The worker is still serving.
    headers = await new_user()
    scan_id = await post_photo(api, headers, small_png())
    assert (await wait_for_scan(api, scan_id, headers))["status"] == "completed"
    assert worker.process.poll() is None
    purge_queues()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster, so stopping it disturbs nobody else's tests."""

    def __init__(self, user: str, password: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="growbin-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = user
        password_file = self.dir / "password"
        password_file.write_text(password)
        shutil.chown(self.dir, "postgres")
        shutil.chown(password_file, "postgres")
        self._as_postgres(
            PG_BIN / "initdb",
            "-D",
            self.data,
            "-U",
            user,
            "--pwfile",
            password_file,
            "--auth",
            "scram-sha-256",
            "-E",
            "UTF8",
        )
        password_file.unlink()

    def _as_postgres(self, *command) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, command)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
async def private_stack(scans_stack: Stack):
    """API and databases on a private PostgreSQL cluster (auth, users and scans migrated)."""
    env = dict(scans_stack.env)
    postgres = PrivatePostgres(
        env["GROWBIN_DATABASE__SCANS__USER"], env["GROWBIN_DATABASE__SCANS__PASSWORD"]
    )
    api_process = None
    try:
        await asyncio.to_thread(postgres.start)
        env["GROWBIN_DATABASE__PORT"] = str(postgres.port)
        for domain in ("auth", "users", "scans"):
            name = env[f"GROWBIN_DATABASE__{domain.upper()}__NAME"]
            await asyncio.to_thread(
                subprocess.run,
                [
                    str(PG_BIN / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(postgres.port),
                    "-U",
                    postgres.user,
                    name,
                ],
                env={**env, "PGPASSWORD": env["GROWBIN_DATABASE__SCANS__PASSWORD"]},
                check=True,
                capture_output=True,
            )
            await asyncio.to_thread(
                subprocess.run,
                ["growbin", "migrate", "--domain", domain],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
        port = free_port()
        api_process = await asyncio.to_thread(
            start_api, env, port, scans_stack.tmp / "api-private.log"
        )
        stack = Stack(
            f"http://127.0.0.1:{port}",
            env,
            scans_stack.objects,
            scans_stack.tmp,
            scans_stack.fake_model,
        )
        yield stack, postgres
        stack.stop_workers()
    finally:
        if api_process is not None:
            stop_process(api_process)
        # Always leave no cluster behind, even when the test failed mid-outage.
        await asyncio.to_thread(postgres.remove)


async def test_postgresql_outage_loses_nothing(private_stack):
    stack, postgres = private_stack
    stack.fake_model.latency_seconds = 0.5
    worker = stack.start_worker("openai", concurrency=2)
    redis = Redis.from_url(stack.env["GROWBIN_REDIS__URL"], decode_responses=True)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        email, password = "outage@example.org", "Recycle-2026-ok"
        await api.post("/api/v1/auth/signup", json={"email": email, "password": password})
        login = await api.post("/api/v1/auth/login", json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        scan_ids = [await post_photo(api, headers, small_png(n)) for n in range(4)]

        # Handed to the broker (the outbox lives in PostgreSQL): a worker has started each.
        async def all_started() -> bool:
            return all(redis.xlen(progress.events_key(s)) > 1 for s in scan_ids)

        await wait_until(all_started, 30, "the workers to start every scan")
        await asyncio.to_thread(postgres.stop)
        outage_started = time.monotonic()
        try:
            # The workers finish every scan while PostgreSQL is down: the results wait in the
            # journal (depth and age metrics) and progress still reaches the clients.
            async def all_finished() -> bool:
                return all(redis.exists(progress.finished_key(s)) for s in scan_ids)

            await wait_until(all_finished, 30, "all scans to finish in the workers")
            metrics = worker.metrics()
            assert metrics["growbin_worker_wal_depth"] >= len(scan_ids)
            assert metrics["growbin_worker_wal_oldest_age_seconds"] > 0
            await asyncio.sleep(max(0, PG_OUTAGE_SECONDS - (time.monotonic() - outage_started)))
        finally:
            await asyncio.to_thread(postgres.start)

        for scan_id in scan_ids:
            # Connections pooled before the outage may fail once after it (core.db).
            scan = await wait_for_scan(
                api, scan_id, headers, within=30, tolerate_server_errors=True
            )
            assert scan["status"] == "completed", scan
            assert scan["result"]["category"]["slug"] == "clear-pet"

        async def drained() -> bool:
            return worker.metrics()["growbin_worker_wal_depth"] == 0

        await wait_until(drained, 15, "the journal to drain")
        stats = (await api.get("/api/v1/users/me/stats", headers=headers)).json()
        assert stats["total_scans"] == len(scan_ids)
    redis.close()


async def test_broker_restart_with_scans_queued(private_broker, api, new_user):
    stack = private_broker.stack
    headers = await new_user()  # accounts live in PostgreSQL, shared by both APIs
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as broker_api:
        # No worker yet: once relayed, the scans wait in the durable queue.
        scan_ids = [await post_photo(broker_api, headers, small_png(n)) for n in range(5)]

        async def all_queued() -> bool:
            depths = await asyncio.to_thread(private_broker.queue_depths)
            return depths["storage"] == len(scan_ids)

        await wait_until(all_queued, 30, "the scans to be published")
        await asyncio.to_thread(private_broker.rabbit.stop)
        await asyncio.to_thread(private_broker.rabbit.start)
        stack.start_worker("openai")
        for scan_id in scan_ids:
            scan = await wait_for_scan(broker_api, scan_id, headers, within=60)
            assert scan["status"] == "completed", scan
    assert len(stack.fake_model.requests) == len(scan_ids)
