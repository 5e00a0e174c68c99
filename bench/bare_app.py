"""The baseline: bare Starlette + asyncpg endpoints running the services' own SQL.

Same queries, same parameters, no framework layers (validation, dependency injection,
SQLAlchemy, error handling, metrics, Redis cache); the benchmark divides by this.
"""

from __future__ import annotations

import os
import re
from contextlib import asynccontextmanager

import asyncpg
from growbin.locations.repository import NEARBY_SQL
from growbin.recycling import repository as recycling_repository
from growbin.recycling.normalize import parse_query
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


def positional(sql: str) -> tuple[str, list[str]]:
    """SQLAlchemy ``:name`` parameters to asyncpg ``$n`` (``::type`` casts untouched)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)", number, sql), names


NEARBY, NEARBY_PARAMS = positional(NEARBY_SQL)
SEARCH, SEARCH_PARAMS = positional(recycling_repository.SEARCH_SQL)
pools: dict[str, asyncpg.Pool] = {}


def _dsn(domain: str) -> dict[str, object]:
    prefix = f"GROWBIN_DATABASE__{domain.upper()}__"
    return {
        "host": os.environ["GROWBIN_DATABASE__HOST"],
        "port": int(os.environ["GROWBIN_DATABASE__PORT"]),
        "user": os.environ[prefix + "USER"],
        "password": os.environ[prefix + "PASSWORD"],
        "database": os.environ[prefix + "NAME"],
    }


@asynccontextmanager
async def lifespan(app: Starlette):
    # The same pool size as the services' SQLAlchemy pools (pool_size 5 + overflow 5).
    for domain in ("locations", "recycling"):
        pools[domain] = await asyncpg.create_pool(**_dsn(domain), min_size=5, max_size=10)
    yield
    for pool in pools.values():
        await pool.close()


async def nearby(request):
    q = request.query_params
    values = {
        "lat": float(q["lat"]),
        "lon": float(q["lon"]),
        "radius_m": float(q.get("radius_m", 1000)),
        "category": q.get("category"),
        "limit": int(q.get("limit", 20)),
    }
    rows = await pools["locations"].fetch(NEARBY, *(values[n] for n in NEARBY_PARAMS))
    items = [{**dict(r), "id": str(r["id"])} for r in rows]
    return JSONResponse({"items": items})


async def search(request):
    values = recycling_repository.search_parameters(parse_query(request.query_params["q"]), 10)
    async with pools["recycling"].acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT set_config('pg_trgm.similarity_threshold', $1, true),"
            " set_config('pg_trgm.word_similarity_threshold', $2, true)",
            str(recycling_repository.SIMILARITY_THRESHOLD),
            str(recycling_repository.WORD_SIMILARITY_THRESHOLD),
        )
        rows = await connection.fetch(SEARCH, *(values[n] for n in SEARCH_PARAMS))
    return JSONResponse({"items": [dict(r) for r in rows]})


async def health(request):
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/nearby", nearby),
        Route("/search", search),
    ],
    lifespan=lifespan,
)
