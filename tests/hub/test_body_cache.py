"""The cache of rendered retrieve-by-id bodies (hub/body_cache.py, hub/api/cached.py) never
answers with a stale body, never crosses tenants, tells options apart and stays bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.body_cache import BodyCache, Rendered
from smartcity.hub.runtime import Hub

ID = "urn:ngsi-ld:Bench:1"
URL = f"/ngsi-ld/v1/entities/{ID}"
ENTITY = {
    "id": ID,
    "type": "Bench",
    "speed": {"type": "Property", "value": 50, "observedAt": "2026-11-26T08:00:00Z"},
    "name": {"type": "Property", "value": "one"},
}
REL = "http://www.w3.org/ns/json-ld#context"


@pytest.fixture(params=["lean", "fastapi"])
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    """Both ways a retrieval is answered: the lean path (hub/api/hot.py) and the route."""
    settings.auth_required = False
    app = create_app(settings)
    app.lean_path = request.param == "lean"
    with TestClient(app) as c:
        yield c


def _hub(client: TestClient) -> Hub:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def _speed(client: TestClient, headers: dict[str, str] | None = None) -> object:
    r = client.get(URL + "?options=keyValues", headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()["speed"]


def test_an_update_is_seen_by_the_next_retrieval(client: TestClient) -> None:
    assert client.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
    cache = _hub(client).rendered
    assert cache is not None
    assert _speed(client) == 50
    assert _speed(client) == 50
    assert cache.hits >= 1  # the second retrieval came from the cache
    for value in (51, 52, 53):
        patch = client.patch(f"{URL}/attrs/speed", json={"value": value})
        assert patch.status_code == 204
        assert _speed(client) == value
    # Every kind of write, not only the partial update.
    replaced = {**ENTITY, "speed": {"type": "Property", "value": 7}}
    del replaced["id"]
    assert client.put(URL, json={**replaced, "id": ID}).status_code == 204
    assert _speed(client) == 7
    assert client.delete(URL).status_code == 204
    assert client.get(URL).status_code == 404


def test_an_acknowledged_update_is_kept_in_the_history(client: TestClient) -> None:
    assert client.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
    body = {"value": 61, "observedAt": "2026-11-26T09:00:00Z"}
    assert client.patch(f"{URL}/attrs/speed", json=body).status_code == 204
    assert _speed(client) == 61
    temporal = client.get(f"/ngsi-ld/v1/temporal/entities/{ID}?attrs=speed")
    assert temporal.status_code == 200
    values = sorted(i["value"] for i in temporal.json()["speed"])
    assert values == [50, 61]


def test_tenants_never_see_each_others_entities(client: TestClient) -> None:
    for tenant, value in (("a", 1), ("b", 2)):
        entity = {**ENTITY, "speed": {"type": "Property", "value": value}}
        r = client.post("/ngsi-ld/v1/entities", json=entity, headers={"NGSILD-Tenant": tenant})
        assert r.status_code == 201
    for _ in range(3):
        assert _speed(client, {"NGSILD-Tenant": "a"}) == 1
        assert _speed(client, {"NGSILD-Tenant": "b"}) == 2
        assert client.get(URL, headers={"NGSILD-Tenant": "c"}).status_code == 404
        assert client.get(URL).status_code == 404  # the default tenant has none


def test_options_media_types_and_contexts_give_their_own_bodies(client: TestClient) -> None:
    assert client.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
    hosted = {"@context": {"velocity": "https://uri.etsi.org/ngsi-ld/default-context/speed"}}
    r = client.post("/ngsi-ld/v1/jsonldContexts", json=hosted)
    assert r.status_code == 201
    link = f'<http://hub.test{r.headers["location"]}>; rel="{REL}"; type="application/ld+json"'
    for _ in range(2):  # the second round is answered from the cache
        normalized = client.get(URL).json()
        assert normalized["speed"]["value"] == 50
        assert client.get(URL + "?options=keyValues").json()["speed"] == 50
        assert set(client.get(URL + "?attrs=name").json()) == {"id", "type", "name"}
        ld = client.get(URL, headers={"Accept": "application/ld+json"})
        assert ld.headers["content-type"] == "application/ld+json"
        assert "@context" in ld.json()
        assert "link" in client.get(URL).headers
        compacted = client.get(URL, headers={"Link": link}).json()
        assert compacted["velocity"]["value"] == 50 and "speed" not in compacted
    # The cached body of a request with options is not the answer to a bad one.
    assert client.get(URL + "?options=bogus").status_code == 400
    missing = "/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:404"
    assert client.get(missing + "?options=bogus").status_code == 400  # checked before the read


def _rendered(n: int) -> Rendered:
    return Rendered(b"x" * n, ((b"content-type", b"application/json"),))


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = BodyCache(max_bytes=5_000)
    for i in range(100):
        cache.put("", f"e{i}", "{}", ("q",), _rendered(500))
        assert cache.bytes <= 5_000
    assert 0 < len(cache) < 10
    assert cache.get("", "e99", "{}", ("q",)) is not None
    assert cache.get("", "e0", "{}", ("q",)) is None
    # Used recently, kept; the oldest others go.
    cache.put("", "e98", "{}", ("q",), _rendered(500))
    cache.get("", "e98", "{}", ("q",))
    for i in range(100, 105):
        cache.put("", f"e{i}", "{}", ("q",), _rendered(500))
    assert cache.get("", "e98", "{}", ("q",)) is not None
    cache.put("", "big", "{}", ("q",), _rendered(10_000))  # larger than the whole cache
    assert cache.get("", "big", "{}", ("q",)) is None
    assert cache.bytes <= 5_000


def test_the_key_is_the_stored_text_and_the_tenant() -> None:
    cache = BodyCache(max_bytes=1_000_000)
    cache.put("a", "e", '{"v":1}', ("q",), _rendered(3))
    assert cache.get("a", "e", '{"v":2}', ("q",)) is None  # the document changed
    assert cache.get("b", "e", '{"v":1}', ("q",)) is None  # another tenant
    assert cache.get("a", "e", '{"v":1}', ("q2",)) is None  # other options
    assert cache.get("a", "e", '{"v":1}', ("q",)) is not None


def test_the_cache_can_be_turned_off(settings: Settings) -> None:
    settings.auth_required = False
    settings.limits.render_cache_bytes = 0
    with TestClient(create_app(settings)) as c:
        assert c.app.state.hub.rendered is None  # type: ignore[attr-defined]
        assert c.post("/ngsi-ld/v1/entities", json=ENTITY).status_code == 201
        assert _speed(c) == 50
