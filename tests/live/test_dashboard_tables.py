"""Every dashboard table as CSV, the "simulated data" label, and one date format per locale in
Hong Kong time (issue #9, dashboard); on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.live.simulator.provision import PROVIDER
from smartcity.web.i18n import EN, SC, TC, Formatter

READ_AT = "2026-12-02T04:49:00Z"  # 12:49 on 2 December in Hong Kong
PARK = "urn:ngsi-ld:OffStreetParking:p1"
SIM_PARK = "urn:ngsi-ld:OffStreetParking:sim-1"


def carpark(entity_id: str, spaces: int, name: dict[str, str], simulated: bool) -> dict:
    entity = {
        "id": entity_id, "type": "OffStreetParking",
        "availableSpotNumber": {"type": "Property", "value": spaces, "observedAt": READ_AT},
        "name": {"type": "LanguageProperty", "languageMap": name},
        "location": {"type": "Point", "coordinates": [114.16, 22.28]},
    }  # fmt: skip
    if simulated:
        entity["dataProvider"] = PROVIDER
    return entity


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    for entity in (
        carpark(PARK, 120, {"en": "City Hall", "zh-Hant": "大會堂"}, False),
        {"id": "urn:ngsi-ld:AirQualityObserved:tai-po", "type": "AirQualityObserved",
         "aqhi": {"type": "Property", "value": 8, "observedAt": READ_AT}, "name": "Tai Po",
         "location": {"type": "Point", "coordinates": [114.16, 22.45]}},
    ):  # fmt: skip
        r = client.post("/ngsi-ld/v1/entities", json=entity, headers=city_link())
        assert r.status_code == 201, r.text
    return client


def rows(response: object) -> list[list[str]]:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("text/csv")  # type: ignore[attr-defined]
    assert "attachment" in response.headers["content-disposition"]  # type: ignore[attr-defined]
    text = response.content.decode("utf-8")  # type: ignore[attr-defined]
    assert text.startswith("\ufeff")  # spreadsheets open Chinese names correctly
    return list(csv.reader(io.StringIO(text[1:])))


def test_every_table_on_the_page_has_a_working_csv_download(seeded: TestClient) -> None:
    html = seeded.get("/tc/dashboard").text
    tables = html.count("<table")
    links = [unescape(h) for h in re.findall(r'<a class="csv" href="([^"]+)"', html)]
    # One per table (thresholds, six layers, six trends x two windows) and one for the alerts.
    assert tables == 1 + 6 + 12 and len(links) == tables + 1
    for link in links:
        assert len(rows(seeded.get(link))) >= 1
    layer = rows(seeded.get("/api/v1/dashboard/layers.csv?kind=carparks&lang=tc"))
    assert layer[0] == ["id", "name", "value", "unit", "level", "time_hkt", "observed_at_utc",
                        "simulated", "likely_full_within_min"]  # fmt: skip
    assert layer[1][:3] == [PARK, "大會堂", "120"]
    # No vacancy history to forecast from: not known to be likely full.
    assert layer[1][5:] == ["2026-12-02T12:49:00+08:00", READ_AT, "no", ""]
    alerts = rows(seeded.get("/api/v1/dashboard/alerts.csv?lang=en"))
    assert alerts[1][:5] == ["Air quality stations", "urn:ngsi-ld:AirQualityObserved:tai-po",
                             "Tai Po", "aqhi", "8"]  # fmt: skip
    # The entity page's two tables too.
    page = seeded.get(f"/en/dashboard/entities/{PARK}").text
    entity_links = [unescape(h) for h in re.findall(r'<a class="csv" href="([^"]+)"', page)]
    assert len(entity_links) == page.count("<table") == 2
    attributes = rows(seeded.get(entity_links[0]))
    assert ["availableSpotNumber", "120", "", "2026-12-02T12:49:00+08:00", READ_AT] in attributes
    history = rows(seeded.get(entity_links[1]))
    assert history[0] == ["time_hkt", "observed_at_utc", "value", "unit"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/dashboard/layers.csv?kind=ships",
        "/api/v1/dashboard/series.csv?kind=air&window=1y",
        "/api/v1/dashboard/entity.csv?id=urn:ngsi-ld:OffStreetParking:p1&table=everything",
    ],
)
def test_bad_csv_requests_say_what_was_wrong(seeded: TestClient, url: str) -> None:
    r = seeded.get(url)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert "must be" in r.json()["detail"]


def test_simulated_sources_are_labelled(seeded: TestClient) -> None:
    assert 'id="simulated-note" hidden' in seeded.get("/en/dashboard").text
    r = seeded.post(
        "/ngsi-ld/v1/entities",
        json=carpark(SIM_PARK, 30, {"en": "Sim Park"}, True),
        headers=city_link(),
    )
    assert r.status_code == 201
    html = seeded.get("/en/dashboard").text
    assert 'id="simulated-note">' in html and "not from real sensors" in html
    tiles = {t["kind"]: t for t in seeded.get("/api/v1/dashboard/tiles").json()["tiles"]}
    assert tiles["carparks"]["simulated"] == 1 and tiles["air"]["simulated"] == 0
    assert "Simulated data" in seeded.get(f"/en/dashboard/entities/{SIM_PARK}").text
    assert "Simulated data" not in seeded.get(f"/en/dashboard/entities/{PARK}").text


@pytest.mark.parametrize(
    ("prefix", "shown"),
    [
        ("en", "2 Dec 2026, 12:49 pm"),
        ("tc", "2026年12月2日 下午12:49"),
        ("sc", "2026年12月2日 12:49"),
    ],
)
def test_one_date_format_per_locale_in_hong_kong_time(
    seeded: TestClient, prefix: str, shown: str
) -> None:
    html = seeded.get(f"/{prefix}/dashboard").text
    times = re.findall(rf'<time datetime="{READ_AT}">([^<]+)</time>', html)
    # The tile, the car park's and the station's rows and the alert: all written alike.
    assert len(times) >= 4 and set(times) == {shown}


def test_dates_are_hong_kong_days() -> None:
    """A measure updated at 01:00 on 1 December in Hong Kong was not updated on 30 November."""
    late = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)
    assert Formatter(EN).date(late) == "1 December 2026"
    assert Formatter(TC).date(late.replace(tzinfo=None)) == "2026年12月1日"  # stored naive UTC
    assert Formatter(SC).moment(late) == "2026年12月1日 01:00"
