"""datasetId: the retrieve/query filter, and PUT of one attribute instance."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ENTITIES = "/ngsi-ld/v1/entities"
CAR = "urn:ngsi-ld:Vehicle:1"
GPS = "urn:ngsi-ld:Dataset:gps"
RADAR = "urn:ngsi-ld:Dataset:radar"


@pytest.fixture
def car(client: TestClient) -> TestClient:
    body = {
        "id": CAR,
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": 50},
            {"type": "Property", "value": 52, "datasetId": GPS},
            {"type": "Property", "value": 49, "datasetId": RADAR},
        ],
        "brand": "Volvo",
    }
    assert client.post(ENTITIES, json=body, headers=JSON).status_code == 201
    return client


def _speeds(entity: dict[str, Any]) -> dict[str | None, Any]:
    speed = entity.get("speed", [])
    instances = speed if isinstance(speed, list) else [speed]
    return {i.get("datasetId"): i["value"] for i in instances}


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (GPS, {GPS: 52}),
        ("@none", {None: 50}),
        (f"{RADAR},@none", {None: 50, RADAR: 49}),
    ],
)
def test_retrieve_and_query_keep_the_wanted_instances(
    car: TestClient, wanted: str, expected: dict[str | None, Any]
) -> None:
    got = car.get(f"{ENTITIES}/{CAR}", params={"datasetId": wanted})
    assert got.status_code == 200, got.text
    assert _speeds(got.json()) == expected
    assert ("brand" in got.json()) is (None in expected)  # brand has only a default instance
    listed = car.get(ENTITIES, params={"type": "Vehicle", "datasetId": wanted}).json()
    assert [_speeds(e) for e in listed] == [expected]
    body = {"type": "Query", "entities": [{"type": "Vehicle"}]}
    posted = car.post(f"/ngsi-ld/v1/entityOperations/query?datasetId={wanted}", json=body)
    assert [_speeds(e) for e in posted.json()] == [expected]


def test_a_bad_dataset_id_is_400(car: TestClient) -> None:
    r = car.get(f"{ENTITIES}/{CAR}", params={"datasetId": "not a uri"})
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "Property", "value": 60, "datasetId": GPS}, {None: 50, GPS: 60, RADAR: 49}),
        ({"type": "Property", "value": 60}, {None: 60, GPS: 52, RADAR: 49}),
    ],
)
def test_put_replaces_only_the_instance_with_its_dataset_id(
    car: TestClient, body: dict[str, Any], expected: dict[str | None, Any]
) -> None:
    r = car.put(f"{ENTITIES}/{CAR}/attrs/speed", json=body, headers=JSON)
    assert r.status_code == 204, r.text
    assert _speeds(car.get(f"{ENTITIES}/{CAR}").json()) == expected


def test_put_of_a_missing_instance_is_404(car: TestClient) -> None:
    body = {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:none"}
    r = car.put(f"{ENTITIES}/{CAR}/attrs/speed", json=body, headers=JSON)
    assert r.status_code == 404 and r.json()["type"].endswith("ResourceNotFound")
