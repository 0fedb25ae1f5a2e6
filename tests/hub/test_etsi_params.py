"""ETSI conformance, common behaviours: query parameters an operation does not know.

ProblemDetails (clause 5.5.2 of GS CIM 009 v1.8.1, ``InvalidRequest``): "If an HTTP request for
an operation contains parameters that are incompatible with the operation ... an HTTP error
response of type InvalidRequest should be returned." A misspelt parameter (``limt``, ``atrs``)
silently ignored would answer something the client did not ask for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Settings

JSON = {"Content-Type": "application/json"}
INVALID = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"
BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
V1 = "/ngsi-ld/v1"
ID = "urn:ngsi-ld:Sensor:p1"
SUB = {
    "type": "Subscription",
    "entities": [{"type": "Sensor"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
}


@pytest.fixture
def sensor(client: TestClient) -> TestClient:
    entity = {"id": ID, "type": "Sensor", "speed": {"type": "Property", "value": 1}}
    assert client.post(f"{V1}/entities", json=entity, headers=JSON).status_code == 201
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/entities?type=Sensor", None),
        ("GET", f"/entities/{ID}", None),
        ("GET", f"/entities/{ID}/", None),  # the trailing-slash spelling too
        ("POST", "/entities", {"id": "urn:ngsi-ld:Sensor:p2", "type": "Sensor"}),
        ("PATCH", f"/entities/{ID}/attrs/speed", {"value": 2}),  # the lean path's route
        ("PATCH", f"/entities/{ID}/attrs", {"speed": {"value": 2}}),
        ("DELETE", f"/entities/{ID}", None),
        ("GET", "/types", None),
        ("GET", "/attributes", None),
        ("GET", "/subscriptions", None),
        ("POST", "/subscriptions", SUB),
        ("GET", "/temporal/entities?type=Sensor", None),
        ("GET", f"/temporal/entities/{ID}", None),
        ("POST", "/entityOperations/query", {"type": "Query", "entities": [{"type": "Sensor"}]}),
        ("GET", "/csourceRegistrations", None),
    ],
)
def test_unknown_query_parameter_is_invalid_request(
    sensor: TestClient, method: str, path: str, body: object
) -> None:
    sep = "&" if "?" in path else "?"
    r = sensor.request(method, f"{V1}{path}{sep}limt=5", json=body)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"] == INVALID
    assert "limt" in problem["detail"]
    # nothing was done: the entity is as it was
    assert sensor.get(f"{V1}/entities/{ID}").json()["speed"]["value"] == 1


def test_known_parameters_still_answer(sensor: TestClient) -> None:
    """local (clause 6.3.18) is known to every operation; the spec's own parameters are."""
    assert sensor.get(f"{V1}/entities", params={"type": "Sensor", "local": "true"}).status_code
    r = sensor.get(f"{V1}/entities/{ID}", params={"options": "keyValues", "local": "true"})
    assert r.status_code == 200
    assert r.json()["speed"] == 1
    r = sensor.patch(f"{V1}/entities/{ID}/attrs/speed", params={"local": "true"}, json={"value": 3})
    assert r.status_code == 204


def test_retrieve_takes_the_entity_type(sensor: TestClient) -> None:
    """Retrieve Entity's ``type`` (clause 6.5.3.1) names the type the client expects: an entity
    of another type is not the one asked for."""
    assert sensor.get(f"{V1}/entities/{ID}", params={"type": "Sensor"}).status_code == 200
    r = sensor.get(f"{V1}/entities/{ID}", params={"type": "Building"})
    assert r.status_code == 404
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


def test_refused_entity_parameters_keep_their_reason(sensor: TestClient) -> None:
    """join is known to the query language but refused by the temporal API, with the reason
    (BadRequestData), not as an unknown parameter."""
    r = sensor.get(f"{V1}/temporal/entities", params={"type": "Sensor", "join": "flat"})
    assert r.status_code == 400
    assert r.json()["type"] == BAD
    assert "Retrieve and Query Entities" in r.json()["detail"]


def test_retrieve_temporal_takes_the_entity_type(sensor: TestClient) -> None:
    """As on Retrieve Entity: distributed clients name the type on the temporal retrieval too."""
    path = f"{V1}/temporal/entities/{ID}"
    assert sensor.get(path, params={"type": "Sensor"}).status_code == 200
    assert sensor.get(path, params={"type": "Building"}).status_code == 404


def test_writes_to_one_entity_take_its_type(sensor: TestClient) -> None:
    """The specification lists ``type`` on the writes to one entity (distributed operations):
    a client that gives it is answered as without."""
    given = {"type": "Sensor"}
    r = sensor.patch(f"{V1}/entities/{ID}/attrs/speed", params=given, json={"value": 4})
    assert r.status_code == 204
    r = sensor.post(f"{V1}/entities/{ID}/attrs", params=given, json={"n": {"value": 1}})
    assert r.status_code == 204
    assert sensor.delete(f"{V1}/entities/{ID}/attrs/n", params=given).status_code == 204
    assert sensor.delete(f"{V1}/entities/{ID}", params=given).status_code == 204


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/entities?type=Sensor&options=bogus"),
        ("GET", f"/entities/{ID}?options=bogus"),
        ("GET", f"/temporal/entities/{ID}?options=bogus"),
        ("POST", f"/entities/{ID}/attrs?options=bogus"),
    ],
)
def test_unsupported_option_is_invalid_request(sensor: TestClient, method: str, path: str) -> None:
    """Clause 5.5.2: "values of the options parameter that are not supported by the
    operation" are InvalidRequest too."""
    r = sensor.request(
        method, f"{V1}{path}", json={"n": {"value": 1}} if method == "POST" else None
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == INVALID
    assert "bogus" in r.json()["detail"]


SPEC = Path(__file__).resolve().parents[2].parent / "shared/ngsi-ld/ngsi-ld-api-v1.8.1.yaml"


def _spec_parameters() -> dict[tuple[str, str], set[str]]:
    """(method, path with {} for path parameters) -> the query parameters the OpenAPI of the
    specification gives the operation."""
    spec: Any = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    shared = spec["components"]["parameters"]

    def resolved(p: dict[str, Any]) -> dict[str, Any]:
        return shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p

    found: dict[tuple[str, str], set[str]] = {}
    for path, operations in spec["paths"].items():
        common = operations.get("parameters", [])
        for method, op in operations.items():
            if method == "parameters":
                continue
            params = [resolved(p) for p in common + op.get("parameters", [])]
            key = (method, re.sub(r"\{[^}]*\}", "{}", path))
            found[key] = {p["name"] for p in params if p["in"] == "query"}
    return found


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/ngsi-ld is not present")
def test_every_parameter_the_specification_gives_is_known(settings: Settings) -> None:
    """The routes declare every query parameter the v1.8.1 OpenAPI gives their operation, so
    none of them is refused as unknown."""
    served = create_app(settings, check_schema=False).openapi()["paths"]
    declared = {
        (method, re.sub(r"\{[^}]*\}", "{}", path.removeprefix(V1))): {
            p["name"] for p in op.get("parameters", []) if p["in"] == "query"
        }
        for path, operations in served.items()
        if path.startswith(V1)
        for method, op in operations.items()
    }
    given = _spec_parameters()
    assert len(given.keys() & declared.keys()) >= 50  # all 53 operations but sourceIdentity
    missing = {
        key: sorted(names - declared[key] - {"local"})
        for key, names in given.items()
        if key in declared and names - declared[key] - {"local"}
    }
    assert missing == {}
