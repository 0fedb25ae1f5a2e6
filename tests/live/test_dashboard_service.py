"""The dashboard's figures from the hub: tiles (value, change vs 1 h / 24 h), alert thresholds,
hourly series from the history, layers, entity details; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.live.dashboard.kinds import DashboardConfig, parse_thresholds
from smartcity.live.dashboard.service import DashboardService

PARKING = "https://smartdatamodels.org/dataModel.Parking/"
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
if datetime.now(UTC) < NOW:  # stay inside the current hour
    NOW -= timedelta(minutes=29)


@pytest.fixture(autouse=True)
def dashboard_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's "now" is NOW + 1 min however long the suite takes to get here: its
    1 h / 24 h comparisons bucket by the hour, and a real clock could cross an hour boundary
    between the module's import and the test."""
    fixed = int((NOW + timedelta(minutes=1)).timestamp() * 1_000_000)
    monkeypatch.setattr("smartcity.live.dashboard.service.now_us", lambda: fixed)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def carpark(n: int, spaces: int, at: datetime, lon: float = 114.17) -> dict[str, Any]:
    # Full Smart Data Models IRIs, as the carparks connector writes them.
    return {
        "id": f"urn:ngsi-ld:OffStreetParking:HK-{n}",
        "type": PARKING + "OffStreetParking",
        PARKING + "availableSpotNumber": {
            "type": "Property", "value": spaces, "observedAt": iso(at)},
        "name": {"type": "LanguageProperty", "languageMap": {"en": f"Car park {n}",
                                                            "zh-Hant": f"停車場 {n}"}},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [lon, 22.30]}},
    }  # fmt: skip


def reading(client: TestClient, entity_id: str, attr: str, value: float, at: datetime) -> None:
    r = client.patch(
        f"/ngsi-ld/v1/entities/{entity_id}/attrs",
        json={attr: {"type": "Property", "value": value, "observedAt": iso(at)}},
    )
    assert r.status_code == 204, r.text


def service(client: TestClient) -> DashboardService:
    svc: DashboardService = client.app.state.dashboard.service  # type: ignore[attr-defined]
    return svc


def test_carpark_tile_sums_spaces_and_compares_with_1h_and_24h_ago(client: TestClient) -> None:
    for n, spaces in ((1, 100), (2, 50)):
        assert (
            client.post(
                "/ngsi-ld/v1/entities", json=carpark(n, spaces, NOW - timedelta(hours=24))
            ).status_code
            == 201
        )
    for n, spaces in ((1, 80), (2, 40)):
        reading(
            client,
            f"urn:ngsi-ld:OffStreetParking:HK-{n}",
            PARKING + "availableSpotNumber",
            spaces,
            NOW - timedelta(hours=1),
        )
    for n, spaces in ((1, 30), (2, 20)):
        reading(
            client,
            f"urn:ngsi-ld:OffStreetParking:HK-{n}",
            PARKING + "availableSpotNumber",
            spaces,
            NOW,
        )
    tiles = {t["kind"]: t for t in client.get("/api/v1/dashboard/tiles").json()["tiles"]}
    park = tiles["carparks"]
    assert park["value"] == 50 and park["count"] == 2
    assert park["change1h"] == 50 - 120 and park["change24h"] == 50 - 150
    assert park["observedAt"].startswith(iso(NOW)[:16])
    assert "type=https" in park["dataUrl"] and "OffStreetParking" in park["dataUrl"]
    # The data link is a working NGSI-LD query that finds the same entities.
    found = client.get(park["dataUrl"]).json()
    assert {e["id"] for e in found} == {f"urn:ngsi-ld:OffStreetParking:HK-{n}" for n in (1, 2)}
    series = client.get("/api/v1/dashboard/series?kind=carparks&window=24h").json()
    values = [v for _, v in series["points"]]
    assert values == [150, 120, 50]
    week = client.get("/api/v1/dashboard/series?kind=carparks&window=7d").json()
    assert [v for _, v in week["points"]] == [150, 120, 50]


def test_alert_thresholds_defaults_and_boundaries(client: TestClient) -> None:
    entities = [
        {"id": "urn:ngsi-ld:AirQualityObserved:a", "type": "AirQualityObserved", "aqhi": 7},
        {"id": "urn:ngsi-ld:AirQualityObserved:b", "type": "AirQualityObserved", "aqhi": 6},
        {"id": "urn:ngsi-ld:TrafficFlowObserved:s", "type": "TrafficFlowObserved",
         "averageVehicleSpeed": 19.5},
        {"id": "urn:ngsi-ld:TrafficFlowObserved:f", "type": "TrafficFlowObserved",
         "averageVehicleSpeed": 20},
        {"id": "urn:ngsi-ld:WasteContainer:x", "type": "WasteContainer", "fillingLevel": 0.95},
        {"id": "urn:ngsi-ld:WasteContainer:y", "type": "WasteContainer", "fillingLevel": 0.9},
        {"id": "urn:ngsi-ld:WasteContainer:z", "type": "WasteContainer", "fillingLevel": 0.85},
        {"id": "urn:ngsi-ld:OffStreetParking:full", "type": "OffStreetParking",
         "availableSpotNumber": 0},
        {"id": "urn:ngsi-ld:OffStreetParking:ok", "type": "OffStreetParking",
         "availableSpotNumber": 3},
    ]  # fmt: skip
    for e in entities:
        assert client.post("/ngsi-ld/v1/entities", json=e, headers=city_link()).status_code == 201
    body = client.get("/api/v1/dashboard/alerts").json()
    raised = {(a["rule"], a["id"].rsplit(":", 1)[-1]) for a in body["alerts"]}
    assert raised == {("aqhi", "a"), ("speed", "s"), ("bin", "x"), ("carpark", "full")}
    assert body["thresholds"]["aqhi"] == 7
    tiles = {t["kind"]: t for t in client.get("/api/v1/dashboard/tiles").json()["tiles"]}
    assert tiles["air"]["value"] == 7 and tiles["air"]["bandLabel"] == "High"
    assert tiles["bins"]["value"] == 3  # 95 %, 90 %, 85 % are all over 80 %
    assert tiles["traffic"]["value"] == pytest.approx(19.75)
    # Thresholds are configurable: a stricter AQHI level drops the alert.
    svc = service(client)
    strict = DashboardService(svc.entities, DashboardConfig(thresholds=parse_thresholds("aqhi=8")))
    assert "aqhi" not in {a.rule for a in strict.alerts()}


def test_thresholds_parse_with_clear_errors() -> None:
    assert parse_thresholds("aqhi=8, speed=15")["speed"] == 15
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        parse_thresholds("pm25=3")
    with pytest.raises(ValueError, match="not a number"):
        parse_thresholds("aqhi=high")


def test_writes_after_first_load_update_the_view_and_deletes_remove(client: TestClient) -> None:
    assert client.get("/api/v1/dashboard/tiles").status_code == 200  # loads the (empty) view
    client.post("/ngsi-ld/v1/entities", json=carpark(7, 12, NOW), headers=city_link())
    layer = client.get("/api/v1/dashboard/layers?kind=carparks&lang=tc").json()
    [feature] = layer["features"]
    assert feature["properties"]["name"] == "停車場 7"
    assert feature["properties"]["band"] == "車位不多"
    assert (
        client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:HK-7").status_code == 204
    )
    assert client.get("/api/v1/dashboard/layers?kind=carparks").json()["features"] == []


def test_crowd_tile_counts_only_zones_near_kai_tak(client: TestClient) -> None:
    zones = [("near", [114.1990, 22.3230], 400, 0.95), ("far", [114.10, 22.40], 900, 0.2)]
    for name, point, people, occupancy in zones:
        client.post(
            "/ngsi-ld/v1/entities",
            json={
                "id": f"urn:ngsi-ld:CrowdFlowObserved:{name}",
                "type": "CrowdFlowObserved",
                "peopleCount": people,
                "occupancy": occupancy,
                "location": {"type": "Point", "coordinates": point},
            },
            headers=city_link(),
        )
    tiles = {t["kind"]: t for t in client.get("/api/v1/dashboard/tiles").json()["tiles"]}
    assert tiles["crowd"]["value"] == 400
    alerts = client.get("/api/v1/dashboard/alerts").json()["alerts"]
    assert [(a["rule"], a["id"]) for a in alerts] == [
        ("crowd", "urn:ngsi-ld:CrowdFlowObserved:near")
    ]


def test_entity_details_and_history(client: TestClient) -> None:
    client.post(
        "/ngsi-ld/v1/entities", json=carpark(3, 10, NOW - timedelta(hours=2)), headers=city_link()
    )
    reading(client, "urn:ngsi-ld:OffStreetParking:HK-3", PARKING + "availableSpotNumber", 4, NOW)
    body = client.get("/api/v1/dashboard/entities/urn:ngsi-ld:OffStreetParking:HK-3").json()
    assert body["kind"] == "carparks" and body["name"] == "Car park 3"
    assert [v for _, v in body["history"]] == [10, 4]
    assert {"name": "availableSpotNumber", "value": 4}.items() <= next(
        a for a in body["attributes"] if a["name"] == "availableSpotNumber"
    ).items()
    missing = client.get("/api/v1/dashboard/entities/urn:ngsi-ld:OffStreetParking:nope")
    assert missing.status_code == 404 and missing.json()["status"] == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/dashboard/series?kind=pm25",
        "/api/v1/dashboard/series?kind=air&window=1y",
        "/api/v1/dashboard/layers?kind=x",
        "/api/v1/dashboard/tiles?lang=fr",
    ],
)
def test_bad_parameters_are_problem_details(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 400
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail"} and body["detail"]


def test_poll_takes_in_other_processes_writes_once_page_by_page(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes made through another app on the same database (another worker process) reach
    this dashboard's view by polling the hub, in pages, each applied once."""
    monkeypatch.setattr("smartcity.live.dashboard.state.POLL_LIMIT", 2)
    state = service(client).state
    state.poll_s = 0  # polled by hand below
    assert client.get("/api/v1/dashboard/tiles").status_code == 200  # loads the view
    with TestClient(create_app(settings)) as other:
        # One batch: one transaction, so all five carry the same modification time.
        created = other.post(
            "/ngsi-ld/v1/entityOperations/create",
            json=[carpark(n, 10 + n, NOW) for n in range(5)],
        )
        assert created.status_code == 201, created.text
        touched: list[tuple[str, str]] = []
        for _ in range(3):  # pages of 2, 2 and 1
            touched += state.poll()
        assert sorted(touched) == [
            ("carparks", f"urn:ngsi-ld:OffStreetParking:HK-{n}") for n in range(5)
        ]
        assert state.poll() == []  # nothing new
        reading(other, "urn:ngsi-ld:OffStreetParking:HK-3", PARKING + "availableSpotNumber", 1, NOW)
        assert state.poll() == [("carparks", "urn:ngsi-ld:OffStreetParking:HK-3")]
    # Writes made through this app are applied by its commit listener, not again by a poll.
    reading(client, "urn:ngsi-ld:OffStreetParking:HK-4", PARKING + "availableSpotNumber", 2, NOW)
    assert state.poll() == []
    values = {i.id[-4:]: i.value for i in state.items("carparks")}
    assert values == {"HK-0": 10, "HK-1": 11, "HK-2": 12, "HK-3": 1, "HK-4": 2}


def test_a_failing_poll_never_breaks_a_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = service(client).state
    assert client.get("/api/v1/dashboard/tiles").status_code == 200  # loads the view

    def unavailable(*_a: Any, **_k: Any) -> Any:
        raise OSError("database unavailable")

    monkeypatch.setattr(state.entities, "changed_since", unavailable)
    state.polled_at = 0.0
    assert client.get("/api/v1/dashboard/tiles").status_code == 200
    assert state.polled_at > 0  # retried at the next interval, not on every request
