"""Searches with no confident match are counted (the words only, never who asked), survive a
catalogue reload, and are listed by ``growbin recycling-misses``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from growbin.core.db import get_databases
from growbin.core.redis import get_redis
from growbin.recycling.catalog import load_catalog
from growbin.recycling.service import reload_catalog
from recycling_fixtures import (  # noqa: F401 - fixtures, used by name
    api_fixture,
    recycling_app_fixture,
    seeded_catalog_fixture,
)
from sqlalchemy import text

SEARCH = "/api/v1/recycling/search"


async def _misses() -> list[tuple]:
    async with get_databases().engine("recycling").connect() as connection:
        result = await connection.execute(
            text(
                "SELECT query, example, count, first_seen <= last_seen"
                " FROM recycling_search_misses ORDER BY count DESC, query"
            )
        )
        return [tuple(row) for row in result]


@pytest.fixture(autouse=True)
async def no_misses(seeded_catalog: str) -> AsyncIterator[None]:
    # The recycling database is reference data, kept across tests; its misses are not.
    async with get_databases().engine("recycling").begin() as connection:
        await connection.execute(text("DELETE FROM recycling_search_misses"))
    yield


async def test_every_unconfident_search_is_counted_cached_or_not(api: httpx.AsyncClient) -> None:
    first = await api.get(SEARCH, params={"q": "zqxjvwk 버리는 법"})
    again = await api.get(SEARCH, params={"q": "zqxjvwk버리는법?"})
    assert again.headers["cache-status"] == "growbin-recycling; hit"
    assert first.json()["match"] == again.json()["match"] == "none"
    # One row for both spellings: the item phrase, the latest query as typed, the count.
    assert await _misses() == [("zqxjvwk", "zqxjvwk버리는법?", 2, True)]


async def test_confident_searches_are_not_counted(api: httpx.AsyncClient) -> None:
    assert (await api.get(SEARCH, params={"q": "우유팩"})).json()["match"] == "confident"
    assert await _misses() == []


async def test_a_miss_that_cannot_be_recorded_does_not_fail_the_search(
    api: httpx.AsyncClient,
) -> None:
    async with get_databases().engine("recycling").begin() as connection:
        await connection.execute(
            text("ALTER TABLE recycling_search_misses RENAME TO recycling_search_misses_away")
        )
    try:
        response = await api.get(SEARCH, params={"q": "zqxjvwk"})
    finally:
        async with get_databases().engine("recycling").begin() as connection:
            await connection.execute(
                text("ALTER TABLE recycling_search_misses_away RENAME TO recycling_search_misses")
            )
    assert response.status_code == 200
    assert response.json()["match"] == "none"


async def test_a_catalogue_reload_keeps_the_misses(api: httpx.AsyncClient) -> None:
    await api.get(SEARCH, params={"q": "zqxjvwk"})
    async with get_databases().sessionmaker("recycling")() as session:
        assert await reload_catalog(session, get_redis(), load_catalog(), force=True)
    assert await _misses() == [("zqxjvwk", "zqxjvwk", 1, True)]


def _misses_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "growbin.cli", "recycling-misses", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_misses_command_lists_the_most_frequent_first(api: httpx.AsyncClient) -> None:
    for query in ("qqqxxx", "zqxjvwk", "zqxjvwk?"):
        await api.get(SEARCH, params={"q": query})
    result = _misses_command("--limit", "1")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["count", "last", "seen", "(UTC)", "query", "(example", "as", "typed)"]
    assert len(rows) == 1
    count, _date, _time, query, example = rows[0].split()
    assert (count, query, example) == ("2", "zqxjvwk", "(zqxjvwk?)")


async def test_misses_command_refuses_a_bad_limit() -> None:
    result = _misses_command("--limit", "0")
    assert result.returncode == 2
    assert "must be between 1 and 1000" in result.stderr
