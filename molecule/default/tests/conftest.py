"""Fixtures of the end-to-end and fault-drill suites: the platform client and node control."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from growbin_client import Endpoint, Platform, User
from growbin_nodes import Nodes


@pytest.fixture(scope="session")
def endpoint() -> Endpoint:
    return Endpoint.from_env()


@pytest.fixture(scope="session")
def platform(endpoint: Endpoint) -> Iterator[Platform]:
    client = Platform(endpoint)
    # One clear failure instead of every test timing out on its own when nothing listens.
    try:
        client.http.get("/health").raise_for_status()
    except httpx.HTTPError as exc:
        client.close()
        pytest.fail(f"the platform does not answer on {endpoint.url}/health: {exc!r}")
    yield client
    client.close()


@pytest.fixture
def user(platform: Platform) -> User:
    """A fresh account per test, so its history holds exactly what the test scanned."""
    return platform.new_user()


@pytest.fixture(scope="session")
def nodes() -> Nodes:
    return Nodes()
