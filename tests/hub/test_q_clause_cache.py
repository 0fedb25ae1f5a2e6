"""A q expression's SQL clause is built once and reused (hub/query/qsql.py): reuse must never
change an answer. The same q text means different attributes under different @contexts, and
``true`` is not ``1`` even though Python hashes them alike."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
REL = "http://www.w3.org/ns/json-ld#context"


def link(client: TestClient, url: str, terms: dict[str, str]) -> dict[str, str]:
    client.app.state.hub.contexts.add(url, {"@context": terms})  # type: ignore[attr-defined]
    return {"Link": f'<{url}>; rel="{REL}"; type="application/ld+json"'}


def ids(client: TestClient, query: str, headers: dict[str, str] | None = None) -> list[str]:
    r = client.get(f"/ngsi-ld/v1/entities?type=Sensor&{query}", headers=headers or {})
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


def sensor(n: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Sensor:{n}", "type": "Sensor", **attrs}


def test_one_q_text_under_two_contexts_reads_two_attributes(client: TestClient) -> None:
    for body in (
        sensor(1, **{"https://a.example/level": 5}),
        sensor(2, **{"https://b.example/level": 5}),
    ):
        assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    a = link(client, "https://example.org/a.jsonld", {"level": "https://a.example/level"})
    b = link(client, "https://example.org/b.jsonld", {"level": "https://b.example/level"})
    for _ in range(2):  # the second round is answered with kept clauses
        assert ids(client, "q=level==5", a) == ["urn:ngsi-ld:Sensor:1"]
        assert ids(client, "q=level==5", b) == ["urn:ngsi-ld:Sensor:2"]
        assert ids(client, "q=level==5") == []  # the default context: another IRI again


def test_true_is_not_one(client: TestClient) -> None:
    for body in (sensor(1, flag=True), sensor(2, flag=1), sensor(3, flag=1.5)):
        assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    for _ in range(2):
        assert ids(client, "q=flag==true") == ["urn:ngsi-ld:Sensor:1"]
        assert ids(client, "q=flag==1") == ["urn:ngsi-ld:Sensor:2"]
        assert ids(client, "q=flag==1.5") == ["urn:ngsi-ld:Sensor:3"]
