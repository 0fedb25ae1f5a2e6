"""application/geo+json on retrieve and on POST /entityOperations/query (clause 4.5.16)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
GEO = {"Accept": "application/geo+json"}
STOP = {
    "id": "urn:ngsi-ld:BusStop:1",
    "type": "BusStop",
    "name": "Pier",
    "location": {"type": "Point", "coordinates": [114.16, 22.28]},
    "entrance": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [114.2, 22.3]}},
}


@pytest.fixture
def stop(client: TestClient) -> TestClient:
    assert client.post("/ngsi-ld/v1/entities", json=STOP, headers=JSON).status_code == 201
    return client


def test_retrieve_as_a_feature(stop: TestClient) -> None:
    r = stop.get("/ngsi-ld/v1/entities/urn:ngsi-ld:BusStop:1", headers=GEO)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    feature = r.json()
    assert feature["type"] == "Feature" and feature["id"] == "urn:ngsi-ld:BusStop:1"
    assert feature["geometry"] == STOP["location"]
    assert feature["properties"]["type"] == "BusStop"
    assert feature["properties"]["name"]["value"] == "Pier"
    r = stop.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:BusStop:1",
        params={"geometryProperty": "entrance", "options": "keyValues"},
        headers=GEO,
    )
    assert r.json()["geometry"]["coordinates"] == [114.2, 22.3]
    assert r.json()["properties"]["name"] == "Pier"


def test_post_query_as_a_feature_collection(stop: TestClient) -> None:
    body = {"type": "Query", "entities": [{"type": "BusStop"}]}
    r = stop.post("/ngsi-ld/v1/entityOperations/query", json=body, headers={**JSON, **GEO})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    collection = r.json()
    assert collection["type"] == "FeatureCollection"
    assert [f["id"] for f in collection["features"]] == ["urn:ngsi-ld:BusStop:1"]
    assert collection["features"][0]["geometry"] == STOP["location"]
    r = stop.post(
        "/ngsi-ld/v1/entityOperations/query?geometryProperty=entrance",
        json=body,
        headers={**JSON, **GEO},
    )
    assert r.json()["features"][0]["geometry"]["coordinates"] == [114.2, 22.3]


def test_the_context_is_in_the_body_unless_prefer_body_json(stop: TestClient) -> None:
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:BusStop:1"
    r = stop.get(url, headers=GEO)
    assert r.json()["@context"].startswith("https://uri.etsi.org/ngsi-ld/")
    r = stop.get("/ngsi-ld/v1/entities", params={"type": "BusStop"}, headers=GEO)
    assert "@context" in r.json()
    assert all("@context" not in f for f in r.json()["features"])
    r = stop.get(url, headers={**GEO, "Prefer": "body=json"})
    assert "@context" not in r.json() and "rel=" in r.headers["link"]


def test_a_missing_geometry_is_null(stop: TestClient) -> None:
    r = stop.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:BusStop:1",
        params={"geometryProperty": "name"},
        headers=GEO,
    )
    assert r.status_code == 200 and r.json()["geometry"] is None
