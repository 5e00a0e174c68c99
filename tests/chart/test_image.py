"""The application image (app/Dockerfile), built on the local Debian base.

Slow (a first build downloads the dependencies from PyPI), so it runs only with
GROWBIN_TEST_IMAGE=1. GROWBIN_IMAGE=<tag> reuses an image built earlier instead of
building one. Migrations run against the test PostgreSQL of scripts/test-services.sh.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import RELEASE, REPO_ROOT, render

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("GROWBIN_TEST_IMAGE") != "1",
        reason="image build is slow: set GROWBIN_TEST_IMAGE=1",
    ),
]

BASE_IMAGE = os.environ.get("GROWBIN_NODE_IMAGE", "growbin/node:bookworm")
API_DOMAINS = ("auth", "users", "scans", "recycling", "locations", "chat")
SERVICES_ENV = REPO_ROOT / ".cache" / "test-services.env"
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 60
# The final stage must not carry a toolchain.
BUILD_TOOLS = ("gcc", "cc", "make", "g++", "ld", "pip", "pip3")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def image() -> str:
    existing = os.environ.get("GROWBIN_IMAGE")
    if existing:
        return existing
    if not (REPO_ROOT / "README.md").is_file():
        pytest.fail("README.md is missing at the repository root; pyproject.toml needs it")
    tag = "growbin/app:chart-test"
    docker(
        "build",
        "-f",
        str(REPO_ROOT / "app" / "Dockerfile"),
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "-t",
        tag,
        str(REPO_ROOT),
        timeout=BUILD_TIMEOUT_S,
    )
    return tag


@pytest.fixture(scope="module")
def services() -> dict[str, str]:
    if not SERVICES_ENV.is_file():
        pytest.fail(f"{SERVICES_ENV} is missing: run scripts/test-services.sh first")
    values = {}
    for line in SERVICES_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def test_image_runs_as_non_root_without_build_tools(image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Healthcheck"]["Test"] == ["CMD", "growbin-healthcheck"]
    assert config["Config"]["Entrypoint"] == ["growbin-entrypoint"]
    size_mib = config["Size"] / 2**20
    print(f"\nimage {image}: {size_mib:.0f} MiB on {BASE_IMAGE}")
    probe = " ; ".join(f"command -v {tool} || true" for tool in BUILD_TOOLS)
    result = docker("run", "--rm", "--entrypoint", "sh", image, "-c", f"id -u; {probe}")
    lines = result.stdout.split()
    assert lines[0] == "10001"
    assert lines[1:] == [], f"build tools in the final image: {lines[1:]}"


def test_unknown_entry_point_is_refused(image: str) -> None:
    result = docker("run", "--rm", image, "api", "billing", check=False)
    assert result.returncode == 64
    assert "unknown API domain: billing" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _app_env(services: dict[str, str], database_prefix: str) -> list[str]:
    from growbin.core.security import generate_private_key_pem, public_key_pem

    private_key = generate_private_key_pem()
    env = {
        "GROWBIN_ENVIRONMENT": "test",
        "GROWBIN_DATABASE__HOST": services["GROWBIN_TEST_PG_HOST"],
        "GROWBIN_DATABASE__PORT": services["GROWBIN_TEST_PG_PORT"],
        "GROWBIN_DATABASE__SSLMODE": "disable",
        "GROWBIN_REDIS__URL": services["GROWBIN_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/2",
        "GROWBIN_BROKER__URL": services["GROWBIN_TEST_BROKER_URL"],
        "GROWBIN_AUTH__JWT_PRIVATE_KEY": private_key,
        "GROWBIN_AUTH__JWT_PUBLIC_KEY": public_key_pem(private_key),
    }
    for domain in API_DOMAINS:
        prefix = f"GROWBIN_DATABASE__{domain.upper()}__"
        env[prefix + "NAME"] = database_prefix + domain
        env[prefix + "USER"] = services["GROWBIN_TEST_PG_USER"]
        env[prefix + "PASSWORD"] = services["GROWBIN_TEST_PASSWORD"]
    args = []
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return args


# The chart's pod security, reproduced with Docker flags.
RESTRICTED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
]


def _chart_migration_env(services: dict[str, str], database_prefix: str) -> list[str]:
    """Exactly the variables the chart's migration Job sets (production mode), with values
    pointing at the test PostgreSQL, plus the test database names and owner."""
    from growbin.core.security import generate_private_key_pem, public_key_pem

    job = render("production").get("Job", f"{RELEASE}-migrations")
    names = [e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    values = {
        "GROWBIN_ENVIRONMENT": "production",
        "GROWBIN_DATABASE__HOST": services["GROWBIN_TEST_PG_HOST"],
        "GROWBIN_DATABASE__PORT": services["GROWBIN_TEST_PG_PORT"],
        "GROWBIN_DATABASE__SSLMODE": "prefer",
        "GROWBIN_AUTH__JWT_PUBLIC_KEY": public_key_pem(generate_private_key_pem()),
    }
    env = {}
    for name in names:
        if name.endswith("__PASSWORD"):
            env[name] = services["GROWBIN_TEST_PASSWORD"]
        else:
            env[name] = values[name]
    for domain in API_DOMAINS:
        env[f"GROWBIN_DATABASE__{domain.upper()}__NAME"] = database_prefix + domain
        env[f"GROWBIN_DATABASE__{domain.upper()}__USER"] = services["GROWBIN_TEST_PG_USER"]
    args = []
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return args


@pytest.fixture(scope="module")
def migrated(image: str, services: dict[str, str]) -> Iterator[tuple[str, str]]:
    import psycopg

    prefix = f"growbin_img_{uuid.uuid4().hex[:6]}_"
    admin = psycopg.connect(
        host=services["GROWBIN_TEST_PG_HOST"],
        port=int(services["GROWBIN_TEST_PG_PORT"]),
        user=services["GROWBIN_TEST_PG_USER"],
        password=services["GROWBIN_TEST_PASSWORD"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )
    try:
        for domain in API_DOMAINS:
            admin.execute(f'CREATE DATABASE "{prefix}{domain}"')
        result = docker(
            "run", "--rm", *RESTRICTED, *_chart_migration_env(services, prefix), image, "migrate",
            timeout=300, check=False,
        )  # fmt: skip
        yield prefix, result.stdout + result.stderr
    finally:
        for domain in API_DOMAINS:
            admin.execute(f'DROP DATABASE IF EXISTS "{prefix}{domain}" WITH (FORCE)')
        admin.close()


def test_migrations_run_from_the_image(migrated: tuple[str, str], services: dict) -> None:
    import psycopg

    prefix, output = migrated
    upgraded = [line.split(":")[0] for line in output.splitlines() if ": upgrade to " in line]
    assert upgraded, output
    for domain in upgraded:
        with psycopg.connect(
            host=services["GROWBIN_TEST_PG_HOST"],
            port=int(services["GROWBIN_TEST_PG_PORT"]),
            user=services["GROWBIN_TEST_PG_USER"],
            password=services["GROWBIN_TEST_PASSWORD"],
            dbname=prefix + domain,
            connect_timeout=5,
        ) as conn:
            (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            assert version, domain


@pytest.mark.parametrize("domain", API_DOMAINS)
def test_api_entry_point_answers_health(
    image: str, services: dict[str, str], migrated: tuple[str, str], domain: str
) -> None:
    prefix, _ = migrated
    port = _free_port()
    name = f"growbin-img-{domain}-{uuid.uuid4().hex[:6]}"
    docker(
        "run", "-d", "--name", name, *RESTRICTED, *_app_env(services, prefix),
        "-e", f"HTTP_PORT={port}", image, "api", domain,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        health = ready = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
                break
            except httpx.TransportError:
                if docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() != "true":
                    break
                time.sleep(0.5)
        logs = docker("logs", name, check=False)
        assert health is not None, f"{domain} never answered:\n{logs.stdout}{logs.stderr}"
        assert health.status_code == 200
        assert ready.status_code == 200, ready.text
        check = docker("exec", name, "growbin-healthcheck", check=False)
        assert check.returncode == 0, check.stderr
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        docker("rm", "-f", name, check=False)


def test_worker_entry_point_answers_its_health_check(image: str, services: dict) -> None:
    name = f"growbin-img-worker-{uuid.uuid4().hex[:6]}"
    docker(
        "run", "-d", "--name", name, *RESTRICTED, *_app_env(services, "growbin_unused_"),
        image, "worker", "storage", "--concurrency=1",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        check = None
        while time.monotonic() < deadline:
            check = docker("exec", name, "growbin-healthcheck", timeout=30, check=False)
            if check.returncode == 0:
                break
            if docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() != "true":
                break
            time.sleep(2)
        logs = docker("logs", name, check=False)
        assert check is not None and check.returncode == 0, logs.stdout + logs.stderr
        assert "pong" in check.stdout
    finally:
        docker("rm", "-f", name, check=False)


def test_dockerfile_takes_the_base_image_as_argument() -> None:
    dockerfile = Path(REPO_ROOT / "app" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in dockerfile
    assert dockerfile.count("FROM ${BASE_IMAGE}") == 2
