"""ETSI conformance, temporal API: values and times come back as they were given, in every
representation (normalized, temporalValues, aggregated), and ``format`` wins over
``options``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
T = "/ngsi-ld/v1/temporal/entities"
ID = "urn:ngsi-ld:Vehicle:etsi-t1"


def at(value: Any, time: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": time}


@pytest.fixture
def vehicle(client: TestClient) -> TestClient:
    body = {
        "id": ID,
        "type": "Vehicle",
        "speed": [at(120, "2020-08-01T12:03:00Z"), at(80, "2020-08-01T12:05:00Z")],
    }
    r = client.post(T, json=body, headers=JSON)
    assert r.status_code == 201, r.text
    return client


def test_normalized_keeps_integers_and_times(vehicle: TestClient) -> None:
    r = vehicle.get(f"{T}/{ID}", params={"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    speeds = sorted(r.json()["speed"], key=lambda i: i["observedAt"])
    assert [(s["value"], s["observedAt"]) for s in speeds] == [
        (120, "2020-08-01T12:03:00Z"),
        (80, "2020-08-01T12:05:00Z"),
    ]
    assert all(type(s["value"]) is int for s in speeds)


def test_temporal_values_keep_integers(vehicle: TestClient) -> None:
    r = vehicle.get(f"{T}/{ID}", params={"options": "temporalValues"})
    values = r.json()["speed"]["values"]
    assert sorted(values, key=lambda v: v[1]) == [
        [120, "2020-08-01T12:03:00Z"],
        [80, "2020-08-01T12:05:00Z"],
    ]
    assert all(type(v[0]) is int for v in values)


def test_aggregated_min_max_sum_of_integers_are_integers(vehicle: TestClient) -> None:
    """120 comes back as 120, not 120.0: JSON has one number type, but clients (and the
    suite) compare what they get with what they sent."""
    params = {
        "options": "aggregatedValues",
        "aggrMethods": "min,max,sum,avg",
        "aggrPeriodDuration": "PT1H",
        "timerel": "after",
        "timeAt": "2020-08-01T00:00:00Z",
    }
    r = vehicle.get(f"{T}/{ID}", params=params)
    assert r.status_code == 200, r.text
    speed = r.json()["speed"]
    assert [m[0] for m in (speed["min"][0], speed["max"][0], speed["sum"][0])] == [80, 120, 200]
    assert all(type(speed[m][0][0]) is int for m in ("min", "max", "sum"))
    assert speed["avg"][0][0] == 100


def test_fractional_aggregates_stay_fractional(client: TestClient) -> None:
    body = {"id": ID, "type": "Vehicle", "speed": [at(1.5, "2020-08-01T12:03:00Z")]}
    assert client.post(T, json=body, headers=JSON).status_code == 201
    params = {"options": "aggregatedValues", "aggrMethods": "max", "aggrPeriodDuration": "PT1H"}
    assert client.get(f"{T}/{ID}", params=params).json()["speed"]["max"][0][0] == 1.5


def test_format_takes_precedence_over_options(vehicle: TestClient) -> None:
    r = vehicle.get(f"{T}/{ID}", params={"options": "temporalValues", "format": "normalized"})
    assert r.status_code == 200
    assert isinstance(r.json()["speed"], list)
    assert "value" in r.json()["speed"][0]


def test_pick_matching_nothing_is_not_found(vehicle: TestClient) -> None:
    r = vehicle.get(f"{T}/{ID}", params={"pick": "colour"})
    assert r.status_code == 404
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
