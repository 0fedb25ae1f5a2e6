"""The dashboard's pages in three languages, server-rendered (readable without JavaScript):
tiles, alerts, layer tables, trend tables, entity pages, links to the data, and the assets."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.web.catalogues import FOLDERS, problems

ENTITIES = [
    {"id": "urn:ngsi-ld:AirQualityObserved:tai-po", "type": "AirQualityObserved",
     "aqhi": {"type": "Property", "value": 8}, "name": "Tai Po",
     "location": {"type": "Point", "coordinates": [114.16, 22.45]}},
    {"id": "urn:ngsi-ld:OffStreetParking:p1", "type": "OffStreetParking",
     "availableSpotNumber": 120,
     "name": {"type": "LanguageProperty",
              "languageMap": {"en": "City Hall", "zh-Hant": "大會堂", "zh-Hans": "大会堂"}},
     "location": {"type": "Point", "coordinates": [114.16, 22.28]}},
]  # fmt: skip

EXPECTED = {
    "en": ("Real-time city dashboard", "Very high", "City Hall", 'lang="en"'),
    "tc": ("實時城市數據儀表板", "甚高", "大會堂", 'lang="zh-Hant-HK"'),
    "sc": ("实时城市数据仪表板", "甚高", "大会堂", 'lang="zh-Hans"'),
}


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    for entity in ENTITIES:
        assert (
            client.post("/ngsi-ld/v1/entities", json=entity, headers=city_link()).status_code == 201
        )
    return client


@pytest.mark.parametrize("prefix", ["en", "tc", "sc"])
def test_dashboard_page_in_each_language(seeded: TestClient, prefix: str) -> None:
    r = seeded.get(f"/{prefix}/dashboard")
    assert r.status_code == 200
    html = r.text
    title, band, car_park, lang_attr = EXPECTED[prefix]
    assert f"<h1>{title}</h1>" in html and lang_attr in html
    assert band in html and car_park in html
    # Every tile links to its NGSI-LD query; alerts and table rows link to entity pages.
    assert html.count('class="tile"') == 6
    assert len(re.findall(r'href="/ngsi-ld/v1/entities\?type=', html)) >= 6
    assert f'href="/{prefix}/dashboard/entities/urn:ngsi-ld:AirQualityObserved:tai-po"' in html
    assert 'aria-live="polite"' in html
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in html  # no inline script (data blocks are application/json)


def test_entity_page_without_javascript(seeded: TestClient) -> None:
    r = seeded.get("/tc/dashboard/entities/urn:ngsi-ld:OffStreetParking:p1")
    assert r.status_code == 200
    assert "<h1>大會堂</h1>" in r.text and "availableSpotNumber" in r.text
    assert 'href="/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:p1"' in r.text
    missing = seeded.get("/en/dashboard/entities/urn:ngsi-ld:OffStreetParking:none")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_empty_hub_renders(client: TestClient) -> None:
    r = client.get("/sc/dashboard")
    assert r.status_code == 200 and "暂时未有数据。" in r.text


def test_assets_and_base_map_are_served_locally(client: TestClient) -> None:
    assets = [
        "/dashboard-assets/dashboard.js",
        "/dashboard-assets/dashboard.css",
        "/static/vendor/leaflet/dist/leaflet.js",
        "/static/vendor/leaflet/LICENSE",
        "/static/vendor/uplot/dist/uPlot.iife.min.js",
        "/static/vendor/uplot/LICENSE",
    ]
    for url in assets:
        assert client.get(url).status_code == 200, url
    districts = client.get("/api/v1/dashboard/geo/districts.geojson").json()
    assert len(districts["features"]) == 18
    names = {f["properties"]["name_en"] for f in districts["features"]}
    assert {"Wan Chai", "Yuen Long", "Islands"} <= names
    coast = client.get("/api/v1/dashboard/geo/coastline.geojson").json()
    assert coast["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert client.get("/api/v1/dashboard/geo/world.geojson").status_code == 404


def test_every_dashboard_string_is_translated() -> None:
    folder = next(f for f in FOLDERS if f.name == "dashboard")
    assert problems(folder) == []
