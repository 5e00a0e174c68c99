"""Sustained scan throughput end to end, with a fake model answering after a fixed 300 ms.

Runs on loopback against the services from scripts/test-services.sh, in its own databases
(growbin_benchscans_*): one uvicorn API process, one Celery worker consuming both queues with
a thread pool of 8, 32 and 64, the OpenAI stand-in of the tests in its own process.
For each pool size a closed-loop client keeps as many scans in flight as the pool has threads
(multipart upload of a small PNG) for a fixed time and records, per scan, the time from the
POST to the moment its terminal state appears in Redis.

Reported per pool size: scans/s; the theoretical ceiling (pool size / model latency, the
model being the only deliberate wait); their ratio; CPU-milliseconds per scan spent outside
the model (API + worker + RabbitMQ + PostgreSQL + Redis, from /proc, the fake model's process
excluded); p50 and p99 added latency (end-to-end minus the 300 ms model time).
The data services are shared with anything else running on the machine: run it idle.
"""

# ruff: noqa: S603 - the subprocess is this interpreter running the OpenAI stand-in
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from PIL import Image
from redis.asyncio import Redis

# The harness module is one directory up, next to the other benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import (
    BIN,
    ROOT,
    clean_environment,
    free_port,
    growbin_environment,
    migrate,
    percentile,
    read_services,
    recreate_databases,
    start,
    stop,
    wait_for_port,
)

RESULTS = ROOT / ".cache" / "bench-scans.json"
# The OpenAI stand-in of the tests, run as its own process (its CPU is not counted).
FAKE_MODEL = "tests.fakes.openai_server"
MODEL_API_KEY = "sk-bench-growbin"
PREFIX = "growbin_benchscans_"
DOMAINS = ("auth", "users", "scans")
MODEL_LATENCY = 0.3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Processes whose CPU counts as "outside the model", besides the API and the worker.
SERVICE_COMMANDS = {"rabbitmq": "beam.smp", "postgres": "postgres", "redis": "redis-server"}
TERMINAL = ("completed", "needs_clarification", "failed")


@dataclass
class Result:
    concurrency: int
    scans: int
    seconds: float
    scans_per_second: float
    theoretical_per_second: float
    ratio: float
    cpu_ms_per_scan: float
    # The same, per process: api, worker, rabbitmq, postgres, redis.
    cpu_ms_per_scan_by_process: dict[str, float]
    added_latency_p50_ms: float
    added_latency_p99_ms: float
    failed: int
    # Journal entries not yet in PostgreSQL when the load stopped: does the drain keep up?
    journal_backlog: int


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def service_pids(command: str) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def group_pids(leader: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def environment(services: dict[str, str], work: Path) -> dict[str, str]:
    return {
        **clean_environment(),
        **growbin_environment(services, PREFIX, DOMAINS, redis_db=2),
        "GROWBIN_DATABASE__POOL_SIZE": "10",
        "GROWBIN_BROKER__URL": services["GROWBIN_TEST_BROKER_URL"],
        "GROWBIN_STORAGE__BACKEND": "filesystem",
        "GROWBIN_STORAGE__ROOT": str(work / "objects"),
        "GROWBIN_WORKER__WAL_PATH": str(work / "wal.sqlite3"),
        "GROWBIN_LLM__API_KEY": MODEL_API_KEY,
        "GROWBIN_LLM__MODEL": "fake-vision",
    }


def journal_depth(metrics_port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("growbin_worker_wal_depth "):
            return int(float(line.split()[1]))
    raise RuntimeError("the worker does not export growbin_worker_wal_depth")


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def token(api: httpx.AsyncClient) -> dict[str, str]:
    credentials = {"email": "scan-load@example.org", "password": "Recycle-2026-ok"}
    signup = await api.post("/api/v1/auth/signup", json=credentials)
    if signup.status_code not in (201, 409):
        sys.exit(f"signup failed: {signup.text}")
    login = await api.post("/api/v1/auth/login", json=credentials)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def terminal_status(redis: Redis, scan_id: str) -> str:
    """Follow the scan's progress stream (as the SSE endpoint does) to its last event."""
    key, last = f"scans:events:{scan_id}", "0-0"
    while True:
        for _, entries in await redis.xread({key: last}, count=10, block=4000) or []:
            for entry_id, fields in entries:
                last = entry_id
                if fields["status"] in TERMINAL:
                    return fields["status"]


async def load(
    api: httpx.AsyncClient,
    redis: Redis,
    headers: dict[str, str],
    in_flight: int,
    seconds: float,
) -> tuple[list[float], int, int]:
    """Keep ``in_flight`` scans going for ``seconds``; latencies of those that finished."""
    image = small_png()
    latencies: list[float] = []
    failed = 0
    submitted = 0
    stop_at = time.monotonic() + seconds

    async def one_after_another() -> None:
        nonlocal failed, submitted
        while time.monotonic() < stop_at:
            started = time.monotonic()
            response = await api.post(
                "/api/v1/scans", headers=headers, files={"image": ("p.png", image, "image/png")}
            )
            response.raise_for_status()
            submitted += 1
            scan_id = response.json()["id"]
            if await terminal_status(redis, scan_id) == "failed":
                failed += 1
            latencies.append(time.monotonic() - started)

    await asyncio.gather(*(one_after_another() for _ in range(in_flight)))
    return latencies, submitted, failed


async def measure(
    concurrency: int, env: dict[str, str], work: Path, api_process: subprocess.Popen, seconds: float
) -> Result:
    metrics_port = free_port()
    worker = start(
        [
            str(BIN / "celery"),
            "-A",
            "growbin.worker.celery_app",
            "worker",
            "-Q",
            "storage,ai",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        {**env, "GROWBIN_WORKER__METRICS_PORT": str(metrics_port)},
        work / f"worker-{concurrency}.log",
    )
    wait_for_port(metrics_port, worker)
    api_url = env["BENCH_API_URL"]
    limits = httpx.Limits(
        max_connections=4 * concurrency, max_keepalive_connections=4 * concurrency
    )
    redis = Redis.from_url(env["GROWBIN_REDIS__URL"], decode_responses=True)
    try:
        async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as api:
            processes = {
                "api": group_pids(api_process.pid),
                "worker": group_pids(worker.pid),
                **{name: service_pids(command) for name, command in SERVICE_COMMANDS.items()},
            }
            headers = await token(api)
            await load(api, redis, headers, concurrency, 3)  # warm-up
            cpu_before = {name: cpu_seconds(pids) for name, pids in processes.items()}
            started = time.monotonic()
            latencies, _, failed = await load(api, redis, headers, concurrency, seconds)
            elapsed = time.monotonic() - started
            cpu_used = {
                name: cpu_seconds(pids) - cpu_before[name] for name, pids in processes.items()
            }
            backlog = journal_depth(metrics_port)
    finally:
        await redis.aclose()
        stop(worker)
    done = len(latencies)
    added = [max(0.0, latency - MODEL_LATENCY) for latency in latencies]
    theoretical = concurrency / MODEL_LATENCY
    rate = done / elapsed
    return Result(
        concurrency=concurrency,
        scans=done,
        seconds=round(elapsed, 1),
        scans_per_second=round(rate, 1),
        theoretical_per_second=round(theoretical, 1),
        ratio=round(rate / theoretical, 3),
        cpu_ms_per_scan=round(1000 * sum(cpu_used.values()) / max(done, 1), 1),
        cpu_ms_per_scan_by_process={
            name: round(1000 * used / max(done, 1), 1) for name, used in cpu_used.items()
        },
        added_latency_p50_ms=round(1000 * statistics.median(added), 1),
        added_latency_p99_ms=round(1000 * percentile(added, 0.99), 1),
        failed=failed,
        journal_backlog=backlog,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--seconds", type=float, default=20, help="measured time per pool size")
    args = parser.parse_args()
    services = read_services()
    work = Path(tempfile.mkdtemp(prefix="growbin-bench-scans-"))
    env = environment(services, work)
    asyncio.run(recreate_databases(services, PREFIX, DOMAINS))
    migrate(env, DOMAINS)
    model = subprocess.Popen(
        [
            sys.executable,
            "-m",
            FAKE_MODEL,
            "--api-key",
            MODEL_API_KEY,
            "--latency",
            str(MODEL_LATENCY),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    env["GROWBIN_LLM__BASE_URL"] = model.stdout.readline().strip()
    api_port = free_port()
    env["BENCH_API_URL"] = f"http://127.0.0.1:{api_port}"
    api = start(
        [
            str(BIN / "uvicorn"),
            "growbin.services.all:app",
            "--port",
            str(api_port),
            "--no-access-log",
            "--timeout-keep-alive",
            "120",
            "--log-level",
            "warning",
        ],
        env,
        work / "api.log",
    )
    results = []
    try:
        wait_for_port(api_port, api)
        for concurrency in args.concurrency:
            result = asyncio.run(measure(concurrency, env, work, api, args.seconds))
            results.append(result)
            print(json.dumps(asdict(result)), flush=True)
    finally:
        stop(api)
        stop(model)
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print()
    print(
        "| pool | scans/s | theoretical | ratio | CPU ms/scan outside model "
        "| of which api / worker / rabbitmq / postgres / redis "
        "| p50 added | p99 added | journal backlog |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        split = " / ".join(str(ms) for ms in r.cpu_ms_per_scan_by_process.values())
        print(
            f"| {r.concurrency} | {r.scans_per_second} | {r.theoretical_per_second} | {r.ratio} "
            f"| {r.cpu_ms_per_scan} | {split} "
            f"| {r.added_latency_p50_ms} ms | {r.added_latency_p99_ms} ms | {r.journal_backlog} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
