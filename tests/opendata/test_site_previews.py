"""A resource page's map and chart, as rendered on the server (both backends): places from a
DataStore table's latitude and longitude, an uploaded GeoJSON file and a live dataset's
current state; a time series from a DataStore table and a live dataset's history. Each figure
comes with its table and a text summary, is bounded (and says so), speaks three languages,
and is as invisible as its dataset when that is private."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, trilingual
from tests.opendata.test_city_datasets import City, car_park, resource

from smartcity.opendata.citydata.exports import HKT
from smartcity.opendata.site import figures


def page(client: TestClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text
    return response.text


def block(html: str, ident: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>', html, re.S)
    assert found, f"no {ident} block"
    return json.loads(found.group(1))


def row_heads(html: str, table: str) -> list[str]:
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, f"no {table} table"
    return re.findall(r'<th scope="row">([^<]*)</th>', body.group(1))


def datastore(act: Act, dataset: str, name: str, **table: Any) -> str:
    created = act("datastore_create", resource={"package_id": dataset, "name": name}, **table)
    return str(created["result"]["resource_id"])


@pytest.fixture
def org(act: Act) -> Act:
    names = trilingual("Leisure and Cultural Services", "康樂及文化事務署", "康乐及文化事务署")
    act("organization_create", name="lcsd", title_translated=names)
    act("package_create", name="pools", owner_org="lcsd", title="Swimming pools")
    return act


def test_a_table_with_latitude_and_longitude_is_a_map_with_a_table_of_places(
    od_client: TestClient, org: Act, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = datastore(org, "pools", "Pools", fields=[
        {"id": "名稱", "type": "text"}, {"id": "緯度", "type": "text"},
        {"id": "經度", "type": "float"}, {"id": "lanes", "type": "int"}],
        records=[{"名稱": "維多利亞公園游泳池", "緯度": "22.2819", "經度": 114.1880, "lanes": 8},
                 {"名稱": "九龍公園游泳池", "緯度": "22.3005", "經度": 114.1697, "lanes": 6},
                 {"名稱": "Nowhere", "緯度": "far north", "經度": 114.0, "lanes": 1}])  # fmt: skip
    html = page(od_client, f"/tc/dataset/pools/resource/{rid}")
    assert '<h2 id="map-heading">地圖</h2>' in html
    # Without JavaScript: the table of places, by name, with their coordinates.
    assert row_heads(html, "places") == ["維多利亞公園游泳池", "九龍公園游泳池"]
    assert "22.28190" in html and "114.18800" in html
    assert "1 個沒有可用位置的項目未有顯示。" in html  # the row without a position is said
    # The script draws the same places from a data block (no request for them).
    places = block(html, "map-data")["places"]
    assert [(p["lat"], p["lon"]) for p in places] == [(22.2819, 114.188), (22.3005, 114.1697)]
    assert 'src="/static/vendor/leaflet/dist/leaflet.js' in html
    assert "<h2" in html and 'id="chart-heading"' not in html  # no time: no chart
    # Bounded: beyond the cap only the first are drawn, and the page says so.
    monkeypatch.setattr(figures, "MAX_FEATURES", 1)
    capped = page(od_client, f"/en/dataset/pools/resource/{rid}")
    assert row_heads(capped, "places") == ["維多利亞公園游泳池"]
    assert "Only the first 1 are shown" in capped


def test_a_time_series_is_a_chart_with_a_summary_and_a_table(
    od_client: TestClient, org: Act, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = datastore(org, "pools", "Attendance", fields=[
        {"id": "date", "type": "date"}, {"id": "swimmers", "type": "int"},
        {"id": "water_temperature", "type": "float", "info": {"label": "Water (°C)"}}],
        records=[{"date": f"2026-07-{d:02d}", "swimmers": 100 + d * (-1) ** d,
                  "water_temperature": 25 + d / 10} for d in range(9, 0, -1)])  # fmt: skip
    html = page(od_client, f"/en/dataset/pools/resource/{rid}")
    assert '<h2 id="chart-heading">Chart</h2>' in html and "9 rows, in time order." in html
    # The table is in time order, whatever the order of the rows.
    assert row_heads(html, "series")[:2] == ["2026-07-01", "2026-07-02"]
    # A summary in words for those who do not see the chart (lowest 99 on the 1st,
    # highest 108 on the 8th).
    assert (
        "From 2026-07-01 to 2026-07-09. Lowest 91 (2026-07-09), highest 108 (2026-07-08), "
        "last 91." in html
    )
    assert "<figcaption>Water (°C)</figcaption>" in html  # the field's label names its series
    data = block(html, "chart-data")
    assert data["timezone"] == "UTC" and len(data["times"]) == 9  # shown as written
    assert data["series"][0]["values"][:2] == [99, 102]
    assert 'src="/static/vendor/uplot/dist/uPlot.iife.min.js' in html
    assert 'id="map-heading"' not in html
    zh = page(od_client, f"/sc/dataset/pools/resource/{rid}")
    assert '<h2 id="chart-heading">图表</h2>' in zh and "表格：图表中的数值" in zh
    # Bounded: the latest rows only, and the page says so.
    monkeypatch.setattr(figures, "MAX_POINTS", 3)
    latest = page(od_client, f"/en/dataset/pools/resource/{rid}")
    assert row_heads(latest, "series") == ["2026-07-07", "2026-07-08", "2026-07-09"]
    assert "The latest 3 rows, in time order." in latest


def test_an_uploaded_geojson_file_is_a_map(od_client: TestClient, org: Act) -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "Pier"},
             "geometry": {"type": "Point", "coordinates": [114.17, 22.29]}},
            {"type": "Feature", "properties": {"name": "Promenade"},
             "geometry": {"type": "LineString", "coordinates": [[114.16, 22.28], [114.18, 22.30]]}},
            {"type": "Feature", "properties": {"name": "Lost"}, "geometry": None},
        ],
    }  # fmt: skip
    made = od_client.post(
        "/api/3/action/resource_create",
        data={"package_id": "pools", "name": "Waterfront", "format": "GeoJSON"},
        files={"upload": ("waterfront.geojson", orjson.dumps(collection), "application/geo+json")},
    )
    assert made.status_code == 200, made.text
    rid = made.json()["result"]["id"]
    html = page(od_client, f"/en/dataset/pools/resource/{rid}")
    assert row_heads(html, "places") == ["Pier", "Promenade"]
    assert "1 without a usable position is left out." in html
    places = block(html, "map-data")["places"]
    assert places[1]["geometry"]["type"] == "LineString"  # the line is drawn, not only a dot
    assert (places[1]["lat"], places[1]["lon"]) == pytest.approx((22.29, 114.17))
    # A file that is not GeoJSON says so instead of failing the page.
    bad = od_client.post(
        "/api/3/action/resource_create",
        data={"package_id": "pools", "name": "Broken", "format": "GeoJSON"},
        files={"upload": ("broken.geojson", b"{not json", "application/geo+json")},
    )
    broken = f"/dataset/pools/resource/{bad.json()['result']['id']}"
    assert "The map could not be shown: the file is not GeoJSON" in page(od_client, "/en" + broken)
    assert "無法顯示地圖：檔案不是 GeoJSON 格式" in page(od_client, "/tc" + broken)


def test_a_private_datasets_previews_are_nobodys_business(od_client: TestClient, org: Act) -> None:
    org("package_create", name="plans", owner_org="lcsd", private=True)
    rid = datastore(org, "plans", "Sites", fields=[
        {"id": "site", "type": "text"}, {"id": "lat", "type": "float"},
        {"id": "lon", "type": "float"}],
        records=[{"site": "Secret site", "lat": 22.3, "lon": 114.2}])  # fmt: skip
    for prefix in ("en", "tc"):
        html = page(od_client, f"/{prefix}/dataset/plans/resource/{rid}", 404)
        assert "Secret site" not in html and "map-data" not in html


def test_a_live_dataset_maps_its_entities_and_charts_its_history(
    od_client: TestClient, act: Act
) -> None:
    act("organization_create", name="td", title_translated=trilingual("TD", "運輸署", "运输署"))
    city = City(od_client, act)
    city.create(car_park(1, 10, name="Star Ferry"))
    city.create(car_park(2, 20, name="City Hall"))
    city.set_spots(1, 4)
    dataset = act("live_dataset_publish", type="OffStreetParking", owner_org="td")["result"]
    current = resource(dataset, "Current state (GeoJSON)")["id"]
    listing = page(od_client, f"/tc/dataset/{dataset['name']}")
    assert f'/resource/{current}#map">在地圖上查看' in listing  # the dataset page points to it
    html = page(od_client, f"/en/dataset/{dataset['name']}/resource/{current}")
    assert sorted(row_heads(html, "places")) == ["City Hall", "Star Ferry"]
    history = resource(dataset, "History, one CSV file per day (index)")
    html = page(od_client, f"/tc/dataset/{dataset['name']}/resource/{history['id']}")
    assert '<h2 id="chart-heading">圖表</h2>' in html
    assert "<figcaption>availableSpotNumber</figcaption>" in html
    data = block(html, "chart-data")
    assert data["timezone"] == "Asia/Hong_Kong"
    # Each hour's mean over the car parks is the mean of that hour's rows of the day's file.
    day = city.get(history["url"]).json()["days"][0]["url"]
    hours: dict[float, list[float]] = {}
    for row in city.rows(day):
        if row["attribute"] == "availableSpotNumber":
            moment = dt.datetime.fromisoformat(row["modifiedAt"].replace("Z", "+00:00"))
            hour = moment.astimezone(HKT).replace(minute=0, second=0, microsecond=0)
            hours.setdefault(hour.timestamp(), []).append(float(row["value"]))
    assert sorted(hours) == data["times"]
    assert data["series"][0]["values"] == [pytest.approx(sum(v) / len(v), abs=1e-3) for _, v in
                                           sorted(hours.items())]  # fmt: skip
    assert sum(len(v) for v in hours.values()) == 3  # 10 and 20, then 4


def test_names_cannot_break_out_of_the_data_block() -> None:
    name = "</script><script>alert(1)</script><!--"
    shown = figures.MapPreview(places=[figures.Place(name, 22.3, 114.2)]).data()
    assert "<" not in shown
    assert json.loads(shown)["places"][0]["name"] == name
