"""Fixtures for the scan pipeline: the API and Celery workers as real processes.

The API runs under uvicorn on a loopback port and the workers as ``celery worker``
processes, all against the PostgreSQL, Redis and RabbitMQ from scripts/test-services.sh and
the per-session databases of tests/app/conftest.py. Images go to a filesystem object store in
a temporary directory shared by API and workers; the OpenAI stand-in is
tests/fakes/openai_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pika
import pytest

from tests.fakes.openai_server import API_KEY, FakeOpenAI

ROOT = Path(__file__).resolve().parents[3]

VENV_BIN = Path(sys.executable).parent
OFFLINE_MODEL = ROOT / ".cache" / "vision-model" / "efficientnet-lite0.onnx"
QUEUES = ("storage", "ai", "storage.dlq", "ai.dlq")
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{log.read_text()[-4000:]}")


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def amqp_parameters(url: str | None = None) -> pika.URLParameters:
    # The test services' broker by default (tests/app/conftest.py, .cache/test-services.env).
    return pika.URLParameters(url or os.environ["GROWBIN_BROKER__URL"])


def queue_depths(url: str | None = None) -> dict[str, int]:
    connection = pika.BlockingConnection(amqp_parameters(url))
    try:
        channel = connection.channel()
        depths = {}
        for name in QUEUES:
            try:
                depths[name] = channel.queue_declare(name, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                channel = connection.channel()
                depths[name] = 0
        return depths
    finally:
        connection.close()


def purge_queues() -> None:
    connection = pika.BlockingConnection(amqp_parameters())
    try:
        for name in QUEUES:
            channel = connection.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                channel.queue_purge(name)
    finally:
        connection.close()


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path
    wal_path: Path
    metrics_port: int

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), like a node losing power."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop_process(self.process)

    def pool_processes(self) -> list[int]:
        """Pids of the prefork pool's child processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line.startswith("growbin_worker_wal"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


@dataclass
class Stack:
    api_url: str
    env: dict[str, str]
    objects: Path
    tmp: Path
    fake_model: FakeOpenAI
    workers: list[Worker] = field(default_factory=list)

    def worker_env(self, classifier: str, **overrides: str) -> dict[str, str]:
        env = dict(self.env)
        if classifier == "openai":
            env["GROWBIN_LLM__API_KEY"] = API_KEY
            env["GROWBIN_LLM__BASE_URL"] = self.fake_model.base_url
            env["GROWBIN_LLM__MODEL"] = "fake-vision"
        else:
            env.pop("GROWBIN_LLM__API_KEY", None)
            env["GROWBIN_LLM__OFFLINE_MODEL_PATH"] = str(OFFLINE_MODEL)
        env.update(overrides)
        return env

    def start_worker(
        self,
        classifier: str = "openai",
        *,
        concurrency: int = 4,
        pool: str = "threads",
        wal_path: Path | None = None,
        **overrides: str,
    ) -> Worker:
        port = free_port()
        wal = wal_path or self.tmp / f"wal-{uuid.uuid4().hex[:8]}.sqlite3"
        log = self.tmp / f"worker-{port}.log"
        env = self.worker_env(
            classifier,
            GROWBIN_WORKER__WAL_PATH=str(wal),
            GROWBIN_WORKER__METRICS_PORT=str(port),
            **overrides,
        )
        command = [
            str(VENV_BIN / "celery"),
            "-A",
            "growbin.worker.celery_app",
            "worker",
            "-Q",
            "storage,ai",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"test-{port}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(port, process, log, START_TIMEOUT)
        worker = Worker(process, log, wal, port)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop_process(worker.process)
        self.workers.clear()


class PrivateRabbitMQ:
    """A throwaway RabbitMQ node (own ports, own data), so restarting it disturbs nobody."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="growbin-rmq-", dir="/tmp"))
        self.port = free_port()
        self.node = f"growbin-fault-{self.port}@localhost"
        self.password = secrets.token_hex(16)
        (self.dir / "enabled_plugins").write_text("[].\n")
        shutil.chown(self.dir, "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.running = False

    @property
    def url(self) -> str:
        return f"amqp://growbin_fault:{self.password}@127.0.0.1:{self.port}/growbin"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.node, "-q", *args],
            env=self.env,
            check=check,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=30)
        self.running = True
        deadline = time.monotonic() + 60
        while self.ctl("status", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.node} did not start")
            time.sleep(0.5)
        self.ctl("--timeout", "60", "await_startup")

    def configure(self) -> None:
        self.ctl("add_vhost", "growbin")
        self.ctl("add_user", "growbin_fault", self.password)
        self.ctl("set_permissions", "-p", "growbin", "growbin_fault", ".*", ".*", ".*")

    def stop(self) -> None:
        self.ctl("stop")
        self.running = False

    def remove(self) -> None:
        if self.running:
            self.ctl("stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        api = subprocess.Popen(
            [
                str(VENV_BIN / "uvicorn"),
                "growbin.services.all:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port(port, api, log, START_TIMEOUT)
    return api


@dataclass
class BrokerStack:
    """An API and workers on a private RabbitMQ node and a private scans database.

    The scans database is private too: the outbox belongs to the database, and a relay of
    another API on the shared database would hand these scans to the shared broker.
    """

    stack: Stack
    rabbit: PrivateRabbitMQ
    api: subprocess.Popen | None = None

    def start_api(self) -> None:
        port = int(self.stack.api_url.rsplit(":", 1)[1])
        self.api = start_api(self.stack.env, port, self.stack.tmp / f"api-broker-{port}.log")

    def kill_api(self) -> None:
        """SIGKILL the API (and so its outbox relay) wherever it is."""
        assert self.api is not None
        os.killpg(self.api.pid, signal.SIGKILL)
        self.api.wait(10)
        self.api = None

    def queue_depths(self) -> dict[str, int]:
        return queue_depths(self.rabbit.url)


async def connect_as_scans_owner(env: dict[str, str], database: str) -> asyncpg.Connection:
    """A connection to ``database`` with the scans owner's credentials from ``env``."""
    return await asyncpg.connect(
        host=env["GROWBIN_DATABASE__HOST"],
        port=int(env["GROWBIN_DATABASE__PORT"]),
        user=env["GROWBIN_DATABASE__SCANS__USER"],
        password=env["GROWBIN_DATABASE__SCANS__PASSWORD"],
        database=database,
    )


@contextlib.asynccontextmanager
async def admin_connection(env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    admin = await connect_as_scans_owner(env, "postgres")
    try:
        yield admin
    finally:
        await admin.close()


async def create_scans_database(env: dict[str, str], name: str) -> None:
    async with admin_connection(env) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(
        subprocess.run,
        ["growbin", "migrate", "--domain", "scans"],
        env={**env, "GROWBIN_DATABASE__SCANS__NAME": name},
        check=True,
        capture_output=True,
        timeout=60,
    )


async def drop_database(env: dict[str, str], name: str) -> None:
    async with admin_connection(env) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def private_broker(scans_stack: Stack) -> AsyncIterator[BrokerStack]:
    rabbit = PrivateRabbitMQ()
    database = scans_stack.env["GROWBIN_DATABASE__SCANS__NAME"] + "_broker"
    env = {
        **scans_stack.env,
        "GROWBIN_BROKER__URL": rabbit.url,
        "GROWBIN_DATABASE__SCANS__NAME": database,
    }
    stack = Stack(
        f"http://127.0.0.1:{free_port()}",
        env,
        scans_stack.objects,
        scans_stack.tmp,
        scans_stack.fake_model,
    )
    broker = BrokerStack(stack, rabbit)
    try:
        await asyncio.to_thread(rabbit.start)
        await asyncio.to_thread(rabbit.configure)
        await create_scans_database(env, database)
        await asyncio.to_thread(broker.start_api)
        yield broker
    finally:
        stack.stop_workers()
        if broker.api is not None:
            stop_process(broker.api)
        await asyncio.to_thread(rabbit.remove)
        await drop_database(env, database)


@pytest.fixture(scope="session")
def offline_model() -> Path:
    # Built once per machine (about a minute the first time: torch CPU wheel, export).
    subprocess.run([str(ROOT / "scripts" / "export-vision-model.sh")], check=True, timeout=900)
    return OFFLINE_MODEL


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def stack(
    migrated_databases: list[str], fake_model: FakeOpenAI, tmp_path_factory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("scans")
    objects = tmp / "objects"
    env = {key: value for key, value in os.environ.items() if not key.startswith("GROWBIN_LLM")}
    env.update(
        {
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "GROWBIN_STORAGE__BACKEND": "filesystem",
            "GROWBIN_STORAGE__ROOT": str(objects),
            "GROWBIN_STORAGE__PUBLIC_BASE_URL": "https://cdn.growbin.test",
            "GROWBIN_WORKER__RETRY_BASE_SECONDS": "0.2",
            "GROWBIN_WORKER__RETRY_MAX_SECONDS": "1",
            "GROWBIN_WORKER__MAX_ATTEMPTS": "3",
            "GROWBIN_WORKER__DRAIN_INTERVAL_SECONDS": "0.2",
            "GROWBIN_LLM__TIMEOUT_SECONDS": "2",
            "GROWBIN_SCANS__MAX_UPLOAD_BYTES": str(2 << 20),
        }
    )
    await asyncio.to_thread(purge_queues)
    port = free_port()
    api = await asyncio.to_thread(start_api, env, port, tmp / "api.log")
    stack = Stack(f"http://127.0.0.1:{port}", env, objects, tmp, fake_model)
    try:
        yield stack
    finally:
        stack.stop_workers()
        stop_process(api)


@pytest.fixture
async def scans_stack(stack: Stack) -> AsyncIterator[Stack]:
    """The stack with no workers left over and an unscripted model server."""
    stack.fake_model.reset()
    yield stack
    stack.stop_workers()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def new_user(api: httpx.AsyncClient):
    async def factory() -> dict[str, str]:
        email = f"scan-{uuid.uuid4().hex[:10]}@example.org"
        password = "Recycle-2026-ok"
        signup = await api.post("/api/v1/auth/signup", json={"email": email, "password": password})
        assert signup.status_code == 201, signup.text
        login = await api.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    return factory


async def read_events(
    client: httpx.AsyncClient,
    scan_id: str,
    headers: dict[str, str],
    within: float = 60,
    ids: list[str] | None = None,
) -> list[tuple[str, dict]]:
    """All SSE events of a scan up to its terminal event, in the order received.

    Their SSE ids are appended to ``ids`` when given; a ``Last-Event-ID`` in ``headers``
    resumes after that event.
    """
    events: list[tuple[str, dict]] = []

    async def consume() -> None:
        async with client.stream(
            "GET", f"/api/v1/scans/{scan_id}/events", headers=headers
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            event, data, event_id = None, None, None
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event_id = line[len("id: ") :]
                elif line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                elif line == "" and event is not None:
                    events.append((event, data))
                    if ids is not None:
                        ids.append(event_id)
                    event, data, event_id = None, None, None

    await asyncio.wait_for(consume(), within)
    return events


async def wait_for_scan(
    client: httpx.AsyncClient,
    scan_id: str,
    headers: dict[str, str],
    statuses: tuple[str, ...] = ("completed", "needs_clarification", "failed"),
    within: float = 60,
    tolerate_server_errors: bool = False,
) -> dict:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/v1/scans/{scan_id}", headers=headers)
        if tolerate_server_errors and response.status_code >= 500:
            body = {"status": f"HTTP {response.status_code}"}
        else:
            assert response.status_code == 200, response.text
            body = response.json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"scan {scan_id} still {body['status']} after {within}s")
        await asyncio.sleep(0.2)


async def post_photo(api, headers, data: bytes):
    response = await api.post(
        "/api/v1/scans", headers=headers, files={"image": ("p.jpg", data, "image/jpeg")}
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def wait_until(condition, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def user_stats(api, headers) -> dict[str, int]:
    body = (await api.get("/api/v1/users/me/stats", headers=headers)).json()
    return {c["category"]: c["scans"] for c in body["categories"]}
