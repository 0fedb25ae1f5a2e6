"""Car park analytics over HTTP from the hub's history: occupancy profiles by weekday and
hour, vacancy forecasts, "likely full on arrival" and the about-to-fill alert; on SQLite and
PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.analytics.parking.analysis import full_threshold, p_full
from smartcity.hub.contexts import city_context
from smartcity.hub.timeutil import iso_from_us

STEP_US = 300_000_000
DAY_US = 86_400_000_000
DAYS = 14
# Thursday 2026-01-08 08:47 Hong Kong time: the commuter car park is filling.
NOW = 1_767_833_220_000_000
HKT_US = 8 * 3_600_000_000
COMMUTER, SPACIOUS, NO_TOTAL = (f"urn:ngsi-ld:OffStreetParking:{n}" for n in ("A", "B", "C"))


def _occupancy(kind: str, t_us: int) -> float:
    local = (t_us + HKT_US) / 1e6
    hour = (local % 86_400) / 3600
    weekday = int(local // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    if kind == "commuter":
        if weekday >= 5:
            return 0.3 if 10 <= hour < 18 else 0.1
        # Fills from 07:00 (10%) to 09:00 (100%), stays full to 17:00, empties by 19:00.
        if hour < 7 or hour >= 19:
            return 0.1
        if hour < 9:
            return 0.1 + 0.9 * ((hour - 7) / 2) ** 1.5
        if hour < 17:
            return 1.0
        return 1.0 - 0.9 * (hour - 17) / 2
    return 0.3 + 0.25 * math.sin(math.pi * hour / 24)  # never above 55%


def _history(client: TestClient, tenant: str = "") -> None:
    ctx = city_context()
    headers = {**city_link(), **({"NGSILD-Tenant": tenant} if tenant else {})}
    hub = client.app.state.hub  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    parks = [(COMMUTER, "commuter", 200), (SPACIOUS, "spacious", 500), (NO_TOTAL, "spacious", 300)]
    end = NOW // STEP_US * STEP_US
    for entity_id, kind, spaces in parks:
        entity: dict[str, Any] = {"id": entity_id, "type": "OffStreetParking",
                                  "name": {"type": "Property", "value": kind}}  # fmt: skip
        if entity_id != NO_TOTAL:
            entity["totalSpotNumber"] = {"type": "Property", "value": spaces}
        r = client.post("/ngsi-ld/v1/entities", json=entity, headers=headers)
        assert r.status_code == 201, r.text
        instances = []
        for t in range(end - DAYS * DAY_US, end, STEP_US):
            occ = min(1.0, max(0.0, _occupancy(kind, t) + rng.normal(0, 0.01)))
            free = round(spaces * (1 - occ))
            instances.append({"type": "Property", "value": free, "observedAt": iso_from_us(t)})
        hub.temporal.upsert(
            tenant,
            {
                "id": entity_id,
                "type": [ctx.expand("OffStreetParking")],
                "attrs": {ctx.expand("availableSpotNumber"): instances},
            },
        )
    client.app.state.parking.service.forecasts.clock = lambda: NOW  # type: ignore[attr-defined]


def test_car_park_about_to_fill_raises_an_alert(client: TestClient) -> None:
    _history(client)
    body = client.get("/api/v1/analytics/parking").json()
    parks = {p["id"]: p for p in body["carParks"]}
    assert set(parks) == {COMMUTER, SPACIOUS, NO_TOTAL}
    commuter = parks[COMMUTER]
    assert commuter["capacity"] == 200 and commuter["capacitySource"] == "totalSpotNumber"
    assert commuter["fullAt"] == 4
    assert not commuter["full"]
    by_minutes = {f["minutes"]: f for f in commuter["forecasts"]}
    # 08:40-08:45 has ~43 free; from 09:00 it is full: likely full on arrival in 30 minutes.
    assert 20 < commuter["available"]["value"] < 60
    assert by_minutes[15]["available"] < commuter["available"]["value"]
    assert by_minutes[30]["likelyFullOnArrival"] and by_minutes[60]["likelyFullOnArrival"]
    assert by_minutes[60]["pFull"] > 0.8
    for other in (SPACIOUS, NO_TOTAL):
        assert not any(f["likelyFullOnArrival"] for f in parks[other]["forecasts"])
        assert all(f["pFull"] < 0.01 for f in parks[other]["forecasts"])
    # Without totalSpotNumber, the capacity is the most spaces ever seen free.
    assert parks[NO_TOTAL]["capacitySource"] == "maxSeen"
    assert 300 * 0.45 < parks[NO_TOTAL]["capacity"] <= 300

    alerts = client.get("/api/v1/analytics/parking/alerts").json()["alerts"]
    assert [a["id"] for a in alerts] == [COMMUTER]
    assert alerts[0]["kind"] == "aboutToFill" and alerts[0]["withinMinutes"] <= 30


def test_occupancy_profile_by_weekday_and_hour(client: TestClient) -> None:
    _history(client)
    body = client.get(f"/api/v1/analytics/parking/{COMMUTER}").json()
    occ = body["profile"]["occupancy"]  # [weekday][hour], Monday first
    assert body["profile"]["weekdays"][0] == "Mon"
    assert occ[1][12] == pytest.approx(1.0, abs=0.02)  # Tuesday noon: full
    assert occ[1][3] == pytest.approx(0.1, abs=0.03)  # Tuesday 03:00: nearly empty
    assert occ[5][12] == pytest.approx(0.3, abs=0.03)  # Saturday noon
    assert body["profile"]["hourlyMeans"][1][12] == 2  # two Tuesdays in two weeks
    assert len(body["series"]) == 24 * 12
    missing = client.get("/api/v1/analytics/parking/urn:ngsi-ld:OffStreetParking:nope")
    assert missing.status_code == 404


def test_probability_of_being_full() -> None:
    assert full_threshold(200) == 4 and full_threshold(40) == 0
    assert p_full(4.5, 1.0, 200) == pytest.approx(0.5)  # forecast at the threshold (+0.5)
    assert p_full(100, 10, 200) < 1e-6
    assert p_full(0, 10, 200) > 0.6
    assert p_full(20, float("nan"), 200) < 1e-6  # no spread known: at least one space


def test_about_to_fill_is_an_alert_entity_in_the_hub_and_clears(client: TestClient) -> None:
    """Alerts are data (issue #13 item 8): what ``serve`` runs on its schedule
    (analytics/jobs.py) keeps an ``Alert`` per car park about to fill, cleared after."""
    from smartcity.analytics import jobs
    from smartcity.analytics.alerts import active_alerts, reconcile

    _history(client)
    app: Any = client.app
    hub, service = app.state.hub, app.state.parking.service
    specs = jobs.parking_alerts(service.alerts())
    reconcile(hub.entities, jobs.PARKING, specs, at_us=NOW)
    [alert] = active_alerts(hub.entities, jobs.PARKING)
    assert alert["id"] == "urn:ngsi-ld:Alert:parking:A:carParkAboutToFill"
    assert alert["alertSource"] == COMMUTER and alert["category"] == "traffic"
    assert "likely full within" in alert["description"]
    found = client.get("/ngsi-ld/v1/entities", params={"type": "Alert", "q": "!validTo"},
                       headers=city_link()).json()  # fmt: skip
    assert [a["id"] for a in found] == [alert["id"]]
    reconcile(hub.entities, jobs.PARKING, [], at_us=NOW + STEP_US)  # no longer about to fill
    assert active_alerts(hub.entities, jobs.PARKING) == []


def test_a_tenants_car_parks_get_their_alerts_in_that_tenant(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """With the analytics reading a tenant (SMARTCITY_ANALYTICS_TENANT), the scheduled round
    (analytics/jobs.py) writes that tenant's car-park alerts in that tenant, beside the car
    parks, and none in the default tenant."""
    from smartcity.analytics import jobs
    from smartcity.analytics.alerts import active_alerts
    from smartcity.analytics.tenancy import SETTING
    from smartcity.app import create_app

    monkeypatch.setenv(SETTING, "kowloon")
    with TestClient(create_app(settings)) as client:
        _history(client, tenant="kowloon")
        app: Any = client.app
        hub = app.state.hub
        jobs.run_once(hub, app.state.parking, NOW)
        [alert] = active_alerts(hub.entities, jobs.PARKING, tenant="kowloon")
        assert alert["alertSource"] == COMMUTER
        assert active_alerts(hub.entities, jobs.PARKING) == []


def test_the_alert_period_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcity.analytics import jobs

    for good, period in (("", None), ("0", None), ("60", 60.0)):
        monkeypatch.setenv(jobs.SETTING, good)
        assert jobs.period_from_env() == period
    for bad in ("soon", "1"):
        monkeypatch.setenv(jobs.SETTING, bad)
        with pytest.raises(ValueError, match=jobs.SETTING):
            jobs.period_from_env()


def test_serve_runs_the_alerting_analyses_when_asked(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from smartcity.analytics import jobs
    from smartcity.app import create_app

    monkeypatch.setenv(jobs.SETTING, "60")
    with TestClient(create_app(settings)) as running:
        listed = running.get("/healthz").json()["jobs"]
        assert "analytics.alerts" in str(listed)
    monkeypatch.delenv(jobs.SETTING)
    with TestClient(create_app(settings)) as quiet:
        assert "analytics.alerts" not in str(quiet.get("/healthz").json()["jobs"])


def test_the_dashboard_shows_which_car_parks_are_likely_full_on_arrival(
    client: TestClient,
) -> None:
    """The city dashboard's car-park table (page, GeoJSON, state, CSV) carries each car park's
    "likely full on arrival" from the forecasts, in the page's language."""
    _history(client)
    features = client.get("/api/v1/dashboard/layers", params={"kind": "carparks"}).json()
    outlook = {f["id"]: f["properties"]["likelyFullWithin"] for f in features["features"]}
    assert outlook[COMMUTER] in (15, 30)  # filling: full by 09:00
    assert outlook[SPACIOUS] is None and outlook[NO_TOTAL] is None
    state = client.get("/api/v1/dashboard/state").json()
    assert state["likelyFullWithin"] == outlook
    minutes = outlook[COMMUTER]
    for prefix, label, says in (
        ("en", "Likely full on arrival", f"Likely full within {minutes} min"),
        ("tc", "抵達時可能已滿", f"{minutes} 分鐘內可能滿"),
        ("sc", "抵达时可能已满", f"{minutes} 分钟内可能满"),
    ):
        page = client.get(f"/{prefix}/dashboard").text
        assert label in page and says in page, prefix
    csv_text = client.get("/api/v1/dashboard/layers.csv", params={"kind": "carparks"}).text
    header, *rows = csv_text.lstrip("\ufeff").splitlines()
    assert header.endswith(",likely_full_within_min")
    by_id = {r.split(",")[0]: r.rsplit(",", 1)[1] for r in rows}
    assert by_id[COMMUTER] == str(minutes) and by_id[SPACIOUS] == ""
