"""ETSI conformance: attribute instances by ``datasetId``, NGSI-LD Null, batch delete and
GeoJSON, as the suite sends them (issue 12's list)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
V1 = "/ngsi-ld/v1"
E = f"{V1}/entities"
ID = "urn:ngsi-ld:Sensor:etsi-i1"
NULL = "urn:ngsi-ld:null"


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


@pytest.fixture
def sensor(client: TestClient) -> TestClient:
    body = {
        "id": ID,
        "type": "Sensor",
        "a": [prop(1), prop(2, datasetId="urn:ds:1"), prop(3, datasetId="urn:ds:2")],
        "r": {"type": "Relationship", "object": "urn:ngsi-ld:Thing:1"},
        "l": {"type": "LanguageProperty", "languageMap": {"en": "one"}},
        "g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        "j": {"type": "JsonProperty", "json": {"x": None, "y": 1}},
    }
    assert client.post(E, json=body, headers=JSON).status_code == 201
    return client


def instances(client: TestClient, name: str = "a") -> dict[str | None, Any]:
    got = client.get(f"{E}/{ID}").json().get(name, [])
    got = got if isinstance(got, list) else [got]
    return {i.get("datasetId"): i.get("value") for i in got}


def test_dataset_id_filters_query_and_retrieve(sensor: TestClient) -> None:
    r = sensor.get(E, params={"type": "Sensor", "datasetId": "urn:ds:1"})
    assert r.json()[0]["a"] == prop(2, datasetId="urn:ds:1")
    r = sensor.get(E, params={"type": "Sensor", "datasetId": "@none"})
    assert r.json()[0]["a"] == prop(1)
    r = sensor.get(f"{E}/{ID}", params={"datasetId": "urn:ds:1,urn:ds:2"})
    assert sorted(i["value"] for i in r.json()["a"]) == [2, 3]


def test_subscription_with_dataset_id_is_created(sensor: TestClient) -> None:
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "datasetId": ["urn:ds:1"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    r = sensor.post(f"{V1}/subscriptions", json=sub, headers=JSON)
    assert r.status_code == 201, r.text
    path = r.headers["Location"][r.headers["Location"].index("/ngsi-ld/") :]
    shown = sensor.get(path)
    assert shown.json()["datasetId"] == ["urn:ds:1"]
    assert shown.json()["isActive"] is True
    assert shown.json()["notification"]["format"] == "normalized"


def test_put_one_attribute_instance(sensor: TestClient) -> None:
    """PUT .../attrs/{attr} replaces the instance of the body's datasetId, only it."""
    path = f"{E}/{ID}/attrs/a"
    assert sensor.put(path, json=prop(20, datasetId="urn:ds:1"), headers=JSON).status_code == 204
    assert instances(sensor) == {None: 1, "urn:ds:1": 20, "urn:ds:2": 3}
    assert sensor.put(path, json=prop(10), headers=JSON).status_code == 204
    assert instances(sensor) == {None: 10, "urn:ds:1": 20, "urn:ds:2": 3}
    r = sensor.put(path, json=prop(9, datasetId="urn:ds:9"), headers=JSON)
    assert r.status_code == 404


def test_null_deletes_instances_through_every_update(sensor: TestClient) -> None:
    r = sensor.patch(f"{E}/{ID}/attrs", json={"a": prop(NULL, datasetId="urn:ds:2")})
    assert r.status_code == 204
    assert instances(sensor) == {None: 1, "urn:ds:1": 2}
    assert sensor.patch(f"{E}/{ID}", json={"a": NULL}, headers=JSON).status_code == 204
    assert instances(sensor) == {"urn:ds:1": 2}
    r = sensor.patch(f"{E}/{ID}/attrs/r", json={"type": "Relationship", "object": NULL})
    assert r.status_code == 204
    null_map = {"type": "LanguageProperty", "languageMap": {"@none": NULL}}
    assert sensor.patch(f"{E}/{ID}/attrs/l", json=null_map).status_code == 204
    r = sensor.patch(f"{E}/{ID}/attrs/g", json={"type": "GeoProperty", "value": NULL})
    assert r.status_code == 204
    entity = sensor.get(f"{E}/{ID}").json()
    assert not {"r", "l", "g"} & set(entity)
    assert entity["j"]["json"] == {"x": None, "y": 1}  # a JSON property's nulls are data


def test_batch_delete_with_the_specification_body(sensor: TestClient) -> None:
    r = sensor.post(f"{V1}/entityOperations/delete", json=[ID], headers=JSON)
    assert r.status_code == 204
    r = sensor.post(f"{V1}/entityOperations/delete", json=[ID, ID], headers=JSON)
    assert r.status_code == 207
    assert [e["entityId"] for e in r.json()["errors"]] == [ID, ID]


def test_batch_create_reports_a_context_mismatch_per_entity(client: TestClient) -> None:
    core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
    batch = [
        {"id": "urn:ngsi-ld:Sensor:ok", "type": "Sensor"},
        {"id": "urn:ngsi-ld:Sensor:ctx", "type": "Sensor", "@context": core},
    ]
    r = client.post(f"{V1}/entityOperations/create", json=batch, headers=JSON)
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Sensor:ok"]
    assert [e["entityId"] for e in r.json()["errors"]] == ["urn:ngsi-ld:Sensor:ctx"]


def test_geojson_for_post_query_and_retrieve(sensor: TestClient) -> None:
    geo = {**JSON, "Accept": "application/geo+json"}
    query = {"type": "Query", "entities": [{"type": "Sensor"}]}
    r = sensor.post(f"{V1}/entityOperations/query", json=query, headers=geo)
    assert r.status_code == 200
    assert r.json()["type"] == "FeatureCollection"
    r = sensor.get(f"{E}/{ID}", params={"geometryProperty": "g"}, headers=geo)
    assert r.status_code == 200
    assert r.json()["geometry"] == {"type": "Point", "coordinates": [1, 2]}
