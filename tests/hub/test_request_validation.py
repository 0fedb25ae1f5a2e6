"""Bad requests are refused with the specification's error type (clauses 5.5, 5.7.2.4, 6.3)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ENTITIES = "/ngsi-ld/v1/entities"
BAD_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def _bad_data(r: object) -> None:
    assert r.status_code == 400, r.text  # type: ignore[attr-defined]
    assert r.json()["type"] == BAD_DATA, r.text  # type: ignore[attr-defined]


@pytest.fixture
def with_entity(client: TestClient) -> TestClient:
    body = {"id": "urn:ngsi-ld:Shop:1", "type": "Shop", "scope": "/A", "name": "corner"}
    assert client.post(ENTITIES, json=body, headers=JSON).status_code == 201
    return client


@pytest.mark.parametrize(
    "query",
    [
        "type=Shop&attrs=name&pick=id",
        "type=Shop&attrs=name&omit=name",
        "",  # no selector at all: too wide
        "limit=5",
        "options=keyValues",
        "type=Shop&q=(name==1",
        "type=Shop&q=name==1)",
        "type=Shop&q=name==1;;size==2",
        "type=Shop&q=name==1||size==2",
        "type=Shop&q=;name==1",
        "type=Shop&q=*name==1",
        "type=Shop&q=name{{x}}==1",
        "type=Shop&attrs=na$me",
        "type=Sh%20op",
    ],
)
def test_invalid_queries_are_bad_request_data(with_entity: TestClient, query: str) -> None:
    _bad_data(with_entity.get(f"{ENTITIES}?{query}"))


def test_post_query_needs_a_selector_and_refuses_pick_with_attrs(with_entity: TestClient) -> None:
    url = "/ngsi-ld/v1/entityOperations/query"
    _bad_data(with_entity.post(url, json={"type": "Query"}, headers=JSON))
    body = {"type": "Query", "entities": [{"type": "Shop"}], "attrs": ["name"], "pick": ["id"]}
    _bad_data(with_entity.post(url, json=body, headers=JSON))


@pytest.mark.parametrize("scope_q", ["/A|/B", "/B,/A", "(/B|/A);/A"])
def test_scope_q_with_or_answers(with_entity: TestClient, scope_q: str) -> None:
    r = with_entity.get(ENTITIES, params={"type": "Shop", "scopeQ": scope_q})
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Shop:1"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "urn:ngsi-ld:Shop:2", "type": "Shop Front"},
        {"id": "urn:ngsi-ld:Shop:2", "type": "1Shop"},
        {"id": "urn:ngsi-ld:Shop:2", "type": ["Shop", "$"]},
        {"id": "urn:ngsi-ld:Shop:2", "type": "Shop", "na$me": 1},
        {"id": "urn:ngsi-ld:Shop:2", "type": "Shop", "@name": 1},
        {"id": "urn:ngsi-ld:Shop:2", "type": "Shop", "http://x.org/a|b": 1},
    ],
)
def test_invalid_type_or_attribute_names_are_refused(client: TestClient, body: dict) -> None:
    _bad_data(client.post(ENTITIES, json=body, headers=JSON))
    assert client.get(f"{ENTITIES}/urn:ngsi-ld:Shop:2").status_code == 404


def test_iris_and_plain_names_are_accepted(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Shop:2",
        "type": "https://schema.org/Store",
        "schema:name": "x",
        "https://example.org/attrs#size": 3,
        "opening-hours.v2": "9-5",
    }
    assert client.post(ENTITIES, json=body, headers=JSON).status_code == 201


@pytest.mark.parametrize("attr", ["scope", "id", "type", "na$me"])
def test_replace_attribute_with_an_invalid_name_is_400(with_entity: TestClient, attr: str) -> None:
    r = with_entity.put(
        f"{ENTITIES}/urn:ngsi-ld:Shop:1/attrs/{attr}",
        json={"type": "Property", "value": "/B"},
        headers=JSON,
    )
    _bad_data(r)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", ENTITIES),
        ("PUT", f"{ENTITIES}/urn:ngsi-ld:Shop:1"),
        ("PATCH", f"{ENTITIES}/urn:ngsi-ld:Shop:1"),
        ("POST", f"{ENTITIES}/urn:ngsi-ld:Shop:1/attrs"),
        ("PATCH", f"{ENTITIES}/urn:ngsi-ld:Shop:1/attrs"),
        ("PATCH", f"{ENTITIES}/urn:ngsi-ld:Shop:1/attrs/name"),
        ("PUT", f"{ENTITIES}/urn:ngsi-ld:Shop:1/attrs/name"),
        ("POST", "/ngsi-ld/v1/entityOperations/create"),
        ("POST", "/ngsi-ld/v1/entityOperations/delete"),
        ("POST", "/ngsi-ld/v1/entityOperations/query"),
    ],
)
def test_an_empty_body_is_bad_request_data(with_entity: TestClient, method: str, path: str) -> None:
    _bad_data(with_entity.request(method, path, content=b"", headers=JSON))


def test_invalid_json_stays_invalid_request(client: TestClient) -> None:
    r = client.post(ENTITIES, content=b"{nope", headers=JSON)
    assert r.status_code == 400
    assert r.json()["type"].endswith("InvalidRequest")
