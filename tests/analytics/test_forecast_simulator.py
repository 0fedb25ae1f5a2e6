"""End to end with the live simulator: its traffic detectors' and car parks' history, written
into the hub as the demo writes it, gets forecasts for every entity over HTTP."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient

from smartcity.live.simulator.backfill import backfill
from smartcity.live.simulator.models import CityModel
from smartcity.live.simulator.places import build_fleet

NOW = 1_767_833_220_000_000  # Thursday 2026-01-08 08:47 Hong Kong time


def test_simulated_city_gets_forecasts(client: TestClient) -> None:
    fleet = [d for d in build_fleet(100, 1) if d.entity_type in ("TrafficFlowObserved",
                                                                  "OffStreetParking")]  # fmt: skip
    traffic = {d.entity_id for d in fleet if d.entity_type == "TrafficFlowObserved"}
    parks = {d.entity_id for d in fleet if d.entity_type == "OffStreetParking"}
    assert traffic and parks
    hub = client.app.state.hub  # type: ignore[attr-defined]
    backfill(fleet, CityModel(1), hub.temporal, end_us=NOW, hours=30, step_s=300)
    client.app.state.forecasts.service.clock = lambda: NOW  # type: ignore[attr-defined]
    client.app.state.parking.service.forecasts.clock = lambda: NOW  # type: ignore[attr-defined]

    body = client.get("/api/v1/analytics/forecasts/traffic").json()
    assert {e["id"] for e in body["entities"]} == traffic
    for entity in body["entities"]:
        assert entity["observed"] is not None
        for f in entity["forecasts"]:
            assert math.isfinite(f["value"]) and 0 < f["value"] < 150
    flow = client.get("/api/v1/analytics/forecasts/traffic?attribute=intensity").json()
    assert {e["id"] for e in flow["entities"]} == traffic

    status = client.get("/api/v1/analytics/parking").json()
    assert {p["id"] for p in status["carParks"]} == parks
    for park in status["carParks"]:
        assert park["capacitySource"] == "maxSeen"  # backfill writes readings only
        for f in park["forecasts"]:
            assert 0 <= f["available"] <= park["capacity"]
            assert 0 <= f["pFull"] <= 1
