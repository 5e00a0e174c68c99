"""Throughput, latency and memory of the API services against a bare Starlette baseline.

Runs on loopback against the services from scripts/test-services.sh, in its own databases
(growbin_bench_*). For each endpoint: the growbin service (one uvicorn process) and the bare
Starlette + asyncpg app running the same SQL are each loaded by 32 keep-alive connections for
a fixed time; requests/s, p50 and p99 are printed side by side with their ratio, plus the
resident memory of the growbin process idle and at its peak under load.
"""

# ruff: noqa: S603 - the subprocesses are this interpreter running uvicorn
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from harness import (
    ROOT,
    free_port,
    growbin,
    growbin_environment,
    migrate,
    percentile,
    read_services,
    recreate_databases,
)

RESULTS = ROOT / ".cache" / "bench-app.json"
BENCH_PREFIX = "growbin_bench_"
DOMAINS = ("locations", "recycling")
CONCURRENCY = 32
POINTS = 5_000
SEOUL = (37.5663, 126.9779)
SEARCH_QUERIES = [
    "페트병",
    "pet bottle",
    "우유팩",
    "건전지",
    "형광등",
    "스티로폼",
    "유리병",
    "종이컵",
    "캔",
    "비닐봉지",
    "음식물",
    "택배상자",
    "약",
    "헌옷",
    "plastic bag",
    "can",
    "glass bottle",
    "battery",
    "milk carton",
    "pizza box",
]


def bench_environment(services: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        **growbin_environment(services, BENCH_PREFIX, DOMAINS, redis_db=0),
        "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }


def load_data(env: dict[str, str]) -> None:
    migrate(env, DOMAINS)
    growbin(env, "seed", "recycling")
    rng = random.Random(4)
    categories = ["battery", "lamp", "medicine", "clothing", "recycling_station"]
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("name,address,lat,lon,categories,opening_hours\n")
        for n in range(POINTS):
            lat = SEOUL[0] + rng.uniform(-0.15, 0.15)
            lon = SEOUL[1] + rng.uniform(-0.2, 0.2)
            f.write(
                f"bench point {n},bench address {n},{lat:.6f},{lon:.6f},{rng.choice(categories)},\n"
            )
    try:
        growbin(env, "import-locations", f.name, "--source", "bench", "--strict")
    finally:
        os.unlink(f.name)


def start_server(app: str, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"{app} did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mib: float


async def _connection(
    port: int,
    paths: list[str],
    stop_at: float,
    record_from: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random()
    try:
        while time.perf_counter() < stop_at:
            path = rng.choice(paths)
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if started >= record_from:
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors[0] += 1
    finally:
        writer.close()


async def load(port: int, paths: list[str], pid: int, warmup: float, duration: float) -> LoadResult:
    latencies: list[float] = []
    errors = [0]
    record_from = time.perf_counter() + warmup
    stop_at = record_from + duration
    peak = [rss_mib(pid)]

    async def sample_memory() -> None:
        while time.perf_counter() < stop_at:
            peak[0] = max(peak[0], rss_mib(pid))
            await asyncio.sleep(0.2)

    await asyncio.gather(
        sample_memory(),
        *(
            _connection(port, paths, stop_at, record_from, latencies, errors)
            for _ in range(CONCURRENCY)
        ),
    )
    return LoadResult(
        requests_per_second=len(latencies) / duration,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors[0],
        peak_rss_mib=peak[0],
    )


def nearby_paths(prefix: str) -> list[str]:
    rng = random.Random(7)
    paths = []
    for _ in range(200):
        params = {
            "lat": round(SEOUL[0] + rng.uniform(-0.1, 0.1), 5),
            "lon": round(SEOUL[1] + rng.uniform(-0.15, 0.15), 5),
            "radius_m": 2000,
            "limit": 20,
        }
        paths.append(f"{prefix}?{urlencode(params)}")
    return paths


def search_paths(prefix: str) -> list[str]:
    return [f"{prefix}?{urlencode({'q': q, 'limit': 10})}" for q in SEARCH_QUERIES]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()

    services = read_services()
    env = bench_environment(services)
    asyncio.run(recreate_databases(services, BENCH_PREFIX, DOMAINS))
    load_data(env)
    cases = [
        (
            "locations nearby",
            "growbin.services.locations:app",
            "/api/v1/locations/nearby",
            "/nearby",
            nearby_paths,
        ),
        (
            "recycling search",
            "growbin.services.recycling:app",
            "/api/v1/recycling/search",
            "/search",
            search_paths,
        ),
    ]
    bare, bare_port = start_server("bare_app:app", env)
    report = {"concurrency": CONCURRENCY, "duration_s": args.duration, "cases": {}}
    try:
        for title, app, api_path, bare_path, make_paths in cases:
            api, api_port = start_server(app, env)
            try:
                time.sleep(1)
                idle = rss_mib(api.pid)
                api_result = asyncio.run(
                    load(api_port, make_paths(api_path), api.pid, args.warmup, args.duration)
                )
            finally:
                api.terminate()
                api.wait(timeout=10)
            bare_result = asyncio.run(
                load(bare_port, make_paths(bare_path), bare.pid, args.warmup, args.duration)
            )
            report["cases"][title] = {
                "api": asdict(api_result),
                "bare": asdict(bare_result),
                "api_idle_rss_mib": idle,
            }
    finally:
        bare.terminate()
        bare.wait(timeout=10)

    print(
        f"\n{CONCURRENCY} connections, {args.duration:g}s measured per run, loopback, "
        f"{os.cpu_count()} CPUs (load generator shares them)"
    )
    header = f"{'endpoint':18} {'':7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(header)
    for title, case in report["cases"].items():
        for name in ("api", "bare"):
            r = case[name]
            print(
                f"{title:18} {name:7} {r['requests_per_second']:8.0f} {r['p50_ms']:8.2f} "
                f"{r['p99_ms']:8.2f} {r['errors']:6d}"
            )
        api, bare_r = case["api"], case["bare"]
        print(
            f"{title:18} {'ratio':7} {api['requests_per_second'] / bare_r['requests_per_second']:8.2f} "
            f"{api['p50_ms'] / bare_r['p50_ms']:8.2f} {api['p99_ms'] / bare_r['p99_ms']:8.2f}"
        )
        print(
            f"{title:18} RSS of the API process: idle {case['api_idle_rss_mib']:.0f} MiB, "
            f"peak under load {api['peak_rss_mib']:.0f} MiB"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"results: {RESULTS}")
    failed = any(c[n]["errors"] for c in report["cases"].values() for n in ("api", "bare"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
