"""The /api/v1/recycling endpoints against the real PostgreSQL (pg_trgm) and Redis."""

from __future__ import annotations

import httpx
import pytest
from conftest import assert_error
from growbin.core.db import get_databases
from growbin.core.redis import get_redis
from growbin.recycling.cache import GENERATION_KEY
from growbin.recycling.catalog import load_catalog
from growbin.recycling.normalize import parse_query, search_key
from growbin.recycling.repository import SEARCH_SQL, search_parameters
from growbin.recycling.seed import seed
from growbin.recycling.service import CONFIDENT_SCORE
from recycling_fixtures import (  # noqa: F401 - fixtures, used by name
    api_fixture,
    recycling_app_fixture,
    seeded_catalog_fixture,
)
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import text

BASE = "/api/v1/recycling"


async def test_categories_list_every_category_with_parents_first(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/categories")
    assert response.status_code == 200
    categories = response.json()["items"]
    catalog = load_catalog()
    assert [c["slug"] for c in categories] == [c.slug for c in catalog.categories]
    by_slug = {c["slug"]: c for c in categories}
    assert by_slug["clear-pet"]["parent"] == "plastic"
    assert by_slug["clear-pet"]["name"] == {"ko": "투명 페트병", "en": "Clear PET bottles"}
    assert sum(c["item_count"] for c in categories) == len(catalog.items)


async def test_category_detail_has_rules_subcategories_and_items(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/categories/glass")
    assert response.status_code == 200
    glass = response.json()
    assert glass["parent"]["slug"] == "recyclables"
    assert [s["slug"] for s in glass["subcategories"]] == ["deposit-bottles"]
    assert {"wine-bottle", "jam-jar"} <= {i["slug"] for i in glass["items"]}
    assert glass["steps"] and all(step["ko"] and step["en"] for step in glass["steps"])
    broken = next(r for r in glass["not_accepted"] if r["instead"] == "non-combustible")
    assert broken["why"]["ko"] and broken["why"]["en"]


async def test_item_detail_has_item_and_category_steps(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/items/water-bottle")
    assert response.status_code == 200
    item = response.json()
    assert item["category"]["slug"] == "clear-pet"
    assert "삼다수" in item["aliases"]
    assert item["steps"][0]["ko"].startswith("라벨")
    assert len(item["category_steps"]) == 4


async def test_item_detail_says_where_districts_differ(api: httpx.AsyncClient) -> None:
    noted = next(item for item in load_catalog().items if item.notes)
    response = await api.get(f"{BASE}/items/{noted.slug}")
    assert response.status_code == 200
    assert response.json()["notes"] == [note.model_dump() for note in noted.notes]
    plain = next(item for item in load_catalog().items if not item.notes)
    assert (await api.get(f"{BASE}/items/{plain.slug}")).json()["notes"] == []


async def test_unknown_slugs_are_404_in_the_error_shape(api: httpx.AsyncClient) -> None:
    assert_error(await api.get(f"{BASE}/items/moon-rock"), 404, "not_found")
    assert_error(await api.get(f"{BASE}/categories/moon-rocks"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/items/Water_Bottle",
        f"{BASE}/items/{'a' * 65}",
        f"{BASE}/categories/%27%3B%20DROP%20TABLE",
        f"{BASE}/search",
        f"{BASE}/search?q=",
        f"{BASE}/search?q={'가' * 101}",
        f"{BASE}/search?q=%3F%21%E2%80%A6",
        f"{BASE}/search?q=pet&limit=0",
        f"{BASE}/search?q=pet&limit=51",
        f"{BASE}/search?q=pet&limit=ten",
    ],
)
async def test_bad_input_is_422_in_the_error_shape(api: httpx.AsyncClient, path: str) -> None:
    assert_error(await api.get(path), 422, "invalid_request")


async def test_search_orders_by_relevance(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/search", params={"q": "우유팩", "limit": 5})
    hits = response.json()["items"]
    assert hits[0]["slug"] == "milk-carton"
    assert hits[0]["matched_term"] == "우유팩"
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert len(hits) <= 5


async def test_search_names_a_whole_category(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/search", params={"q": "비닐"})
    best = response.json()["items"][0]
    assert best["kind"] == "category"
    assert best["slug"] == best["category"]["slug"] == "vinyl"
    assert {hit["kind"] for hit in response.json()["items"][1:]} == {"item"}


async def test_search_for_nonsense_is_empty_not_an_error(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{BASE}/search", params={"q": "zqxjvwk"})
    assert response.status_code == 200
    body = response.json()
    assert (body["items"], body["match"]) == ([], "none")
    # No dead end: the top-level categories to browse instead, in catalogue order.
    top_level = [c.slug for c in load_catalog().categories if c.parent is None]
    assert [c["slug"] for c in body["browse"]] == top_level


async def test_a_confident_match_says_so_and_offers_nothing_to_browse(
    api: httpx.AsyncClient,
) -> None:
    body = (await api.get(f"{BASE}/search", params={"q": "우유팩"})).json()
    assert (body["match"], body["browse"]) == ("confident", [])


async def test_weak_matches_are_suggestions_with_their_categories_first(
    api: httpx.AsyncClient,
) -> None:
    # A misspelt 뽁뽁이 (bubble wrap) resembles it and 떡볶이 about equally, and neither well.
    body = (await api.get(f"{BASE}/search", params={"q": "뽁복이"})).json()
    assert body["match"] == "suggestions"
    assert body["items"] and all(hit["score"] < CONFIDENT_SCORE for hit in body["items"])
    browse = [c["slug"] for c in body["browse"]]
    suggested = list(dict.fromkeys(hit["category"]["slug"] for hit in body["items"]))
    assert browse[: len(suggested)] == suggested
    assert {"recyclables", "general-waste"} <= set(browse)


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        # Verbs, particles and question marks around the item are not searched for.
        ("페트병 라벨은 어떻게 버려요?", "pet-label"),
        ("how do I recycle a pizza box", "pizza-box"),
        # The last noun of a compound decides: a straw, whatever it came with...
        ("우유팩 빨대", "straw"),
        ("음료수캔", "drink-can"),
        # ...unless the first names a kind of it: 삼다수 is a water bottle.
        ("삼다수 병", "water-bottle"),
        # A name made of several words is still matched whole.
        ("신라면 봉지 버리는 법", "ramen-wrapper"),
    ],
)
async def test_search_reads_the_item_out_of_the_query(
    api: httpx.AsyncClient, query: str, slug: str
) -> None:
    body = (await api.get(f"{BASE}/search", params={"q": query})).json()
    assert body["items"][0]["slug"] == slug, body["items"][:3]
    assert body["match"] == "confident"


async def test_search_is_cached_and_variants_share_the_entry(api: httpx.AsyncClient) -> None:
    first = await api.get(f"{BASE}/search", params={"q": "택배 박스"})
    assert first.headers["cache-status"] == "growbin-recycling; fwd=miss; stored"
    second = await api.get(f"{BASE}/search", params={"q": "택배 박스"})
    assert second.headers["cache-status"] == "growbin-recycling; hit"
    assert second.json() == first.json()
    # Another spacing of the same words has the same search key: served from the same entry,
    # echoing the query as typed.
    variant = await api.get(f"{BASE}/search", params={"q": "택배박스"})
    assert variant.headers["cache-status"] == "growbin-recycling; hit"
    assert variant.json()["query"] == "택배박스"
    assert variant.json()["items"] == first.json()["items"]
    cached = [key async for key in get_redis().scan_iter(match="growbin:recycling:search:*")]
    assert len(cached) == 1 and cached[0].endswith(search_key("택배박스"))


async def test_cached_entry_is_really_used(api: httpx.AsyncClient) -> None:
    # Prove the hit is served from Redis: alter the stored entry, the API returns the change.
    await api.get(f"{BASE}/search", params={"q": "햇반"})
    [key] = [k async for k in get_redis().scan_iter(match="growbin:recycling:search:*")]
    stored = await get_redis().get(key)
    await get_redis().set(key, stored.replace('"matched_term":"햇반"', '"matched_term":"CACHED"'))
    again = await api.get(f"{BASE}/search", params={"q": "햇반"})
    assert again.headers["cache-status"] == "growbin-recycling; hit"
    assert again.json()["items"][0]["matched_term"] == "CACHED"


async def test_reseed_is_idempotent_and_invalidates_the_cache(api: httpx.AsyncClient) -> None:
    await api.get(f"{BASE}/search", params={"q": "소주병"})
    assert (await api.get(f"{BASE}/search", params={"q": "소주병"})).headers[
        "cache-status"
    ] == "growbin-recycling; hit"
    generation = int(await get_redis().get(GENERATION_KEY) or 0)

    summary = await seed()

    assert summary.startswith("already up to date: 20 categories")
    assert int(await get_redis().get(GENERATION_KEY)) == generation + 1
    after = await api.get(f"{BASE}/search", params={"q": "소주병"})
    assert after.headers["cache-status"] == "growbin-recycling; fwd=miss; stored"
    assert after.json()["items"][0]["slug"] == "soju-bottle"
    async with get_databases().engine("recycling").connect() as connection:
        counts = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM recycling_items),"
                    " (SELECT count(*) FROM recycling_categories),"
                    " (SELECT item_count FROM recycling_catalog_state)"
                )
            )
        ).one()
    catalog = load_catalog()
    assert tuple(counts) == (len(catalog.items), len(catalog.categories), len(catalog.items))


async def test_forced_reload_replaces_the_catalog_atomically() -> None:
    from growbin.recycling.service import reload_catalog

    catalog = load_catalog()
    async with get_databases().sessionmaker("recycling")() as session:
        assert await reload_catalog(session, get_redis(), catalog, force=True) is True
    async with get_databases().sessionmaker("recycling")() as session:
        assert await reload_catalog(session, get_redis(), catalog) is False
        slugs = await session.scalars(text("SELECT slug FROM recycling_items"))
        assert sorted(slugs) == sorted(item.slug for item in catalog.items)


async def test_a_changed_normaliser_reloads_an_unchanged_catalog(monkeypatch) -> None:
    from growbin.recycling import repository
    from growbin.recycling.service import reload_catalog

    catalog = load_catalog()
    async with get_databases().sessionmaker("recycling")() as session:
        assert await reload_catalog(session, get_redis(), catalog) is False
    # Same data, other search forms (as after a change to normalize): the stored keys would
    # no longer match new queries' keys, so the seed must not skip the load.
    monkeypatch.setattr(repository, "search_key", lambda term: search_key(term) + "x")
    try:
        async with get_databases().sessionmaker("recycling")() as session:
            assert await reload_catalog(session, get_redis(), catalog) is True
    finally:
        monkeypatch.undo()
        async with get_databases().sessionmaker("recycling")() as session:
            assert await reload_catalog(session, get_redis(), catalog) is True
            stored = await session.scalar(
                text("SELECT key FROM recycling_search_terms WHERE term = '페트병'")
            )
    assert stored == search_key("페트병")


async def test_search_uses_the_trigram_index() -> None:
    async with get_databases().engine("recycling").connect() as connection:
        # Tiny tables make a sequential scan cheapest; forbid it to see whether the index
        # can serve the filter at all.
        await connection.execute(text("SET enable_seqscan = off"))
        await connection.execute(text("SET enable_indexscan = off"))
        plan = await connection.execute(
            text("EXPLAIN " + SEARCH_SQL), search_parameters(parse_query("삼다수 병"), 10)
        )
        lines = "\n".join(row[0] for row in plan)
    assert "ix_recycling_search_terms_key_trgm" in lines, lines


async def test_search_still_answers_when_redis_is_down(
    recycling_app, api: httpx.AsyncClient
) -> None:
    # Nothing listens on port 1 of loopback: every Redis command fails to connect.
    # No retries: the point is the fallback, not redis-py's backoff.
    unreachable = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    recycling_app.dependency_overrides[get_redis] = lambda: unreachable
    try:
        response = await api.get(f"{BASE}/search", params={"q": "삼다수"})
    finally:
        recycling_app.dependency_overrides.clear()
        await unreachable.aclose()
    assert response.status_code == 200
    assert response.headers["cache-status"] == 'growbin-recycling; fwd=bypass; detail="unavailable"'
    assert response.json()["items"][0]["slug"] == "water-bottle"
