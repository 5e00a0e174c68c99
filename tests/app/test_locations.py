"""locations: nearby search in PostGIS, detail, CSV import with per-row rejection reasons."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from growbin.core.db import get_databases
from growbin.locations.service import SAMPLE_DATASET, import_csv, import_file
from sqlalchemy import text
from support import assert_error

NEARBY = "/api/v1/locations/nearby"
HEADER = "name,address,lat,lon,categories,opening_hours\n"
# Seoul City Hall and points at known distances north of it (1e-3 degrees of latitude = ~111 m).
CITY_HALL = (37.5663, 126.9779)


async def _import(rows: str):
    return await import_csv(HEADER + rows, source="test")


async def _seed_line():
    lat, lon = CITY_HALL
    return await _import(
        f"far,addr 3,{lat + 0.009},{lon},battery,\n"
        f"near,addr 1,{lat + 0.001},{lon},battery;lamp,09-18\n"
        f"middle,addr 2,{lat + 0.004},{lon},clothing,\n"
        f"outside,addr 4,{lat + 0.05},{lon},battery,\n"
    )


async def test_nearby_orders_by_distance_within_radius(client):
    report = await _seed_line()
    assert (report.accepted, report.rejected) == (4, [])
    lat, lon = CITY_HALL
    response = await client.get(NEARBY, params={"lat": lat, "lon": lon, "radius_m": 2000})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["name"] for i in items] == ["near", "middle", "far"]
    assert 105 < items[0]["distance_m"] < 118
    assert items[0]["categories"] == ["battery", "lamp"]
    assert items[0]["lat"] == pytest.approx(lat + 0.001)
    assert items[0]["lon"] == pytest.approx(lon)


async def test_nearby_filters_by_category_and_limit(client):
    await _seed_line()
    lat, lon = CITY_HALL
    params = {"lat": lat, "lon": lon, "radius_m": 20000, "category": "battery"}
    names = [i["name"] for i in (await client.get(NEARBY, params=params)).json()["items"]]
    assert names == ["near", "far", "outside"]
    limited = await client.get(NEARBY, params={**params, "limit": 1})
    assert [i["name"] for i in limited.json()["items"]] == ["near"]
    lamps = await client.get(NEARBY, params={**params, "category": "lamp"})
    assert [i["name"] for i in lamps.json()["items"]] == ["near"]


async def test_nearby_uses_the_gist_index():
    await import_file(SAMPLE_DATASET, source="sample")
    async with get_databases().engine("locations").connect() as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await connection.execute(
                text(
                    "EXPLAIN SELECT id FROM drop_off_points WHERE ST_DWithin(location, "
                    "ST_SetSRID(ST_MakePoint(126.9, 37.56), 4326)::geography, 1000)"
                )
            )
        )
    assert "ix_drop_off_points_location" in plan


async def test_point_detail(client):
    await _seed_line()
    lat, lon = CITY_HALL
    [near] = (await client.get(NEARBY, params={"lat": lat, "lon": lon, "radius_m": 200})).json()[
        "items"
    ]
    detail = await client.get(f"/api/v1/locations/points/{near['id']}")
    assert detail.status_code == 200
    assert detail.json()["opening_hours"] == "09-18"
    assert "distance_m" not in detail.json()
    assert_error(await client.get(f"/api/v1/locations/points/{uuid.uuid4()}"), 404, "not_found")
    assert_error(await client.get("/api/v1/locations/points/not-a-uuid"), 422)


@pytest.mark.parametrize(
    "params",
    [
        {"lat": 91, "lon": 126.9},
        {"lat": -90.0001, "lon": 126.9},
        {"lat": 37.5, "lon": 180.5},
        {"lat": "nan", "lon": 126.9},
        {"lat": 37.5, "lon": "inf"},
        {"lat": "north", "lon": 126.9},
        {"lon": 126.9},
        {"lat": 37.5, "lon": 126.9, "radius_m": 0},
        {"lat": 37.5, "lon": 126.9, "radius_m": 20001},
        {"lat": 37.5, "lon": 126.9, "radius_m": 1.5},
        {"lat": 37.5, "lon": 126.9, "category": "uranium"},
        {"lat": 37.5, "lon": 126.9, "limit": 101},
        {"lat": 37.5, "lon": 126.9, "category": "x" * 5000},
    ],
)
async def test_bad_nearby_queries_are_422(client, params):
    assert_error(await client.get(NEARBY, params=params), 422, "invalid_request")


async def test_import_rejects_bad_rows_with_reasons_and_keeps_good_ones():
    report = await _import(
        "ok,addr,37.5,126.9,폐건전지;폐형광등,\n"
        ",addr,37.5,126.9,battery,\n"
        "bad-lat,addr,95,126.9,battery,\n"
        "bad-lon,addr,37.5,east,battery,\n"
        "bad-cat,addr,37.5,126.9,battery;plutonium,\n"
        "no-cat,addr,37.5,126.9,,\n"
        f"{'n' * 201},addr,37.5,126.9,battery,\n"
        "extra,addr,37.5,126.9,battery,,surplus\n"
        '"quoted, name",addr 2,37.51,126.91,clothing,"Mon-Fri, 9-18"\n'
    )
    assert report.accepted == 2
    reasons = {r.line: r.reasons for r in report.rejected}
    assert reasons == {
        3: ["name is empty"],
        4: ["lat out of range [-90, 90]: 95"],
        5: ["lon is not a number: 'east'"],
        6: ["unknown category 'plutonium'"],
        7: ["categories is empty"],
        8: ["name longer than 200 characters"],
        9: ["1 more cells than the 6 columns"],
    }
    async with get_databases().engine("locations").connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT name, categories FROM drop_off_points ORDER BY name")
            )
        ).all()
    assert rows == [("ok", ["battery", "lamp"]), ("quoted, name", ["clothing"])]


async def test_reimport_updates_in_place():
    await _import("spot,addr,37.5,126.9,battery,\n")
    report = await _import("spot,addr,37.6,126.9,battery;clothing,24h\n")
    assert report.accepted == 1
    async with get_databases().engine("locations").connect() as connection:
        rows = (await connection.execute(text("SELECT categories FROM drop_off_points"))).all()
    assert rows == [(["battery", "clothing"],)]


async def test_import_refuses_a_wrong_header():
    with pytest.raises(ValueError, match="header must be exactly"):
        await import_csv("name,lat,lon\nx,1,2\n", source="test")


async def test_sample_dataset_is_labelled_and_imports_cleanly(client):
    assert SAMPLE_DATASET.read_text().startswith("# SAMPLE DATA")
    report = await import_file(SAMPLE_DATASET, source="sample")
    assert (report.accepted, report.rejected) == (24, [])
    items = (
        await client.get(NEARBY, params={"lat": 37.5663, "lon": 126.9019, "radius_m": 3000})
    ).json()["items"]
    assert items and all(i["name"].startswith("[샘플]") and i["source"] == "sample" for i in items)


def test_import_locations_command_reports_rejected_rows(tmp_path):
    csv_file = tmp_path / "points.csv"
    csv_file.write_text(HEADER + "ok,addr,37.5,126.9,battery,\nbad,addr,37.5,999,battery,\n")
    result = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "import-locations", str(csv_file), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "imported 1 rows, rejected 1" in result.stdout
    assert "line 3: rejected: lon out of range" in result.stderr
