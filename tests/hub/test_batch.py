"""Batch operations report per entity: a bad entity never hides or stops the good ones."""

from __future__ import annotations

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
OPS = "/ngsi-ld/v1/entityOperations"


def sensor(n: int, **attrs: object) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Sensor:{n}", "type": "Sensor", **attrs}


def test_batch_create_reports_each_entity(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=sensor(2), headers=JSON)
    batch = [sensor(1, t=1), sensor(2, t=2), {"id": "bad id", "type": "Sensor"}, sensor(3), 5]
    r = client.post(f"{OPS}/create", json=batch, headers=JSON)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:3"]
    reasons = {e["entityId"]: e["error"]["type"].rsplit("/", 1)[1] for e in body["errors"]}
    assert reasons == {
        "urn:ngsi-ld:Sensor:2": "AlreadyExists",
        "bad id": "BadRequestData",
        "(not an object)": "BadRequestData",
    }
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:3").status_code == 200


def test_batch_create_all_good_is_201_with_ids(client: TestClient) -> None:
    r = client.post(f"{OPS}/create", json=[sensor(1), sensor(2)], headers=JSON)
    assert r.status_code == 201
    assert r.json() == ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"]


def test_batch_upsert_creates_and_replaces(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=sensor(1, a=1, b=2), headers=JSON)
    r = client.post(f"{OPS}/upsert", json=[sensor(1, a=10), sensor(2, a=20)], headers=JSON)
    assert r.status_code == 201 and r.json() == ["urn:ngsi-ld:Sensor:2"]
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1?options=keyValues").json()
    assert got == {"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "a": 10}  # replaced: b gone
    r = client.post(f"{OPS}/upsert?options=update", json=[sensor(1, c=3)], headers=JSON)
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1?options=keyValues").json()
    assert got["a"] == 10 and got["c"] == 3  # updated: a kept


def test_batch_upsert_reports_bad_items(client: TestClient) -> None:
    r = client.post(
        f"{OPS}/upsert",
        json=[sensor(1, a=1), {"id": "urn:ngsi-ld:Sensor:9", "a": 1}, sensor(2, a={"type": "X"})],
        headers=JSON,
    )
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Sensor:1"]
    assert {e["entityId"] for e in r.json()["errors"]} == {
        "urn:ngsi-ld:Sensor:9",
        "urn:ngsi-ld:Sensor:2",
    }


def test_batch_update_and_delete(client: TestClient) -> None:
    client.post(f"{OPS}/create", json=[sensor(1, a=1), sensor(2, a=2)], headers=JSON)
    r = client.post(f"{OPS}/update", json=[sensor(1, a=5), sensor(7, a=1)], headers=JSON)
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Sensor:1"]
    assert r.json()["errors"][0]["error"]["status"] == 404
    r = client.post(f"{OPS}/update?options=noOverwrite", json=[sensor(2, a=9, b=1)], headers=JSON)
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:2?options=keyValues").json()
    assert got["a"] == 2 and got["b"] == 1
    r = client.post(
        f"{OPS}/delete", json=["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:8"], headers=JSON
    )
    assert r.status_code == 207 and r.json()["success"] == ["urn:ngsi-ld:Sensor:1"]
    r = client.post(f"{OPS}/delete", json=["urn:ngsi-ld:Sensor:2"], headers=JSON)
    assert r.status_code == 204
    assert client.get("/ngsi-ld/v1/entities?type=Sensor").json() == []


def test_batch_merge(client: TestClient) -> None:
    client.post(f"{OPS}/create", json=[sensor(1, a=1)], headers=JSON)
    r = client.post(f"{OPS}/merge", json=[sensor(1, b=2), sensor(5, b=1)], headers=JSON)
    assert r.status_code == 207
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1?options=keyValues").json()
    assert got["a"] == 1 and got["b"] == 2


def test_batch_query_by_post(client: TestClient) -> None:
    client.post(f"{OPS}/create", json=[sensor(1, a=1), sensor(2, a=2)], headers=JSON)
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "attrs": ["a"]}
    r = client.post(f"{OPS}/query?count=true", json=body, headers=JSON)
    assert r.status_code == 200 and r.headers["ngsild-results-count"] == "2"
    assert [e["a"]["value"] for e in r.json()] == [1, 2]
    assert client.post(f"{OPS}/query", json={"entities": []}, headers=JSON).status_code == 400


def test_batch_limits_and_shape(client: TestClient) -> None:
    assert client.post(f"{OPS}/create", json={"id": "urn:x:1"}, headers=JSON).status_code == 400
    assert client.post(f"{OPS}/create", json=[], headers=JSON).status_code == 400
    many = [sensor(i) for i in range(5001)]
    r = client.post(f"{OPS}/create", json=many, headers=JSON)
    assert r.status_code == 400 and "at most" in r.json()["detail"]


def test_same_id_twice_in_one_upsert_merges(client: TestClient) -> None:
    r = client.post(f"{OPS}/upsert", json=[sensor(1, a=1), sensor(1, b=2)], headers=JSON)
    assert r.status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1?options=keyValues").json()
    assert got["a"] == 1 and got["b"] == 2
