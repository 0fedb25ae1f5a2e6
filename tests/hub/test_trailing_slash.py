"""Every path under /ngsi-ld/v1/ answers the same with and without a trailing slash, for every
method (the specification, the ETSI suite and FIWARE clients write `POST /entities/`)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
E = "urn:ngsi-ld:Sensor:slash-1"


def sensor(value: int = 1) -> dict[str, object]:
    return {"id": E, "type": "Sensor", "temperature": {"type": "Property", "value": value}}


def test_entity_lifecycle_with_trailing_slashes(client: TestClient) -> None:
    assert client.post("/ngsi-ld/v1/entities/", json=sensor(), headers=JSON).status_code == 201
    listed = client.get("/ngsi-ld/v1/entities/?type=Sensor")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == [E]
    assert client.get(f"/ngsi-ld/v1/entities/{E}/").json()["id"] == E
    patch = {"temperature": {"type": "Property", "value": 2}}
    r = client.patch(f"/ngsi-ld/v1/entities/{E}/attrs/", json=patch, headers=JSON)
    assert r.status_code == 204, r.text
    r = client.patch(f"/ngsi-ld/v1/entities/{E}/attrs/temperature/", json={"value": 3})
    assert r.status_code == 204, r.text
    assert client.get(f"/ngsi-ld/v1/entities/{E}").json()["temperature"]["value"] == 3
    r = client.post("/ngsi-ld/v1/entityOperations/upsert/", json=[sensor(4)], headers=JSON)
    assert r.status_code == 204, r.text
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    r = client.post("/ngsi-ld/v1/subscriptions/", json=sub, headers=JSON)
    assert r.status_code == 201, r.text
    assert len(client.get("/ngsi-ld/v1/subscriptions/").json()) == 1
    assert client.get("/ngsi-ld/v1/types/").status_code == 200
    assert client.get(f"/ngsi-ld/v1/temporal/entities/{E}/").status_code == 200
    assert client.delete(f"/ngsi-ld/v1/entities/{E}/").status_code == 204
    assert client.get(f"/ngsi-ld/v1/entities/{E}").status_code == 404


def _ngsi_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for path, item in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if path.startswith("/ngsi-ld/v1/"):
            concrete = re.sub(r"\{[^}]+\}", "urn:ngsi-ld:X:1", path)
            found.extend((method.upper(), concrete) for method in item)
    return found


def test_no_ngsi_route_tells_a_trailing_slash_apart(client: TestClient) -> None:
    routes = _ngsi_routes(client)
    assert len(routes) > 20
    for method, path in routes:
        plain = client.request(method, path, headers=JSON, content=b"{}")
        slashed = client.request(method, path + "/", headers=JSON, content=b"{}")
        assert (method, path, slashed.status_code) == (method, path, plain.status_code)
        assert slashed.status_code not in (307, 308, 405), (method, path)
