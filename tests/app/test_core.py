"""Core: the error shape, request ids, health/ready/metrics, settings, OpenAPI, migrations."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from growbin.core import migrations
from growbin.core.app import DomainSpec, create_app
from growbin.core.errors import DEPENDENCY_RETRY_AFTER_SECONDS, ServiceUnavailable
from growbin.core.settings import Environment, Settings
from support import assert_error


async def test_unknown_route_and_method_use_the_error_shape(client):
    assert_error(await client.get("/api/v1/nowhere"), 404, "not_found")
    assert_error(await client.delete("/api/v1/auth/login"), 405, "method_not_allowed")


async def test_request_id_is_generated_or_propagated(client):
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    given = await client.get("/health", headers={"X-Request-ID": "abc-123-def"})
    assert given.headers["x-request-id"] == "abc-123-def"
    # Unsafe ids (log injection) are replaced, not echoed.
    unsafe = await client.get("/api/v1/nowhere", headers={"X-Request-ID": "a\tb c" * 3})
    assert unsafe.headers["x-request-id"] != "a\tb c" * 3
    assert_error(unsafe, 404)


async def test_unhandled_exception_is_a_500_in_the_error_shape():
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app = create_app([DomainSpec(name="boom", router=router)], service="boom")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/api/v1/boom/boom")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert error["details"] is None


async def test_an_unreachable_database_or_redis_is_a_503_not_a_500():
    """Nothing listens on the port: what a PostgreSQL or Redis outage looks like to a request."""
    from growbin.core.db import DatabaseRegistry
    from redis.asyncio import Redis
    from sqlalchemy import text

    closed_port = _free_port()
    databases = DatabaseRegistry(
        Settings(environment=Environment.TEST, database={"port": closed_port, "sslmode": "disable"})
    )
    router = APIRouter()

    @router.get("/database")
    async def database() -> None:
        async with databases.sessionmaker("auth")() as session:
            await session.execute(text("select 1"))

    @router.get("/redis")
    async def cache() -> None:
        async with Redis(port=closed_port, socket_connect_timeout=1) as client:
            await client.ping()

    app = create_app([DomainSpec(name="probe", router=router)], service="probe")
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for path in ("/api/v1/probe/database", "/api/v1/probe/redis"):
                response = await c.get(path)
                assert_error(response, 503, "service_unavailable")
                assert response.headers["retry-after"] == "5"
    finally:
        await databases.dispose()


async def test_every_503_says_when_to_retry():
    router = APIRouter()

    @router.get("/app-error")
    async def app_error() -> None:
        raise ServiceUnavailable("The image store is unavailable; please try again.")

    @router.get("/http-error")
    async def http_error() -> None:
        raise HTTPException(503)

    app = create_app([DomainSpec(name="probe", router=router)], service="probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for path in ("/api/v1/probe/app-error", "/api/v1/probe/http-error"):
            response = await c.get(path)
            assert_error(response, 503)
            assert response.headers["retry-after"] == str(DEPENDENCY_RETRY_AFTER_SECONDS)


async def test_health_ready_and_metrics(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {
        "database:auth",
        "database:users",
        "database:locations",
        "redis",
    }
    await client.get("/api/v1/locations/points/not-a-uuid")
    metrics = (await client.get("/metrics")).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("growbin_http_requests_total{")
        and 'route="/api/v1/locations/points/{point_id}"' in line
        and 'status="422"' in line
        and 'service="test"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1


async def test_ready_reports_an_unreachable_dependency(monkeypatch):
    from growbin.core import health

    async def refused() -> None:
        raise ConnectionRefusedError

    monkeypatch.setattr(health, "_check_redis", refused)
    app = create_app([], service="probe")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        error = assert_error(await c.get("/ready"), 503, "not_ready")
    assert error["details"] == {"failing": {"redis": "ConnectionRefusedError"}}


def test_production_refuses_insecure_settings(monkeypatch):
    monkeypatch.delenv("GROWBIN_AUTH__JWT_PUBLIC_KEY")
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY is required"):
        Settings(environment=Environment.PRODUCTION)
    monkeypatch.setenv("GROWBIN_DATABASE__SSLMODE", "disable")
    with pytest.raises(ValueError, match="SSLMODE"):
        Settings(environment=Environment.PRODUCTION)


def test_database_names_default_per_domain(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GROWBIN_DATABASE__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GROWBIN_DATABASE__CHAT__PASSWORD", "from-env")
    settings = Settings()
    assert settings.database.scans.name == settings.database.scans.user == "growbin_scans"
    assert settings.database.chat.password.get_secret_value() == "from-env"
    with pytest.raises(ValueError, match="unknown domain"):
        settings.database.for_domain("billing")


def test_production_database_url_requires_the_domain_password(monkeypatch):
    from growbin.core.db import database_url

    monkeypatch.delenv("GROWBIN_DATABASE__AUTH__PASSWORD")
    settings = Settings(environment=Environment.LOCAL)
    with pytest.raises(ValueError, match="AUTH__PASSWORD is required"):
        database_url(settings, "auth")
    assert database_url(settings, "users").password


async def test_openapi_has_stable_ids_and_the_error_shape(client):
    spec = (await client.get("/openapi.json")).json()
    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"auth-login", "auth-refresh", "users-delete_account", "locations-nearby"} <= (
        operation_ids
    )
    assert "ErrorBody" in spec["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_docs_are_hidden_in_production(monkeypatch):
    from growbin.core import app as app_module

    production = Settings(environment=Environment.PRODUCTION, database={"sslmode": "require"})
    monkeypatch.setattr(app_module, "get_settings", lambda: production)
    app = create_app([], service="prod")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert_error(await c.get("/docs"), 404)
        assert_error(await c.get("/openapi.json"), 404)


async def test_migrations_are_reversible(migrated_databases):
    for domain in ("auth", "users", "locations"):
        await asyncio.to_thread(migrations.downgrade, domain, "base")
        await asyncio.to_thread(migrations.upgrade, domain)


def _migrate_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "migrate", "--domain", "locations", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_migrate_command_reports_what_it_applied_and_is_idempotent(migrated_databases):
    # Ansible's changed_when reads these lines (roles/app_systemd/tasks/migrate.yml).
    _migrate_cli("--downgrade", "base")
    assert _migrate_cli() == "locations: applied base -> locations_0001\n"
    assert _migrate_cli() == "locations: at locations_0001, nothing to apply\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_per_domain_service_over_a_real_socket():
    """`uvicorn growbin.services.locations:app` serves only its own domain."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "growbin.services.locations:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.json()["checks"] == ["database:locations", "redis"]
        nearby = httpx.get(f"{base}/api/v1/locations/nearby?lat=37.5&lon=126.9", timeout=5)
        assert nearby.status_code == 200
        assert httpx.get(f"{base}/api/v1/auth/me", timeout=5).status_code == 404
        bad = httpx.get(f"{base}/api/v1/locations/nearby?lat=99&lon=126.9", timeout=5)
        assert bad.status_code == 422 and bad.json()["error"]["request_id"]
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("domain", ["auth", "users", "locations"])
def test_each_service_mounts_only_its_domain(domain):
    import importlib

    service = importlib.import_module(f"growbin.services.{domain}")
    assert list(service.app.state.domains) == [domain]


def test_all_in_one_app_mounts_every_listed_domain():
    from growbin.services import all as all_in_one

    assert set(all_in_one.app.state.domains) == set(all_in_one.ALL_IN_ONE_DOMAINS)
    assert {"auth", "users", "locations"} <= set(all_in_one.ALL_IN_ONE_DOMAINS)
