from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel


class DropOffCategory(StrEnum):
    BATTERY = "battery"
    LAMP = "lamp"
    MEDICINE = "medicine"
    CLOTHING = "clothing"
    RECYCLING_STATION = "recycling_station"
    ZERO_WASTE_SHOP = "zero_waste_shop"
    SMALL_ELECTRONICS = "small_electronics"
    COOKING_OIL = "cooking_oil"


class DropOffPoint(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    categories: list[DropOffCategory]
    opening_hours: str | None
    lat: float
    lon: float
    source: str


class NearbyPoint(DropOffPoint):
    distance_m: float


class NearbyResult(BaseModel):
    items: list[NearbyPoint]


class RejectedRow(BaseModel):
    line: int
    reasons: list[str]


class ImportReport(BaseModel):
    accepted: int
    rejected: list[RejectedRow]
