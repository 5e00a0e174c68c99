from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.app import DomainSpec
from growbin.core.db import session_dependency
from growbin.locations import service
from growbin.locations.schemas import DropOffCategory, DropOffPoint, NearbyResult

# Both endpoints are one read-only statement: no transaction round trips.
LocationsSession = Annotated[
    AsyncSession, Depends(session_dependency("locations", autocommit=True))
]

router = APIRouter()


@router.get("/nearby")
async def nearby(
    session: LocationsSession,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    radius_m: Annotated[int, Query(ge=1, le=20_000)] = 1_000,
    category: DropOffCategory | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> NearbyResult:
    """Drop-off points within ``radius_m`` metres, nearest first."""
    return NearbyResult(items=await service.nearby(session, lat, lon, radius_m, category, limit))


@router.get("/points/{point_id}")
async def point_detail(point_id: uuid.UUID, session: LocationsSession) -> DropOffPoint:
    return await service.detail(session, point_id)


# Drop-off points are public data: no user rows, nothing to purge.
domain = DomainSpec(name="locations", router=router)
