"""Writes need a bearer key scoped to the tenant; reads are public unless the tenant is private."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.security.keys import KeyStore
from smartcity.storage.engine import Database

JSON = {"Content-Type": "application/json"}
ENTITY = {"id": "urn:ngsi-ld:Lamppost:1", "type": "Lamppost", "status": "on"}


@pytest.fixture
def secured(db: Database) -> Iterator[tuple[TestClient, KeyStore]]:
    settings = Settings(
        database_url=db.url, auth_required=True, private_read_tenants=frozenset({"police"})
    )
    with TestClient(create_app(settings)) as client:
        yield client, KeyStore(db)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_write_without_key_is_401_and_says_how_to_get_one(
    secured: tuple[TestClient, KeyStore],
) -> None:
    client, _ = secured
    r = client.post("/ngsi-ld/v1/entities", json=ENTITY, headers=JSON)
    assert r.status_code == 401
    assert "smartcity keys create" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={**JSON, **bearer("sc_nope")})
    assert r.status_code == 401


def test_write_key_works_and_revocation_stops_it(secured: tuple[TestClient, KeyStore]) -> None:
    client, keys = secured
    key, token = keys.create("lamppost gateway", scope="write")
    r = client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={**JSON, **bearer(token)})
    assert r.status_code == 201
    assert (
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamppost:1").status_code == 200
    )  # public read
    assert keys.revoke(key.key_id)
    client.app.state.hub.keys._cache.clear()  # type: ignore[attr-defined]  # other process: <= 5 s
    r = client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamppost:1", headers=bearer(token))
    assert r.status_code == 401


def test_read_key_cannot_write_and_tenant_scope_is_enforced(
    secured: tuple[TestClient, KeyStore],
) -> None:
    client, keys = secured
    _, reader = keys.create("dashboard", scope="read")
    r = client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={**JSON, **bearer(reader)})
    assert r.status_code == 403
    _, kowloon = keys.create("kowloon", scope="write", tenants=["kowloon"])
    ok = client.post(
        "/ngsi-ld/v1/entities",
        json=ENTITY,
        headers={**JSON, **bearer(kowloon), "NGSILD-Tenant": "kowloon"},
    )
    assert ok.status_code == 201
    other = client.post(
        "/ngsi-ld/v1/entities",
        json=ENTITY,
        headers={**JSON, **bearer(kowloon), "NGSILD-Tenant": "islands"},
    )
    assert other.status_code == 403 and "islands" in other.json()["detail"]


def test_private_tenant_needs_a_key_to_read(secured: tuple[TestClient, KeyStore]) -> None:
    client, keys = secured
    _, writer = keys.create("police", scope="write", tenants=["police"])
    _, reader = keys.create("police-ro", scope="read", tenants=["police"])
    headers = {"NGSILD-Tenant": "police"}
    client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={**JSON, **headers, **bearer(writer)})
    assert client.get("/ngsi-ld/v1/entities?type=Lamppost", headers=headers).status_code == 401
    r = client.get("/ngsi-ld/v1/entities?type=Lamppost", headers={**headers, **bearer(reader)})
    assert r.status_code == 200 and len(r.json()) == 1


def test_keys_are_stored_hashed(db: Database) -> None:
    keys = KeyStore(db)
    _, token = keys.create("x")
    with db.read() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM api_keys")]
    assert stored and all(token not in str(row) for row in stored)
    assert keys.verify(token) is not None
    assert keys.verify(token + "x") is None
