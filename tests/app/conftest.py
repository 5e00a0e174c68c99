"""Fixtures for the application tests: real PostgreSQL + PostGIS and Redis.

The services come from scripts/test-services.sh, which writes .cache/test-services.env. Each
test session creates its own databases (growbin_test_<domain>), migrates them, and every test
starts from empty user-data tables and an empty Redis database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_ENV = ROOT / ".cache" / "test-services.env"
# Per-session names, so two test runs on one machine (two engineers, or a run and a
# benchmark) never drop or truncate each other's databases.
TEST_DATABASE_PREFIX = f"growbin_test_{os.getpid()}_"
# Redis databases 1-15 (never 0, which a developer's local stack uses), one per session.
TEST_REDIS_DB = 1 + os.getpid() % 15
# Domains holding reference data that is loaded once per session and never emptied between
# tests (the recycling knowledge base); every other domain starts each test empty.
REFERENCE_DATA_DOMAINS = ("recycling",)


def _read_services_env() -> dict[str, str]:
    if not SERVICES_ENV.is_file():
        raise pytest.UsageError(
            f"{SERVICES_ENV} is missing: run scripts/test-services.sh (as root) first; it "
            "starts PostgreSQL/PostGIS, Redis and RabbitMQ for the tests."
        )
    values = {}
    for line in SERVICES_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


SERVICES = _read_services_env()


def _configure_environment() -> None:
    # Settings are read from the environment once; set everything before growbin is imported.
    from growbin.core.security import generate_private_key_pem, public_key_pem

    private_key = generate_private_key_pem()
    env = {
        "GROWBIN_ENVIRONMENT": "test",
        "GROWBIN_LOG_LEVEL": "WARNING",
        "GROWBIN_DATABASE__HOST": SERVICES["GROWBIN_TEST_PG_HOST"],
        "GROWBIN_DATABASE__PORT": SERVICES["GROWBIN_TEST_PG_PORT"],
        "GROWBIN_DATABASE__SSLMODE": "disable",
        "GROWBIN_REDIS__URL": SERVICES["GROWBIN_TEST_REDIS_URL"].rsplit("/", 1)[0]
        + f"/{TEST_REDIS_DB}",
        "GROWBIN_BROKER__URL": SERVICES["GROWBIN_TEST_BROKER_URL"],
        "GROWBIN_AUTH__JWT_PRIVATE_KEY": private_key,
        "GROWBIN_AUTH__JWT_PUBLIC_KEY": public_key_pem(private_key),
    }
    from growbin.core.domains import DOMAINS

    for domain in DOMAINS:
        prefix = f"GROWBIN_DATABASE__{domain.upper()}__"
        env[prefix + "NAME"] = TEST_DATABASE_PREFIX + domain
        env[prefix + "USER"] = SERVICES["GROWBIN_TEST_PG_USER"]
        env[prefix + "PASSWORD"] = SERVICES["GROWBIN_TEST_PASSWORD"]
    os.environ.update(env)


_configure_environment()

from growbin.core import migrations  # noqa: E402
from growbin.core.app import create_app, load_domain  # noqa: E402
from growbin.core.db import get_databases  # noqa: E402
from growbin.core.redis import get_redis  # noqa: E402

# assert_error is re-exported: tests written against the first layout import it from conftest.
from support import Account, assert_error  # noqa: E402, F401


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=SERVICES["GROWBIN_TEST_PG_HOST"],
            port=int(SERVICES["GROWBIN_TEST_PG_PORT"]),
            user=SERVICES["GROWBIN_TEST_PG_USER"],
            password=SERVICES["GROWBIN_TEST_PASSWORD"],
            database="postgres",
            timeout=5,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL from {SERVICES_ENV} does not answer ({exc}); run scripts/test-services.sh",
            pytrace=False,
        )


@pytest.fixture(scope="session")
async def migrated_databases() -> AsyncIterator[list[str]]:
    domains = migrations.migratable_domains()
    admin = await _admin_connection()
    try:
        for domain in domains:
            name = TEST_DATABASE_PREFIX + domain
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    for domain in domains:
        # Alembic runs its own event loop; keep it off the test loop.
        await asyncio.to_thread(migrations.upgrade, domain)
    yield domains
    await get_databases().dispose()
    admin = await _admin_connection()
    try:
        for domain in domains:
            await admin.execute(
                f'DROP DATABASE IF EXISTS "{TEST_DATABASE_PREFIX + domain}" WITH (FORCE)'
            )
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def redis_ready() -> None:
    try:
        await get_redis().ping()
    except Exception as exc:
        pytest.fail(
            f"Redis from {SERVICES_ENV} does not answer ({exc}); run scripts/test-services.sh",
            pytrace=False,
        )


async def _truncate(domain: str) -> None:
    async with get_databases().engine(domain).begin() as connection:
        tables = await connection.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"
        )
        names = ", ".join(f'"{row[0]}"' for row in tables)
        if names:
            await connection.exec_driver_sql(f"TRUNCATE {names} CASCADE")


@pytest.fixture(autouse=True)
async def isolated_state(migrated_databases: list[str], redis_ready: None) -> AsyncIterator[None]:
    await get_redis().flushdb()
    for domain in migrated_databases:
        if domain not in REFERENCE_DATA_DOMAINS:
            await _truncate(domain)
    yield


@pytest.fixture(scope="session")
async def app(migrated_databases: list[str]):
    application = create_app(
        [load_domain(name) for name in ("auth", "users", "locations")], service="test"
    )
    async with application.router.lifespan_context(application):
        yield application


_client_addresses = (f"10.0.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def _client_from_a_new_address(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(next(_client_addresses), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    # A distinct client address per test keeps the per-address login limit per test.
    async with _client_from_a_new_address(app) as c:
        yield c


@pytest.fixture
async def client_from_new_address(app) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Clients of the test app, each from an address no other client has used."""
    clients: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        clients.append(_client_from_a_new_address(app))
        return clients[-1]

    yield factory
    for c in clients:
        await c.aclose()


@pytest.fixture
def make_account(client: httpx.AsyncClient) -> Callable[..., Awaitable[Account]]:
    async def factory(email: str | None = None, password: str = "Recycle-2026-ok") -> Account:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
        signup = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": password}
        )
        assert signup.status_code == 201, signup.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return Account(email, password, login.json())

    return factory
