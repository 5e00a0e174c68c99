"""What the benchmarks share: the test services, their own databases, child processes, percentiles.

bench.py, chat.py and scans/run.py run on loopback against the PostgreSQL, Redis and RabbitMQ
that scripts/test-services.sh starts, each in databases of its own (``<prefix><domain>``).
"""

# ruff: noqa: S603 - the subprocesses are this interpreter's growbin, uvicorn and celery
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
SERVICES_ENV = ROOT / ".cache" / "test-services.env"
BIN = Path(sys.executable).parent


def read_services() -> dict[str, str]:
    """Connection details written by scripts/test-services.sh (``KEY=value`` lines)."""
    if not SERVICES_ENV.is_file():
        sys.exit(f"{SERVICES_ENV} is missing: run scripts/test-services.sh first")
    values = {}
    for line in SERVICES_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def growbin_environment(
    services: dict[str, str], prefix: str, domains: Iterable[str], redis_db: int
) -> dict[str, str]:
    """The GROWBIN_* settings of a benchmark: the test services, its databases, a fresh JWT key."""
    from growbin.core.security import generate_private_key_pem, public_key_pem

    key = generate_private_key_pem()
    env = {
        "GROWBIN_ENVIRONMENT": "test",
        "GROWBIN_LOG_LEVEL": "WARNING",
        "GROWBIN_DATABASE__HOST": services["GROWBIN_TEST_PG_HOST"],
        "GROWBIN_DATABASE__PORT": services["GROWBIN_TEST_PG_PORT"],
        "GROWBIN_DATABASE__SSLMODE": "disable",
        "GROWBIN_REDIS__URL": services["GROWBIN_TEST_REDIS_URL"].rsplit("/", 1)[0] + f"/{redis_db}",
        "GROWBIN_AUTH__JWT_PRIVATE_KEY": key,
        "GROWBIN_AUTH__JWT_PUBLIC_KEY": public_key_pem(key),
    }
    for domain in domains:
        setting = f"GROWBIN_DATABASE__{domain.upper()}__"
        env[setting + "NAME"] = prefix + domain
        env[setting + "USER"] = services["GROWBIN_TEST_PG_USER"]
        env[setting + "PASSWORD"] = services["GROWBIN_TEST_PASSWORD"]
    return env


def clean_environment() -> dict[str, str]:
    """This process's environment without GROWBIN_* settings, this interpreter's scripts first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWBIN_")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


@asynccontextmanager
async def _admin(services: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    admin = await asyncpg.connect(
        host=services["GROWBIN_TEST_PG_HOST"],
        port=int(services["GROWBIN_TEST_PG_PORT"]),
        user=services["GROWBIN_TEST_PG_USER"],
        password=services["GROWBIN_TEST_PASSWORD"],
        database="postgres",
    )
    try:
        yield admin
    finally:
        await admin.close()


async def recreate_databases(services: dict[str, str], prefix: str, domains: Iterable[str]) -> None:
    async with _admin(services) as admin:
        for domain in domains:
            await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}{domain}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{prefix}{domain}"')


async def drop_databases(services: dict[str, str], prefix: str, domains: Iterable[str]) -> None:
    async with _admin(services) as admin:
        for domain in domains:
            await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}{domain}" WITH (FORCE)')


def growbin(env: dict[str, str], *args: str) -> None:
    """Run the growbin CLI quietly; its output is shown only if it fails."""
    done = subprocess.run([str(BIN / "growbin"), *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"growbin {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def migrate(env: dict[str, str], domains: Iterable[str]) -> None:
    for domain in domains:
        growbin(env, "migrate", "--domain", domain)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} exited early (code {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` in a session of its own (stop() ends its children too), output to log."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def percentile(values: list[float], fraction: float) -> float:
    """The sorted value at index ``int(fraction * n)`` (the last one at most)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
