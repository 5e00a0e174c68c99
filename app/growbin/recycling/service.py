"""Recycling rules: category and item lookups, cached search, the catalog reload."""

from __future__ import annotations

import logging
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.errors import InvalidRequest, NotFound
from growbin.recycling import cache, repository
from growbin.recycling.catalog import Catalog
from growbin.recycling.models import Category
from growbin.recycling.normalize import Query, parse_query
from growbin.recycling.schemas import (
    CategoryDetail,
    CategoryList,
    CategoryRef,
    CategorySummary,
    ItemDetail,
    ItemRef,
    LocalizedText,
    NotAcceptedRule,
    SearchHit,
    SearchMissRow,
    SearchResult,
)

log = logging.getLogger(__name__)

# Scores run 0..2 (repository.SEARCH_SQL). From this score on, the first hit is taken to be
# what the query names; below it, the hits are suggestions and the query counts as a miss.
CONFIDENT_SCORE = 0.6


class CacheOutcome(StrEnum):
    HIT = "hit"
    MISS = "miss"
    # Redis did not answer; the result came straight from PostgreSQL.
    UNAVAILABLE = "unavailable"


def _ref(category: Category) -> CategoryRef:
    return CategoryRef(
        slug=category.slug, name=LocalizedText(ko=category.name_ko, en=category.name_en)
    )


async def list_categories(session: AsyncSession) -> CategoryList:
    rows = await repository.categories(session)
    return CategoryList(
        items=[
            CategorySummary(
                slug=row["slug"],
                parent=row["parent"],
                name=LocalizedText(ko=row["name_ko"], en=row["name_en"]),
                summary=LocalizedText(ko=row["summary_ko"], en=row["summary_en"]),
                item_count=row["item_count"],
            )
            for row in rows
        ]
    )


async def category_detail(session: AsyncSession, slug: str) -> CategoryDetail:
    category = await repository.category(session, slug)
    if category is None:
        raise NotFound(f"No recycling category {slug!r}.")
    parent = (
        await repository.category_by_id(session, category.parent_id)
        if category.parent_id is not None
        else None
    )
    return CategoryDetail(
        slug=category.slug,
        name=LocalizedText(ko=category.name_ko, en=category.name_en),
        parent=_ref(parent) if parent else None,
        aliases=category.aliases,
        summary=LocalizedText(ko=category.summary_ko, en=category.summary_en),
        steps=[LocalizedText(**step) for step in category.steps],
        not_accepted=[NotAcceptedRule(**rule) for rule in category.not_accepted],
        notes=[LocalizedText(**note) for note in category.notes],
        subcategories=[_ref(child) for child in await repository.children(session, category.id)],
        items=[
            ItemRef(slug=item.slug, name=LocalizedText(ko=item.name_ko, en=item.name_en))
            for item in await repository.items_in(session, category.id)
        ],
    )


async def item_detail(session: AsyncSession, slug: str) -> ItemDetail:
    item = await repository.item(session, slug)
    if item is None:
        raise NotFound(f"No recycling item {slug!r}.")
    category = await repository.category_by_id(session, item.category_id)
    assert category is not None  # enforced by the foreign key
    return ItemDetail(
        slug=item.slug,
        name=LocalizedText(ko=item.name_ko, en=item.name_en),
        aliases=item.aliases,
        category=_ref(category),
        steps=[LocalizedText(**step) for step in item.steps],
        category_steps=[LocalizedText(**step) for step in category.steps],
        notes=[LocalizedText(**note) for note in item.notes],
    )


def _category_ref(slug: str, name_ko: str, name_en: str) -> CategoryRef:
    return CategoryRef(slug=slug, name=LocalizedText(ko=name_ko, en=name_en))


def item_phrase(text: str) -> str:
    """The item a sentence asks about, as search reads it ("페트병 라벨은 어떻게 버려요?" →
    "페트병 라벨"): for callers that look for the item inside longer text (chat)."""
    return parse_query(text).text


async def _search_database(
    session: AsyncSession, query: str, parsed: Query, limit: int
) -> SearchResult:
    rows = await repository.search(session, parsed, limit)
    hits = [
        SearchHit(
            kind=row["kind"],
            slug=row["slug"],
            name=LocalizedText(ko=row["name_ko"], en=row["name_en"]),
            category=_category_ref(
                row["category_slug"], row["category_name_ko"], row["category_name_en"]
            ),
            matched_term=row["matched_term"],
            score=row["score"],
        )
        for row in rows
        if row["kind"] != "browse"
    ]
    if hits and hits[0].score >= CONFIDENT_SCORE:
        return SearchResult(query=query, items=hits, match="confident", browse=[])
    top_level = [
        _category_ref(row["slug"], row["name_ko"], row["name_en"])
        for row in rows
        if row["kind"] == "browse"
    ]
    browse = {ref.slug: ref for ref in [*(hit.category for hit in hits), *top_level]}
    return SearchResult(
        query=query,
        items=hits,
        match="suggestions" if hits else "none",
        browse=list(browse.values()),
    )


async def _record_miss(session: AsyncSession, parsed: Query, query: str) -> None:
    # Curation data, not part of the answer: a failure is logged and the search goes on.
    try:
        await repository.record_miss(session, parsed.key, parsed.text, query.strip())
        await session.commit()
    except SQLAlchemyError as exc:
        log.warning("recycling search miss not recorded: %s", exc)
        await session.rollback()


async def search(
    session: AsyncSession, redis: Redis, query: str, limit: int, *, record_miss: bool = True
) -> tuple[SearchResult, CacheOutcome]:
    """Items and categories whose names or aliases resemble ``query``, most relevant first.

    The query is first reduced to the item it names (``normalize.parse_query``: verbs,
    particles and question words go, the head noun of a compound decides). Results are cached
    per search key, so spelling and spacing variants share one entry. Redis being down slows
    search down but does not break it. A query with no confident match is counted in
    ``recycling_search_misses`` unless ``record_miss`` is false (callers that try several
    readings of one question).
    """
    parsed = parse_query(query)
    if not parsed.phrases:
        raise InvalidRequest(
            "The query has no letters or digits to search for.", details={"q": query}
        )
    result, outcome = await _cached_search(session, redis, query, parsed, limit)
    if record_miss and result.match != "confident":
        await _record_miss(session, parsed, query)
    return result, outcome


async def _cached_search(
    session: AsyncSession, redis: Redis, query: str, parsed: Query, limit: int
) -> tuple[SearchResult, CacheOutcome]:
    try:
        generation, cached = await cache.get_search(redis, parsed.key, limit)
    except RedisError as exc:
        log.warning("recycling search cache unavailable: %s", exc)
        cache.SEARCH_CACHE.labels(CacheOutcome.UNAVAILABLE).inc()
        result = await _search_database(session, query, parsed, limit)
        return result, CacheOutcome.UNAVAILABLE
    if cached is not None:
        cache.SEARCH_CACHE.labels(CacheOutcome.HIT).inc()
        # The cached body answered another spelling of the same key: echo this one.
        return cached.model_copy(update={"query": query}), CacheOutcome.HIT
    result = await _search_database(session, query, parsed, limit)
    cache.SEARCH_CACHE.labels(CacheOutcome.MISS).inc()
    try:
        await cache.put_search(redis, generation, parsed.key, limit, result)
    except RedisError as exc:
        log.warning("recycling search result not cached: %s", exc)
    return result, CacheOutcome.MISS


async def top_misses(session: AsyncSession, limit: int) -> list[SearchMissRow]:
    """The most frequent queries without a confident match, for curating the catalogue."""
    return [
        SearchMissRow(
            query=miss.query,
            example=miss.example,
            count=miss.count,
            first_seen=miss.first_seen,
            last_seen=miss.last_seen,
        )
        for miss in await repository.top_misses(session, limit)
    ]


async def reload_catalog(
    session: AsyncSession, redis: Redis, catalog: Catalog, *, force: bool = False
) -> bool:
    """Load ``catalog`` unless the same version is loaded; True if it was (re)loaded.

    The cache generation moves after the commit, so no request can cache results of the new
    generation computed from the old catalog. It moves even when the catalog was unchanged:
    a previous seed may have committed and then failed to reach Redis.
    """
    digest = repository.load_digest(catalog)
    loaded = force or await repository.loaded_digest(session) != digest
    if loaded:
        await repository.replace_catalog(session, catalog, digest)
        await session.commit()
    await cache.invalidate(redis)
    return loaded
