from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_COLUMNS = """
    id, name, address, categories, opening_hours, source,
    ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon
"""

# ST_DWithin on geography uses the GiST index; `<->` orders by distance with the same index.
NEARBY_SQL = f"""
SELECT {_COLUMNS},
       ST_Distance(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
FROM drop_off_points
WHERE ST_DWithin(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :radius_m)
  AND (CAST(:category AS varchar) IS NULL OR categories @> ARRAY[CAST(:category AS varchar)])
ORDER BY location <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
LIMIT :limit
"""  # noqa: S608 - only the constant column list is interpolated


async def nearby(
    session: AsyncSession, lat: float, lon: float, radius_m: float, category: str | None, limit: int
) -> list[dict[str, Any]]:
    result = await session.execute(
        text(NEARBY_SQL),
        {"lat": lat, "lon": lon, "radius_m": radius_m, "category": category, "limit": limit},
    )
    return [dict(row) for row in result.mappings()]


async def by_id(session: AsyncSession, point_id: uuid.UUID) -> dict[str, Any] | None:
    result = await session.execute(
        text(f"SELECT {_COLUMNS} FROM drop_off_points WHERE id = :id"),  # noqa: S608
        {"id": point_id},
    )
    row = result.mappings().first()
    return dict(row) if row else None


async def upsert(session: AsyncSession, point: dict[str, Any]) -> None:
    # Re-importing a file updates points in place (same name and address).
    await session.execute(
        text(
            """
            INSERT INTO drop_off_points
                (id, name, address, categories, opening_hours, location, source)
            VALUES (:id, :name, :address, :categories, :opening_hours,
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :source)
            ON CONFLICT (name, address) DO UPDATE SET
                categories = EXCLUDED.categories,
                opening_hours = EXCLUDED.opening_hours,
                location = EXCLUDED.location,
                source = EXCLUDED.source,
                updated_at = now()
            """
        ),
        point,
    )


async def has_source(session: AsyncSession, source: str) -> bool:
    result = await session.execute(
        text("SELECT EXISTS (SELECT 1 FROM drop_off_points WHERE source = :source)"),
        {"source": source},
    )
    return bool(result.scalar())
