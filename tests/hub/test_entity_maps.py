"""EntityMaps (clauses 4.21, 5.2.39, 5.14): entityMap=true names a stored map of what a query
found; the NGSILD-EntityMap header reads the next pages by it; /entityMap/{id} retrieves,
updates (expiresAt) and deletes maps."""

from __future__ import annotations

import socket
from typing import Any

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
E = "/ngsi-ld/v1/entities"
HEADER = "NGSILD-EntityMap"


def sensor(n: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:m{n}",
        "type": "Sensor",
        "n": {"type": "Property", "value": n},
    }


def create(client: TestClient, *numbers: int) -> None:
    for n in numbers:
        assert client.post(E, json=sensor(n), headers=JSON).status_code == 201


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()]


def test_pages_read_by_the_map_ignore_entities_created_since(client: TestClient) -> None:
    create(client, 1, 2, 3)
    first = client.get(E, params={"type": "Sensor", "limit": "2", "entityMap": "true"})
    assert ids(first) == ["urn:ngsi-ld:Sensor:m1", "urn:ngsi-ld:Sensor:m2"]
    where = first.headers[HEADER]
    assert where.startswith("/ngsi-ld/v1/entityMap/urn:ngsi-ld:EntityMap:")
    stored = client.get(where).json()
    assert stored["type"] == "EntityMap" and stored["linkedMaps"] == {}
    assert stored["entityMap"] == {f"urn:ngsi-ld:Sensor:m{n}": ["@none"] for n in (1, 2, 3)}
    create(client, 0)  # would come first... if it were in the map
    following = client.get(
        E, params={"type": "Sensor", "offset": "2", "count": "true"}, headers={HEADER: where}
    )
    assert ids(following) == ["urn:ngsi-ld:Sensor:m3"]
    assert following.headers["NGSILD-Results-Count"] == "3"
    assert following.headers[HEADER] == where
    # The POST query reads by it too, and retrieving an entity outside it is a 404.
    query = {"type": "Query", "entities": [{"type": "Sensor"}]}
    posted = client.post("/ngsi-ld/v1/entityOperations/query", json=query, headers={HEADER: where})
    assert len(ids(posted)) == 3
    outside = client.get(f"{E}/urn:ngsi-ld:Sensor:m0", headers={HEADER: where})
    assert outside.status_code == 404


def test_map_from_post_query_and_retrieve(client: TestClient) -> None:
    create(client, 1, 2)
    query = {"type": "Query", "entities": [{"type": "Sensor"}], "entityMap": True}
    posted = client.post("/ngsi-ld/v1/entityOperations/query", json=query)
    assert len(client.get(posted.headers[HEADER]).json()["entityMap"]) == 2
    one = client.get(f"{E}/urn:ngsi-ld:Sensor:m2", params={"entityMap": "true"})
    assert one.status_code == 200
    assert client.get(one.headers[HEADER]).json()["entityMap"] == {
        "urn:ngsi-ld:Sensor:m2": ["@none"]
    }
    assert HEADER not in client.get(f"{E}/urn:ngsi-ld:Sensor:m2").headers


def test_update_expiry_and_delete(client: TestClient) -> None:
    create(client, 1)
    where = client.get(E, params={"type": "Sensor", "entityMap": "true"}).headers[HEADER]
    later = "2099-01-01T00:00:00Z"
    assert client.patch(where, json={"expiresAt": later}, headers=JSON).status_code == 204
    assert client.get(where).json()["expiresAt"].startswith("2099-01-01T00:00:00")
    for bad in ({"entityMap": {}}, {"expiresAt": "2001-01-01T00:00:00Z"}, {"type": "Entity"}):
        r = client.patch(where, json=bad, headers=JSON)
        assert r.status_code == 400, (bad, r.text)
    assert client.delete(where).status_code == 204
    assert client.get(where).status_code == 404
    gone = client.get(E, params={"type": "Sensor"}, headers={HEADER: where})
    assert gone.status_code == 404
    assert "entityMap=true" in gone.json()["detail"]
    bad = client.get(E, params={"type": "Sensor"}, headers={HEADER: "urn:x:y"})
    assert bad.status_code == 400


def test_maps_are_per_tenant(client: TestClient) -> None:
    create(client, 1)
    where = client.get(E, params={"type": "Sensor", "entityMap": "true"}).headers[HEADER]
    assert client.get(where, headers={"NGSILD-Tenant": "other"}).status_code == 404


def test_only_the_sources_a_map_names_are_asked(client: TestClient) -> None:
    """A registered source that held none of the mapped entities is not asked again for the
    next pages (here a source that is down: its warning disappears)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registration = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:down",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Sensor"}]}],
        "endpoint": f"http://127.0.0.1:{port}",
    }
    assert client.post("/ngsi-ld/v1/csourceRegistrations", json=registration).status_code == 201
    create(client, 1)
    first = client.get(E, params={"type": "Sensor", "entityMap": "true"})
    assert "down" in first.headers["NGSILD-Warning"]
    again = client.get(E, params={"type": "Sensor"}, headers={HEADER: first.headers[HEADER]})
    assert ids(again) == ["urn:ngsi-ld:Sensor:m1"]
    assert "NGSILD-Warning" not in again.headers
