from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.core.redis import get_redis
from growbin.recycling import service
from growbin.recycling.schemas import CategoryDetail, CategoryList, ItemDetail, SearchResult

RecyclingSession = Annotated[AsyncSession, Depends(session_dependency("recycling"))]
RedisClient = Annotated[Redis, Depends(get_redis)]
SlugPath = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]

# RFC 9211 cache name in the Cache-Status response header of /search.
CACHE_NAME = "growbin-recycling"
_CACHE_STATUS = {
    service.CacheOutcome.HIT: f"{CACHE_NAME}; hit",
    service.CacheOutcome.MISS: f"{CACHE_NAME}; fwd=miss; stored",
    service.CacheOutcome.UNAVAILABLE: f'{CACHE_NAME}; fwd=bypass; detail="unavailable"',
}

router = APIRouter()


@router.get("/categories")
async def list_categories(session: RecyclingSession) -> CategoryList:
    """Every disposal category, streams before their sub-categories."""
    return await service.list_categories(session)


@router.get("/categories/{slug}")
async def category_detail(slug: SlugPath, session: RecyclingSession) -> CategoryDetail:
    """How to put out one category, what it does not accept and why, and its items."""
    return await service.category_detail(session, slug)


@router.get("/items/{slug}")
async def item_detail(slug: SlugPath, session: RecyclingSession) -> ItemDetail:
    return await service.item_detail(session, slug)


@router.get("/search")
async def search(
    response: Response,
    session: RecyclingSession,
    redis: RedisClient,
    q: Annotated[str, Query(min_length=1, max_length=100, description="Korean or English")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResult:
    """Items and categories by name or alias, tolerant of typos, spacing and partial words.

    The ``Cache-Status`` header tells whether the answer came from the cache.
    """
    result, outcome = await service.search(session, redis, q, limit)
    response.headers["Cache-Status"] = _CACHE_STATUS[outcome]
    return result


# The knowledge base is public reference data: no user rows, nothing to purge.
domain = DomainSpec(name="recycling", router=router)
