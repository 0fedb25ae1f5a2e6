"""Batch operations as the specification writes them (clauses 5.6.7-5.6.10)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
LD = {"Content-Type": "application/ld+json"}
OPS = "/ngsi-ld/v1/entityOperations"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def _create(client: TestClient, *ids: str) -> None:
    batch = [{"id": i, "type": "Building"} for i in ids]
    assert client.post(f"{OPS}/create", json=batch, headers=JSON).status_code == 201


@pytest.mark.parametrize("headers", [JSON, LD])
def test_batch_delete_takes_an_array_of_ids_in_either_media_type(
    client: TestClient, headers: dict[str, str]
) -> None:
    _create(client, "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:2")
    r = client.post(
        f"{OPS}/delete", json=["urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:2"], headers=headers
    )
    assert r.status_code == 204, r.text
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Building:1").status_code == 404


def test_batch_delete_reports_missing_and_repeated_ids(client: TestClient) -> None:
    _create(client, "urn:ngsi-ld:Building:1")
    ids = ["urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:9"]
    r = client.post(f"{OPS}/delete", json=ids, headers=LD)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Building:1"]
    assert [e["entityId"] for e in body["errors"]] == ids[1:]
    assert all(e["error"]["type"].endswith("ResourceNotFound") for e in body["errors"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "BadRequestData"), (b"[]", "BadRequestData"), (b"[nope", "InvalidRequest")],
)
def test_batch_delete_bad_bodies(client: TestClient, content: bytes, expected: str) -> None:
    r = client.post(f"{OPS}/delete", content=content, headers=LD)
    assert r.status_code == 400 and r.json()["type"].endswith(expected), r.text


def test_batch_create_reports_a_context_mismatch_per_entity(client: TestClient) -> None:
    good = {"id": "urn:ngsi-ld:Building:1", "type": "Building"}
    with_context = {"id": "urn:ngsi-ld:Building:2", "type": "Building", "@context": CORE}
    r = client.post(f"{OPS}/create", json=[good, with_context], headers=JSON)
    assert r.status_code == 207, r.text
    assert r.json()["success"] == ["urn:ngsi-ld:Building:1"]
    [error] = r.json()["errors"]
    assert error["entityId"] == "urn:ngsi-ld:Building:2"
    assert error["error"]["type"].endswith("BadRequestData")
    # and the other way round: application/ld+json with an entity lacking its @context
    good_ld = {"id": "urn:ngsi-ld:Building:3", "type": "Building", "@context": CORE}
    bare = {"id": "urn:ngsi-ld:Building:4", "type": "Building"}
    r = client.post(f"{OPS}/create", json=[good_ld, bare], headers=LD)
    assert r.status_code == 207, r.text
    assert r.json()["success"] == ["urn:ngsi-ld:Building:3"]
    assert [e["entityId"] for e in r.json()["errors"]] == ["urn:ngsi-ld:Building:4"]
