"""Serving forecasts from the hub's history: every TrafficFlowObserved detector gets 15, 30
and 60 minute forecasts with its observed series, over HTTP, refreshed as readings arrive;
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from smartcity.analytics.forecast.generate import generate
from smartcity.analytics.forecast.serving import ATTRIBUTES, STEP_US, TRAFFIC, ForecastService
from smartcity.hub.temporal.service import TemporalService
from smartcity.hub.timeutil import iso_from_us

SPEED = ATTRIBUTES["averageVehicleSpeed"]
DAYS = 7
# A fixed "now" two minutes into a 5-minute period, on a Monday 00:02 Hong Kong time (the
# generated data start on a Monday), far enough from the real clock to be nobody's data.
NOW = 1_767_542_400_000_000 + 2 * 60_000_000  # 2026-01-05T00:02+08:00
assert NOW % (7 * 86_400_000_000) != 0


def _history() -> tuple[list[str], np.ndarray, int]:
    """DAYS days of 6 detectors, ending with the last complete period before NOW."""
    data = generate(6, DAYS + 1, seed=7, missing=0.0)
    rows = DAYS * 288
    end = NOW // STEP_US * STEP_US
    start = end - rows * STEP_US
    ids = [f"urn:ngsi-ld:TrafficFlowObserved:{s}" for s in data.ids]
    return ids, data.values[:rows], start


def _write(temporal: TemporalService, ids: list[str], values: np.ndarray, start: int) -> None:
    for j, entity_id in enumerate(ids):
        instances: list[dict[str, Any]] = [
            {"type": "Property", "value": float(v), "observedAt": iso_from_us(start + r * STEP_US)}
            for r, v in enumerate(values[:, j])
            if v > 0
        ]
        temporal.upsert("", {"id": entity_id, "type": [TRAFFIC], "attrs": {SPEED: instances}})


def test_every_detector_gets_forecasts_with_its_observed_series(client: TestClient) -> None:
    ids, values, start = _history()
    hub = client.app.state.hub  # type: ignore[attr-defined]
    _write(hub.temporal, ids, values, start)
    client.app.state.forecasts.service.clock = lambda: NOW  # type: ignore[attr-defined]

    body = client.get("/api/v1/analytics/forecasts/traffic").json()
    assert body["attribute"] == "averageVehicleSpeed"
    assert body["horizonsMinutes"] == [15, 30, 60]
    assert body["historyPeriods"] == values.shape[0]
    assert {e["id"] for e in body["entities"]} == set(ids)
    last = NOW // STEP_US * STEP_US - STEP_US
    for entity in body["entities"]:
        j = ids.index(entity["id"])
        assert entity["observed"] == {"start": iso_from_us(last), "value": values[-1, j]}
        got = {f["minutes"]: f for f in entity["forecasts"]}
        assert set(got) == {15, 30, 60}
        for minutes, f in got.items():
            assert f["start"] == iso_from_us(last + minutes * 60_000_000)
            # Plausible speeds for that detector: within what it has shown.
            assert values[:, j].min() - 5 <= f["value"] <= values[:, j].max() + 5

    one = client.get(f"/api/v1/analytics/forecasts/traffic/{ids[2]}").json()
    assert [e["id"] for e in one["entities"]] == [ids[2]]
    series = one["entities"][0]["series"]
    assert len(series) == 24 * 12  # the last day, one 5-minute mean per period
    assert series[-1] == {"start": iso_from_us(last), "value": values[-1, 2]}
    assert [p["value"] for p in series] == [float(v) for v in values[-288:, 2]]

    missing = client.get("/api/v1/analytics/forecasts/traffic/urn:ngsi-ld:X:nope")
    assert missing.status_code == 404
    assert "no forecast for urn:ngsi-ld:X:nope" in missing.json()["detail"]
    bad = client.get("/api/v1/analytics/forecasts/traffic?attribute=colour")
    assert bad.status_code == 400
    assert "averageVehicleSpeed" in bad.json()["detail"]


def test_forecasts_follow_new_readings(client: TestClient) -> None:
    """A detector whose speed collapses (a queue: three slow periods) is forecast well below
    its earlier forecast once those periods are over; the others barely move."""
    ids, values, start = _history()
    hub = client.app.state.hub  # type: ignore[attr-defined]
    _write(hub.temporal, ids, values, start)
    now = [NOW]
    service = ForecastService(hub.temporal, clock=lambda: now[0])
    before = service.current()
    assert service.current() is before  # same period, within a minute: no recomputation

    period = NOW // STEP_US * STEP_US  # the period in progress at NOW
    slow = [
        {
            "type": "Property",
            "value": v,
            "observedAt": iso_from_us(period + k * STEP_US + 60_000_000),
        }
        for k, v in enumerate([25.0, 15.0, 10.0])
    ]
    hub.temporal.upsert("", {"id": ids[0], "type": [TRAFFIC], "attrs": {SPEED: slow}})
    now[0] = NOW + 3 * STEP_US  # those periods are now complete
    after = service.current()
    assert after is not before
    assert after.made_at == before.made_at + 3 * STEP_US
    assert after.entity(0, with_series=False)["observed"]["value"] == 10.0
    assert after.forecasts[15][0] < before.forecasts[15][0] - 15
    assert after.forecasts[15][0] < after.forecasts[60][0]  # expected to recover
    assert abs(after.forecasts[15][3] - before.forecasts[15][3]) < 10


def test_no_detectors_no_forecasts(client: TestClient) -> None:
    body = client.get("/api/v1/analytics/forecasts/traffic").json()
    assert body["entities"] == []


def test_a_private_tenant_is_not_shown(db: Any) -> None:
    """Analytics are public pages' data: when the tenant's reads need a key, nothing is
    served (403, saying why), for forecasts and car parks alike."""
    from smartcity.app import create_app
    from smartcity.config import Settings

    settings = Settings(
        database_url=db.url, auth_required=True, private_read_tenants=frozenset({"*"})
    )
    with TestClient(create_app(settings)) as client:
        for path in ("/api/v1/analytics/forecasts/traffic", "/api/v1/analytics/parking"):
            r = client.get(path)
            assert r.status_code == 403
            assert "private" in r.json()["detail"]


def test_refits_run_in_the_background(client: TestClient) -> None:
    """Only the first fit makes a request wait: a due refit starts a thread and the request is
    answered with the previous model; the next one uses the new model."""
    ids, values, start = _history()
    hub = client.app.state.hub  # type: ignore[attr-defined]
    _write(hub.temporal, ids, values, start)
    now = [NOW]
    service = ForecastService(hub.temporal, clock=lambda: now[0], refit_s=0.0)
    first = service.current()
    assert first.fitted_at == NOW and not service.refitting
    now[0] = NOW + STEP_US
    second = service.current()
    assert second.fitted_at == NOW  # answered at once, with the model it had
    service.refitting["averageVehicleSpeed"].join(timeout=60)
    now[0] = NOW + 2 * STEP_US
    third = service.current()
    assert third.fitted_at == NOW + STEP_US
    service.refitting["averageVehicleSpeed"].join(timeout=60)  # (the next one, started now)
