"""ETSI conformance: the requests the suite expects refused with 400 BadRequestData, and the
neighbouring ones it expects accepted (issue 12's list, checked against the v1.8.1 OpenAPI).

Each case is the request the suite sends, through the app, and the status and error type it
expects."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
V1 = "/ngsi-ld/v1"
E = f"{V1}/entities"
ID = "urn:ngsi-ld:Vehicle:etsi-v1"
NOTIFY = {"uri": "http://127.0.0.1:9/notify"}


@pytest.fixture
def vehicle(client: TestClient) -> TestClient:
    body = {"id": ID, "type": "Vehicle", "speed": {"type": "Property", "value": 1}, "scope": "/A"}
    assert client.post(E, json=body, headers=JSON).status_code == 201
    return client


def bad(r: Any) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["type"] == BAD, r.text


@pytest.mark.parametrize("member", ["pick", "omit"])
def test_pick_or_omit_with_attrs(vehicle: TestClient, member: str) -> None:
    """Clause 4.21: pick/omit replace attrs; together they are refused everywhere."""
    given = {"type": "Vehicle", member: "speed", "attrs": "speed"}
    bad(vehicle.get(E, params=given))
    bad(vehicle.get(f"{V1}/temporal/entities", params=given))
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"attributes": ["speed"], member: ["speed"], "endpoint": NOTIFY},
    }
    bad(vehicle.post(f"{V1}/subscriptions", json=sub, headers=JSON))


@pytest.mark.parametrize(
    "params",
    [
        {"q": "(speed==1"},  # unclosed
        {"pick": "speed{{value}}"},  # double braces
        {"pick": "speed{value"},  # unclosed brace
        {"q": "speed==1;;speed==2"},  # consecutive separators
        {"pick": "speed,,id"},
        {"q": ";speed==1"},  # starts with a special character
        {"pick": ",speed"},
        {"attrs": "speed(x)"},  # invalid attribute name
    ],
)
def test_malformed_expressions(vehicle: TestClient, params: dict[str, str]) -> None:
    bad(vehicle.get(E, params={"type": "Vehicle", **params}))


def test_query_without_any_minimal_parameter(vehicle: TestClient) -> None:
    """Clause 5.7.2: type, id, idPattern, attrs, q, a geo-query or scopeQ is needed."""
    bad(vehicle.get(E))


@pytest.mark.parametrize("type_", ["Vehicle?x", "Vehicle(x)", "", 3, ["Vehicle", 3]])
def test_entity_with_an_invalid_type(client: TestClient, type_: Any) -> None:
    bad(client.post(E, json={"id": "urn:ngsi-ld:Vehicle:x", "type": type_}, headers=JSON))
    assert client.get(f"{E}/urn:ngsi-ld:Vehicle:x").status_code == 404


def test_invalid_attribute_names(vehicle: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:Vehicle:x", "type": "Vehicle", "a b": {"value": 1}}
    bad(vehicle.post(E, json=body, headers=JSON))
    bad(vehicle.put(f"{E}/{ID}/attrs/speed(x)", json={"type": "Property", "value": 2}))
    # scope is an entity member, not an attribute to replace (404 before)
    bad(vehicle.put(f"{E}/{ID}/attrs/scope", json={"type": "Property", "value": 2}))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/entities"),
        ("PATCH", f"/entities/{ID}/attrs"),
        ("POST", f"/entities/{ID}/attrs"),
        ("PATCH", f"/entities/{ID}"),
        ("POST", "/subscriptions"),
        ("POST", "/entityOperations/create"),
        ("POST", "/entityOperations/query"),
        ("POST", "/temporal/entities"),
    ],
)
def test_empty_body_is_bad_request_data(vehicle: TestClient, method: str, path: str) -> None:
    """An empty JSON body is BadRequestData, not InvalidRequest (12 cases in the suite)."""
    bad(vehicle.request(method, f"{V1}{path}", content=b"", headers=JSON))


def test_scope_q_with_or(vehicle: TestClient) -> None:
    r = vehicle.get(E, params={"type": "Vehicle", "scopeQ": "/B|/A"})
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == [ID]


def test_scope_append_overwrite_no_overwrite_and_delete(vehicle: TestClient) -> None:
    def scope() -> Any:
        return vehicle.get(f"{E}/{ID}").json().get("scope")

    assert vehicle.post(f"{E}/{ID}/attrs", json={"scope": "/B"}, headers=JSON).status_code == 204
    assert scope() == "/B"  # overwritten
    r = vehicle.post(
        f"{E}/{ID}/attrs", params={"options": "noOverwrite"}, json={"scope": "/C"}, headers=JSON
    )
    assert r.status_code == 204
    assert scope() == ["/B", "/C"]  # merged into a list
    assert vehicle.delete(f"{E}/{ID}/attrs/scope").status_code == 204
    assert scope() is None


def test_purge_keep_and_drop_exclude_each_other(vehicle: TestClient) -> None:
    bad(vehicle.delete(E, params={"type": "Vehicle", "keep": "speed", "drop": "speed"}))
    bad(vehicle.delete(E))  # no selector: never the whole tenant
    r = vehicle.delete(E, params={"type": "Vehicle", "drop": "speed"})
    assert r.status_code == 204
    assert "speed" not in vehicle.get(f"{E}/{ID}").json()
