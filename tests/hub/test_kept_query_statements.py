"""An entity query's statements are kept per shape, with the page bound at execution
(hub/kept.py, ``repository.query``): a kept statement must answer for its own page, tenant,
q and types, never for those of the query it was built for."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from smartcity.hub import repository
from smartcity.hub.kept import Same, Shaped

JSON = {"Content-Type": "application/json"}


def sensor(n: int, kind: str = "Sensor", **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind, **attrs}


def ids(client: TestClient, query: str, headers: dict[str, str] | None = None) -> list[str]:
    r = client.get(f"/ngsi-ld/v1/entities?{query}", headers=headers or {})
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def test_pages_of_one_shape_are_each_their_own(client: TestClient) -> None:
    for n in range(7):
        body = sensor(n, level={"type": "Property", "value": n})
        assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    every = [f"urn:ngsi-ld:Sensor:{n}" for n in range(7)]
    for _ in range(2):  # the second round is answered with kept statements
        assert ids(client, "type=Sensor&limit=3") == every[:3]
        assert ids(client, "type=Sensor&limit=3&offset=3") == every[3:6]
        assert ids(client, "type=Sensor&limit=3&offset=6") == every[6:]
        assert ids(client, "type=Sensor&q=level%3E2&limit=2&offset=1") == every[4:6]
        r = client.get("/ngsi-ld/v1/entities?type=Sensor&q=level%3E2&limit=0&count=true")
        assert (r.json(), r.headers["NGSILD-Results-Count"]) == ([], "4")
        assert ids(client, "type=Sensor&q=level%3C2") == every[:2]
        ordered = "type=Sensor&orderBy=id&limit=2&offset=2"
        assert ids(client, ordered) == sorted(every)[2:4]


def test_a_kept_statement_does_not_cross_tenants_or_types(client: TestClient) -> None:
    for tenant in ("", "east"):
        headers = {**JSON, "NGSILD-Tenant": tenant} if tenant else JSON
        for n in range(2):
            body = sensor(n, "Sensor" if tenant else "Meter", level=n)
            r = client.post("/ngsi-ld/v1/entities", json=body, headers=headers)
            assert r.status_code == 201
    east = {"NGSILD-Tenant": "east"}
    for _ in range(2):
        assert ids(client, "type=Meter&q=level%3E0") == ["urn:ngsi-ld:Meter:1"]
        assert ids(client, "type=Sensor&q=level%3E0") == []
        assert ids(client, "type=Sensor&q=level%3E0", east) == ["urn:ngsi-ld:Sensor:1"]
        assert ids(client, "type=Meter&q=level%3E0", east) == []


def test_a_repeated_query_is_answered_with_kept_statements(client: TestClient) -> None:
    body = sensor(1, level={"type": "Property", "value": 1})
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    ids(client, "type=Sensor&q=level%3E0&limit=5")
    before = repository._kept_statements.cache_info().hits
    assert ids(client, "type=Sensor&q=level%3E0&limit=7&offset=0") == ["urn:ngsi-ld:Sensor:1"]
    assert repository._kept_statements.cache_info().hits == before + 1


def test_shapes_holding_coordinates_or_many_ids_are_not_kept() -> None:
    flt = repository.EntityFilter(types=[frozenset({"T"})])
    assert repository._shape("", flt, "sqlite", None) is not None
    boxed = repository.EntityFilter(geo_box=("location", (0.0, 0.0, 1.0, 1.0)))
    assert repository._shape("", boxed, "sqlite", None) is None
    many = repository.EntityFilter(ids=[f"urn:x:{n}" for n in range(101)])
    assert repository._shape("", many, "sqlite", None) is None


def test_expressions_in_a_shape_are_equal_only_to_themselves() -> None:
    a, b = object(), object()
    assert Same(a) == Same(a) and hash(Same(a)) == hash(Same(a))
    assert Same(a) != Same(b)
    # A shaped value is its shape: what it carries besides does not tell two apart.
    assert Shaped(("s", Same(a)), "built from this") == Shaped(("s", Same(a)), "or this")
    assert Shaped(("s", Same(a))) != Shaped(("s", Same(b)))
