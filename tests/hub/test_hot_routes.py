"""The lean path (hub/api/hot.py) answers exactly as the FastAPI routes it stands in for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.api.hot import route


@pytest.mark.parametrize(
    ("method", "path", "handled"),
    [
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1", True),
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:a/b", True),  # ids may hold '/'
        ("GET", "/ngsi-ld/v1/entities/", False),
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs/speed", False),
        ("GET", "/ngsi-ld/v1/entities", True),  # the query
        ("POST", "/ngsi-ld/v1/entities", False),
        ("DELETE", "/ngsi-ld/v1/entities", False),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs/speed", True),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs", False),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs/", False),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1", False),
        ("PATCH", "/ngsi-ld/v1/entities//attrs/speed", False),
        ("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1", False),
        ("GET", "/ngsi-ld/v1/types", False),
    ],
)
def test_route_recognises_only_the_hot_requests(method: str, path: str, handled: bool) -> None:
    assert (route(method, path) is not None) is handled


def test_patch_splits_at_the_last_attrs_segment() -> None:
    # Mirrors the FastAPI pattern '/entities/{entityId:path}/attrs/{attrId}' (greedy id).
    assert route("PATCH", "/ngsi-ld/v1/entities/urn:x/attrs/y/attrs/speed") is not None


def _clients(settings: Settings, auth: bool) -> Iterator[tuple[TestClient, TestClient]]:
    settings.auth_required = auth
    lean = create_app(settings)
    plain = create_app(settings)
    plain.lean_path = False
    with TestClient(lean) as a, TestClient(plain) as b:
        yield a, b


@pytest.fixture
def pair(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    yield from _clients(settings, auth=False)


ENTITY = {
    "id": "urn:ngsi-ld:Bench:1",
    "type": "Bench",
    "speed": {"type": "Property", "value": 50, "observedAt": "2026-11-26T08:00:00Z"},
    "name": {"type": "LanguageProperty", "languageMap": {"en": "one", "zh-Hant": "一"}},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [114.1, 22.3]}},
}


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?options=keyValues", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?options=sysAttrs&attrs=speed", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?lang=zh-Hant&format=concise", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?pick=id,speed", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?join=flat&joinLevel=2", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?join=inline&pick=id,near{name}", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?join=sideways", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1", {"Accept": "application/ld+json"}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1", {"Accept": "application/geo+json"}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1", {"Accept": "text/csv"}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?options=bogus", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?limt=5", {}),  # unknown parameter
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?type=Bench", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:2", {}),
        ("/ngsi-ld/v1/entities/not%20a%20uri", {}),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1", {"NGSILD-Tenant": "other"}),
    ],
)
def test_retrieve_answers_as_the_route_does(
    pair: tuple[TestClient, TestClient], url: str, headers: dict[str, str]
) -> None:
    lean, plain = pair
    assert lean.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
    a, b = lean.get(url, headers=headers), plain.get(url, headers=headers)
    assert (a.status_code, a.headers.get("content-type"), a.headers.get("link")) == (
        b.status_code,
        b.headers.get("content-type"),
        b.headers.get("link"),
    )
    assert a.json() == b.json()


SECOND = {
    "id": "urn:ngsi-ld:Bench:2",
    "type": "Bench",
    "speed": {"type": "Property", "value": 70},
    "near": {"type": "Relationship", "object": "urn:ngsi-ld:Bench:1"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [114.2, 22.3]}},
}


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("type=Bench", {}),
        ("type=Bench&q=speed%3E60", {}),
        ("type=Bench&q=speed%3E60&q=speed%3C60", {}),  # repeated: the last one counts
        ("type=Bench&q=speed%3E", {}),  # a q that does not parse
        ("type=Bench&limit=1&offset=1&count=true", {}),
        ("type=Bench&limit=0&count=true", {}),
        ("type=Bench&limit=-1", {}),
        ("type=Bench&orderBy=speed;desc", {}),
        ("type=Bench&attrs=speed&options=keyValues", {}),
        ("type=Bench&pick=id,speed&attrs=speed", {}),  # pick with attrs: 400
        ("type=Bench&join=inline", {}),
        ("type=Bench&format=simplified&lang=zh-Hant", {}),
        ("id=urn:ngsi-ld:Bench:2,urn:ngsi-ld:Bench:1", {}),
        ("idPattern=.*:2", {}),
        (
            "type=Bench&georel=near%3BmaxDistance%3D%3D20000&geometry=Point&coordinates=[114.1,22.3]",
            {},
        ),
        ("type=Bench", {"Accept": "application/geo+json"}),
        ("type=Bench", {"Accept": "application/ld+json"}),
        ("type=Bench", {"Accept": "text/csv"}),
        ("type=Bench&type=", {}),
        ("type=Bench&limt=5", {}),  # unknown parameter
        ("", {}),  # none of the minimal parameters
        ("type=Bench", {"NGSILD-Tenant": "other"}),
        ("local=true&type=Bench", {}),
    ],
)
def test_query_answers_as_the_route_does(
    pair: tuple[TestClient, TestClient], query: str, headers: dict[str, str]
) -> None:
    lean, plain = pair
    for entity in (ENTITY, SECOND):
        assert lean.post("/ngsi-ld/v1/entities", json=entity).status_code == 201
    url = "/ngsi-ld/v1/entities" + (f"?{query}" if query else "")
    a, b = lean.get(url, headers=headers), plain.get(url, headers=headers)
    assert a.status_code == b.status_code
    for header in ("content-type", "link", "ngsild-results-count", "content-range"):
        assert a.headers.get(header) == b.headers.get(header), header
    assert a.content == b.content


@pytest.mark.parametrize(
    ("attr", "body", "content_type"),
    [
        ("speed", b'{"value": 60}', "application/json"),
        ("speed", b'{"value": 61, "observedAt": "2026-11-26T09:00:00Z"}', "application/json"),
        ("speed", b"{}", "application/json"),
        ("speed", b"[1]", "application/json"),
        ("speed", b"{not json", "application/json"),
        ("speed", b'{"value": 1}', "text/plain"),
        ("missing", b'{"value": 1}', "application/json"),
        ("bad name!", b'{"value": 1}', "application/json"),
    ],
)
def test_patch_answers_as_the_route_does(
    pair: tuple[TestClient, TestClient], attr: str, body: bytes, content_type: str
) -> None:
    lean, plain = pair
    assert lean.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
    url = f"/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1/attrs/{attr}"
    headers = {"Content-Type": content_type}
    a = lean.patch(url, content=body, headers=headers)
    after_a = lean.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?options=keyValues").json()
    b = plain.patch(url, content=body, headers=headers)
    after_b = plain.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1?options=keyValues").json()
    assert a.status_code == b.status_code
    assert a.content == b.content
    assert after_a == after_b


def test_keys_are_checked_on_the_lean_path(settings: Settings) -> None:
    for lean, plain in _clients(settings, auth=True):
        url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:1/attrs/speed"
        a = lean.patch(url, json={"value": 1})
        b = plain.patch(url, json={"value": 1})
        assert a.status_code == b.status_code == 401
        assert a.headers["www-authenticate"] == "Bearer"
        assert a.json() == b.json()
