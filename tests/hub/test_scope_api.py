"""Scope through the attribute endpoints: append replaces or adds, DELETE .../attrs/scope."""

from __future__ import annotations

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
URL = "/ngsi-ld/v1/entities/urn:ngsi-ld:Park:1"


def _scope(client: TestClient) -> object:
    r = client.get(URL)
    assert r.status_code == 200, r.text
    return r.json().get("scope")


def _create(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:Park:1", "type": "Park", "scope": "/HK/Central", "area": 3}
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201


def test_append_scope_replaces_it(client: TestClient) -> None:
    _create(client)
    r = client.post(f"{URL}/attrs", json={"scope": ["/HK/Kowloon", "/Parks"]}, headers=JSON)
    assert r.status_code == 204, r.text
    assert _scope(client) == ["/HK/Kowloon", "/Parks"]


def test_append_scope_with_no_overwrite_adds_to_it(client: TestClient) -> None:
    _create(client)
    r = client.post(
        f"{URL}/attrs?options=noOverwrite",
        json={"scope": ["/Parks", "/HK/Central"]},
        headers=JSON,
    )
    assert r.status_code == 204, r.text
    assert _scope(client) == ["/HK/Central", "/Parks"]


def test_delete_scope_as_an_attribute(client: TestClient) -> None:
    _create(client)
    assert client.delete(f"{URL}/attrs/scope").status_code == 204
    assert _scope(client) is None
    r = client.delete(f"{URL}/attrs/scope")
    assert r.status_code == 404 and r.json()["type"].endswith("ResourceNotFound")
    # the entity's scope can be queried away again
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Park", "scopeQ": "/HK/#"})
    assert r.json() == []


def test_append_of_nothing_is_400(client: TestClient) -> None:
    _create(client)
    r = client.post(f"{URL}/attrs", json={}, headers=JSON)
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")
