"""Chat: time to first token and total answer time through the chat API.

Runs on loopback against the services from scripts/test-services.sh, in its own databases
(growbin_benchchat_*): one uvicorn process of ``growbin.services.chat:app``, and the streaming
OpenAI stand-in of the tests (tests/fakes/openai_server.py) answering after a fixed
first-token delay and then one token every fixed interval. Closed-loop clients ask grounded
questions (each in a new conversation) at several concurrency levels and time, per answer, the
POST to the first ``token`` event and to the ``done`` event. The model's own share is known
exactly (delay + tokens x interval), so the service's added latency is reported next to it.
A second run without an API key measures the offline answerer.

Usage: python bench/chat.py [--seconds-per-level 6]. Results also go to .cache/bench-chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from harness import (
    BIN,
    ROOT,
    clean_environment,
    drop_databases,
    free_port,
    growbin,
    growbin_environment,
    migrate,
    percentile,
    read_services,
    recreate_databases,
    start,
    stop,
)

RESULTS = ROOT / ".cache" / "bench-chat.json"
PREFIX = "growbin_benchchat_"
DOMAINS = ("chat", "recycling", "scans")
FIRST_TOKEN_DELAY = 0.2
TOKEN_INTERVAL = 0.02
MODEL_LEVELS = (1, 8, 32)
OFFLINE_LEVELS = (1, 8)
QUESTIONS = (
    "How do I throw away a soda PET bottle?",
    "Is a yogurt cup recyclable?",
    "Where do batteries go?",
    "스티로폼 컵라면 용기 어떻게 버려요?",
    "How do I dispose of wet wipes?",
)

sys.path.insert(0, str(ROOT))
from tests.fakes.openai_server import API_KEY, FakeOpenAI  # noqa: E402


@dataclass
class Level:
    answerer: str
    concurrency: int
    answers: int
    answers_per_second: float
    first_token_p50_ms: float
    first_token_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float
    # Measured minus the stand-in model's own time (its first-token delay, its token pacing).
    added_first_token_p50_ms: float
    added_total_p50_ms: float


def environment(services: dict[str, str], work: Path) -> dict[str, str]:
    return {
        **clean_environment(),
        **growbin_environment(services, PREFIX, DOMAINS, redis_db=3),
        "GROWBIN_DATABASE__POOL_SIZE": "10",
        "GROWBIN_DATABASE__MAX_OVERFLOW": "30",
        "GROWBIN_STORAGE__ROOT": str(work / "objects"),
        "GROWBIN_CHAT__MESSAGES_PER_WINDOW": "1000000",
    }


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    process = start(
        [str(BIN / "uvicorn"), "growbin.services.chat:app", "--port", str(port)], env, log
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"uvicorn exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"the chat API is not ready:\n{log.read_text()[-3000:]}")


async def one_answer(
    client: httpx.AsyncClient, headers: dict[str, str], question: str
) -> tuple[float, float, int]:
    created = await client.post("/api/v1/chat/conversations", json={}, headers=headers)
    created.raise_for_status()
    path = f"/api/v1/chat/conversations/{created.json()['id']}/messages"
    started = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", path, json={"content": question}, headers=headers) as r:
        r.raise_for_status()
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token":
                tokens += 1
                if first is None:
                    first = time.perf_counter() - started
            elif (
                line.startswith("data:")
                and event == "done"
                and json.loads(line[5:])["status"] != "complete"
            ):
                raise RuntimeError(f"answer ended {line}")
    total = time.perf_counter() - started
    if first is None:
        raise RuntimeError("no token streamed")
    return first, total, tokens


async def run_level(
    base_url: str, headers: list[dict[str, str]], answerer: str, concurrency: int, seconds: float
) -> Level:
    samples: list[tuple[float, float, int]] = []
    deadline = 0.0
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def loop(worker: int) -> None:
            nonlocal deadline
            n = worker
            while time.perf_counter() < deadline:
                question = QUESTIONS[n % len(QUESTIONS)]
                samples.append(await one_answer(client, headers[worker], question))
                n += concurrency

        # One answer per client first, uncounted: connection set-up and first-use costs.
        await asyncio.gather(
            *(one_answer(client, headers[w], QUESTIONS[0]) for w in range(concurrency))
        )
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(loop(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    firsts = [s[0] for s in samples]
    totals = [s[1] for s in samples]
    if answerer == "model":
        model_first = [FIRST_TOKEN_DELAY for _ in samples]
        model_total = [FIRST_TOKEN_DELAY + s[2] * TOKEN_INTERVAL for s in samples]
    else:
        model_first = model_total = [0.0 for _ in samples]
    return Level(
        answerer=answerer,
        concurrency=concurrency,
        answers=len(samples),
        answers_per_second=round(len(samples) / elapsed, 2),
        first_token_p50_ms=round(statistics.median(firsts) * 1000, 1),
        first_token_p99_ms=round(percentile(firsts, 0.99) * 1000, 1),
        total_p50_ms=round(statistics.median(totals) * 1000, 1),
        total_p99_ms=round(percentile(totals, 0.99) * 1000, 1),
        added_first_token_p50_ms=round(
            statistics.median(f - m for f, m in zip(firsts, model_first, strict=True)) * 1000, 1
        ),
        added_total_p50_ms=round(
            statistics.median(t - m for t, m in zip(totals, model_total, strict=True)) * 1000, 1
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-level", type=float, default=6.0)
    args = parser.parse_args()
    services = read_services()
    fake = FakeOpenAI().start()
    fake.token_interval_seconds = TOKEN_INTERVAL
    fake.first_token_delay_seconds = FIRST_TOKEN_DELAY
    levels: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="growbin-bench-chat-") as work_dir:
        work = Path(work_dir)
        env = environment(services, work)
        # Tokens are minted here with the same key the API verifies with.
        os.environ.update(env)
        from growbin.auth.service import issue_access_token

        asyncio.run(recreate_databases(services, PREFIX, DOMAINS))
        try:
            migrate(env, DOMAINS)
            growbin(env, "seed", "recycling")
            headers = [
                {"Authorization": f"Bearer {issue_access_token(uuid.uuid4(), uuid.uuid4())[0]}"}
                for _ in range(max(MODEL_LEVELS))
            ]
            runs = (
                (
                    "model",
                    MODEL_LEVELS,
                    {"GROWBIN_LLM__API_KEY": API_KEY, "GROWBIN_LLM__BASE_URL": fake.base_url},
                ),
                ("offline", OFFLINE_LEVELS, {}),
            )
            for answerer, concurrencies, extra in runs:
                port = free_port()
                api = start_api({**env, **extra}, port, work / f"api-{answerer}.log")
                try:
                    for concurrency in concurrencies:
                        level = asyncio.run(
                            run_level(
                                f"http://127.0.0.1:{port}",
                                headers,
                                answerer,
                                concurrency,
                                args.seconds_per_level,
                            )
                        )
                        levels.append(level)
                        print(json.dumps(asdict(level)), flush=True)
                finally:
                    stop(api)
        finally:
            fake.stop()
            asyncio.run(drop_databases(services, PREFIX, DOMAINS))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "model_first_token_delay_ms": FIRST_TOKEN_DELAY * 1000,
                "model_token_interval_ms": TOKEN_INTERVAL * 1000,
                "levels": [asdict(level) for level in levels],
            },
            indent=2,
        )
    )
    print(
        f"{'answerer':8} {'conc':>4} {'n':>5} {'ans/s':>6} {'ttft p50':>9} {'p99':>7} "
        f"{'total p50':>9} {'p99':>7} {'+ttft':>6} {'+total':>7}"
    )
    for lv in levels:
        print(
            f"{lv.answerer:8} {lv.concurrency:>4} {lv.answers:>5} {lv.answers_per_second:>6} "
            f"{lv.first_token_p50_ms:>9} {lv.first_token_p99_ms:>7} {lv.total_p50_ms:>9} "
            f"{lv.total_p99_ms:>7} {lv.added_first_token_p50_ms:>6} {lv.added_total_p50_ms:>7}"
        )


if __name__ == "__main__":
    main()
