"""Nearby search, point detail and the CSV import."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import uuid
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from growbin.core.db import get_databases
from growbin.core.errors import NotFound
from growbin.locations import repository
from growbin.locations.schemas import (
    DropOffCategory,
    DropOffPoint,
    ImportReport,
    NearbyPoint,
    RejectedRow,
)

SAMPLE_DATASET = Path(__file__).parent / "data" / "sample-drop-off-points.csv"
CSV_COLUMNS = ("name", "address", "lat", "lon", "categories", "opening_hours")
# Category names as the Korean public data sets spell them.
CATEGORY_ALIASES = {
    "폐건전지": DropOffCategory.BATTERY,
    "건전지": DropOffCategory.BATTERY,
    "폐형광등": DropOffCategory.LAMP,
    "형광등": DropOffCategory.LAMP,
    "폐의약품": DropOffCategory.MEDICINE,
    "의약품": DropOffCategory.MEDICINE,
    "의류수거함": DropOffCategory.CLOTHING,
    "헌옷": DropOffCategory.CLOTHING,
    "재활용정거장": DropOffCategory.RECYCLING_STATION,
    "재활용 정거장": DropOffCategory.RECYCLING_STATION,
    "제로웨이스트샵": DropOffCategory.ZERO_WASTE_SHOP,
    "제로웨이스트 샵": DropOffCategory.ZERO_WASTE_SHOP,
    "소형가전": DropOffCategory.SMALL_ELECTRONICS,
    "폐식용유": DropOffCategory.COOKING_OIL,
}
MAX_NAME = 200
MAX_ADDRESS = 300
MAX_OPENING_HOURS = 200
MAX_SOURCE = 100


async def nearby(
    session: AsyncSession,
    lat: float,
    lon: float,
    radius_m: int,
    category: DropOffCategory | None,
    limit: int,
) -> list[NearbyPoint]:
    rows = await repository.nearby(
        session, lat, lon, radius_m, category.value if category else None, limit
    )
    return [NearbyPoint.model_validate(row) for row in rows]


async def detail(session: AsyncSession, point_id: uuid.UUID) -> DropOffPoint:
    row = await repository.by_id(session, point_id)
    if row is None:
        raise NotFound("No drop-off point with this id.")
    return DropOffPoint.model_validate(row)


def _parse_category(raw: str) -> DropOffCategory | None:
    value = raw.strip()
    if value in CATEGORY_ALIASES:
        return CATEGORY_ALIASES[value]
    try:
        return DropOffCategory(value.lower())
    except ValueError:
        return None


def _parse_coordinate(raw: str, name: str, bound: float, reasons: list[str]) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        reasons.append(f"{name} is not a number: {raw[:40]!r}")
        return None
    if not math.isfinite(value) or not -bound <= value <= bound:
        reasons.append(f"{name} out of range [-{bound:g}, {bound:g}]: {raw[:40]}")
        return None
    return value


def validate_row(row: dict[str, str | None]) -> tuple[dict[str, object] | None, list[str]]:
    """Return the point to store, or None and every reason the row is refused."""
    reasons: list[str] = []
    extra = row.get(None)  # csv.DictReader puts surplus cells under the None key
    if extra:
        reasons.append(f"{len(extra)} more cells than the {len(CSV_COLUMNS)} columns")
    values = {column: (row.get(column) or "").strip() for column in CSV_COLUMNS}
    for column, limit in (("name", MAX_NAME), ("address", MAX_ADDRESS)):
        if not values[column]:
            reasons.append(f"{column} is empty")
        elif len(values[column]) > limit:
            reasons.append(f"{column} longer than {limit} characters")
    if len(values["opening_hours"]) > MAX_OPENING_HOURS:
        reasons.append(f"opening_hours longer than {MAX_OPENING_HOURS} characters")
    lat = _parse_coordinate(values["lat"], "lat", 90, reasons)
    lon = _parse_coordinate(values["lon"], "lon", 180, reasons)
    categories: list[str] = []
    raw_categories = [c for c in values["categories"].replace("|", ";").split(";") if c.strip()]
    if not raw_categories:
        reasons.append("categories is empty")
    for raw in raw_categories:
        category = _parse_category(raw)
        if category is None:
            reasons.append(f"unknown category {raw.strip()[:40]!r}")
        elif category.value not in categories:
            categories.append(category.value)
    if reasons:
        return None, reasons
    return {
        "name": values["name"],
        "address": values["address"],
        "lat": lat,
        "lon": lon,
        "categories": categories,
        "opening_hours": values["opening_hours"] or None,
    }, []


def _data_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    # Lines starting with '#' are comments (the sample file labels itself with them).
    for number, line in enumerate(lines, start=1):
        if not line.lstrip().startswith("#"):
            yield number, line


async def import_csv(text: str, source: str) -> ImportReport:
    """Store every valid row, report every invalid one; a bad row never aborts the others."""
    if not source or len(source) > MAX_SOURCE:
        raise ValueError(f"source must be 1..{MAX_SOURCE} characters")
    numbered = list(_data_lines(io.StringIO(text, newline="")))
    reader = csv.DictReader(line for _, line in numbered)
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(CSV_COLUMNS):
        raise ValueError(f"the header must be exactly: {','.join(CSV_COLUMNS)}")
    accepted = 0
    rejected: list[RejectedRow] = []
    async with get_databases().sessionmaker("locations")() as session:
        for row in reader:
            # line_num counts physical lines read (quoted newlines included); map back to the
            # file's own numbering, comments included.
            line = numbered[reader.line_num - 1][0]
            point, reasons = validate_row(row)
            if point is None:
                rejected.append(RejectedRow(line=line, reasons=reasons))
                continue
            await repository.upsert(session, {**point, "id": uuid.uuid4(), "source": source})
            accepted += 1
        await session.commit()
    return ImportReport(accepted=accepted, rejected=rejected)


async def import_file(path: Path, source: str | None = None) -> ImportReport:
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text") from exc
    return await import_csv(text, source or path.stem)
