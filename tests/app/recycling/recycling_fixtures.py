"""Fixtures of the recycling tests (imported by the test modules: a conftest.py here would
shadow tests/app/conftest.py, which the tests import helpers from by module name).

They provide an app with the recycling domain and the loaded catalog.

The knowledge base is reference data: it is loaded once per session through the same seed
function `growbin seed recycling` runs, and no test changes it (the reload tests reload the
very same catalog).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from growbin.core.app import create_app, load_domain
from growbin.recycling.seed import seed


@pytest.fixture(scope="session", name="seeded_catalog")
async def seeded_catalog_fixture(migrated_databases: list[str]) -> str:
    return await seed()


@pytest.fixture(scope="session", name="recycling_app")
async def recycling_app_fixture(seeded_catalog: str):
    application = create_app([load_domain("recycling")], service="recycling")
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(name="api")
async def api_fixture(recycling_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=recycling_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
