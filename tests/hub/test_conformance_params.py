"""NGSI-LD 1.8 query parameters that the hub used to ignore or refuse: ``containedBy`` (linked
entity retrieval), ``csf`` (context source filter), the Query body's ``datasetId``,
``containedBy`` and ``csf``, and the entity-only parameters refused by the temporal API."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ERR = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
E = "/ngsi-ld/v1/entities"
BUILDING = "urn:ngsi-ld:Building:cb1"
CITY = "urn:ngsi-ld:City:cb1"
COUNTRY = "urn:ngsi-ld:Country:cb1"


def rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


@pytest.fixture
def graph(client: TestClient) -> TestClient:
    for entity in (
        {"id": COUNTRY, "type": "Country", "name": prop("France")},
        {"id": CITY, "type": "City", "name": prop("Paris"), "isInCountry": rel(COUNTRY)},
        {"id": BUILDING, "type": "Building", "name": prop("B"), "locatedAt": rel(CITY)},
    ):
        assert client.post(E, json=entity, headers=JSON).status_code == 201
    return client


def ids(body: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in body]


def test_contained_by_entities_are_not_linked_again(graph: TestClient) -> None:
    """containedBy lists what the asker already holds (clause 4.5.23): those are left out of
    the entity graph, and the links beyond them are not followed either."""
    params = {"type": "Building", "join": "flat", "joinLevel": "3"}
    assert ids(graph.get(E, params=params).json()) == [BUILDING, CITY, COUNTRY]
    found = graph.get(E, params={**params, "containedBy": COUNTRY}).json()
    assert ids(found) == [BUILDING, CITY]
    found = graph.get(E, params={**params, "containedBy": CITY}).json()
    assert ids(found) == [BUILDING]


def test_contained_by_on_retrieve_and_post_query(graph: TestClient) -> None:
    inline = graph.get(
        f"{E}/{BUILDING}", params={"join": "inline", "joinLevel": "2", "containedBy": COUNTRY}
    ).json()
    assert inline["locatedAt"]["entity"]["id"] == CITY
    assert "entity" not in inline["locatedAt"]["entity"]["isInCountry"]
    query = {"type": "Query", "entities": [{"type": "Building"}], "containedBy": [CITY]}
    r = graph.post("/ngsi-ld/v1/entityOperations/query?join=flat&joinLevel=2", json=query)
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [BUILDING]


@pytest.mark.parametrize("value", ["not-a-uri", "urn:ngsi-ld:City:cb1,,urn:a:b"])
def test_contained_by_must_list_entity_ids(graph: TestClient, value: str) -> None:
    r = graph.get(E, params={"type": "Building", "join": "flat", "containedBy": value})
    assert r.status_code == 400
    assert r.json()["type"] == ERR
    assert "containedBy" in r.json()["detail"]


def test_query_body_takes_dataset_id(client: TestClient) -> None:
    """The Query body's datasetId (clause 5.2.23) selects attribute instances, as the URL
    parameter does (it was refused as an unknown member)."""
    entity = {
        "id": "urn:ngsi-ld:Sensor:ds1",
        "type": "Sensor",
        "speed": [prop(1), {**prop(2), "datasetId": "urn:ngsi-ld:Dataset:radar"}],
    }
    assert client.post(E, json=entity, headers=JSON).status_code == 201
    query = {"type": "Query", "entities": [{"type": "Sensor"}]}
    r = client.post(
        "/ngsi-ld/v1/entityOperations/query",
        json={**query, "datasetId": ["urn:ngsi-ld:Dataset:radar"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()[0]["speed"]["value"] == 2
    r = client.post(
        "/ngsi-ld/v1/temporal/entityOperations/query",
        json={**query, "datasetId": ["@none"], "temporalQ": {}},
    )
    assert r.status_code == 200, r.text
    assert [i["value"] for i in r.json()[0]["speed"]] == [1]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_csf_selects_the_sources_a_query_is_forwarded_to(client: TestClient) -> None:
    """csf (clause 4.9) filters the matching registrations by their own members: a source it
    leaves out is not asked (no warning about it), one it keeps is (and, being down, warned)."""
    registration = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:dead",
        "type": "ContextSourceRegistration",
        "registrationName": "EPD",
        "information": [{"entities": [{"type": "Sensor"}]}],
        "endpoint": f"http://127.0.0.1:{_dead_port()}",
    }
    r = client.post("/ngsi-ld/v1/csourceRegistrations", json=registration)
    assert r.status_code == 201, r.text
    asked = client.get(E, params={"type": "Sensor", "csf": 'registrationName=="EPD"'})
    assert asked.status_code == 200
    assert "dead" in asked.headers.get("NGSILD-Warning", "")
    skipped = client.get(E, params={"type": "Sensor", "csf": 'registrationName=="TD"'})
    assert skipped.status_code == 200
    assert "NGSILD-Warning" not in skipped.headers
    # The registration leaves mode out: it is inclusive, the default.
    default = client.get(E, params={"type": "Sensor", "csf": 'mode=="inclusive"'})
    assert "dead" in default.headers.get("NGSILD-Warning", "")
    temporal = client.get(
        "/ngsi-ld/v1/temporal/entities", params={"type": "Sensor", "csf": 'mode=="exclusive"'}
    )
    assert temporal.status_code == 200
    assert "NGSILD-Warning" not in temporal.headers


@pytest.mark.parametrize("path", [E, "/ngsi-ld/v1/temporal/entities"])
def test_malformed_csf_is_bad_request(client: TestClient, path: str) -> None:
    r = client.get(path, params={"type": "Sensor", "csf": "mode=="})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("csf")


@pytest.mark.parametrize(
    "params",
    [
        {"join": "inline"},
        {"joinLevel": "2"},
        {"containedBy": CITY},
        {"entityMap": "true"},
    ],
)
def test_temporal_api_refuses_entity_only_parameters(
    graph: TestClient, params: dict[str, str]
) -> None:
    """Linked entity retrieval and EntityMaps belong to Retrieve/Query Entities (clauses
    5.7.1, 5.7.2): the temporal operations say so rather than ignore them."""
    for r in (
        graph.get("/ngsi-ld/v1/temporal/entities", params={"type": "Building", **params}),
        graph.get(f"/ngsi-ld/v1/temporal/entities/{BUILDING}", params=params),
    ):
        assert r.status_code == 400, r.text
        assert r.json()["type"] == ERR
        assert next(iter(params)) in r.json()["detail"]
    body = {"type": "Query", "entities": [{"type": "Building"}], "temporalQ": {}}
    r = graph.post("/ngsi-ld/v1/temporal/entityOperations/query", json=body, params=params)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "params",
    [{"attrs": "name,,locatedAt"}, {"attrs": "name,"}, {"omit": "name,"}, {"pick": ",id"}],
)
@pytest.mark.parametrize(
    "path",
    [
        E,
        f"{E}/{BUILDING}",
        "/ngsi-ld/v1/temporal/entities",
        f"/ngsi-ld/v1/temporal/entities/{BUILDING}",
    ],
)
def test_consecutive_separators_are_bad_request_data(
    graph: TestClient, path: str, params: dict[str, str]
) -> None:
    """An empty name in attrs/pick/omit is a 400 everywhere (it was skipped in attrs, and in
    the temporal API's pick/omit), as the projection language already had it for pick."""
    r = graph.get(path, params={"type": "Building", **params})
    assert r.status_code == 400, r.text
    assert r.json()["type"] == ERR
