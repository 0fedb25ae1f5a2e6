"""Strings no backend or header can carry: refused with 400 at the edge, alike on both backends.

Issue #11: on PostgreSQL a U+0000 in an entity id, an attribute value, a PATCH body, a reading,
a subscription's q, or %00 in q or in the path answered 500; on SQLite an id with U+0000 was
stored and the client's connection dropped (the Location header could not carry it), and batch
upsert stored it with a 201. hub/text.py and hub/api/edge.py decide; docs/hub.md says what.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.hostile.harness import Server, assert_problem

NGSI = "/ngsi-ld/v1"
GOOD = "urn:ngsi-ld:Str:good"
NUL_ID = "urn:ngsi-ld:Str:a\x00b"
CTRL_ID = "urn:ngsi-ld:Str:a\x01b"


def entity(entity_id: str = GOOD, value: Any = "fine") -> dict[str, Any]:
    return {"id": entity_id, "type": "Str", "name": {"type": "Property", "value": value}}


@pytest.fixture(scope="module")
def http(server: Server) -> Any:
    with server.client(headers=server.auth) as client:
        r = client.post(f"{NGSI}/entities", json=entity())
        assert r.status_code in (201, 409), r.text
        yield client


def stored_names(http: httpx.Client) -> list[Any]:
    r = http.get(f"{NGSI}/entities", params={"type": "Str", "limit": 100})
    assert r.status_code == 200, r.text
    return sorted((e["id"], e.get("name", {}).get("value")) for e in r.json())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/entities", entity(NUL_ID)),
        ("POST", "/entities", entity(CTRL_ID)),
        ("POST", "/entities", entity("urn:ngsi-ld:Str:2", "a\x00b")),
        ("POST", "/entities", {**entity("urn:ngsi-ld:Str:3"), "na\x00me": {"value": 1}}),
        ("PATCH", f"/entities/{GOOD}/attrs", {"name": {"type": "Property", "value": "a\x00"}}),
        ("PATCH", f"/entities/{GOOD}/attrs/name", {"type": "Property", "value": "a\x00"}),
        ("POST", f"/entities/{GOOD}/attrs", {"other": {"type": "Property", "value": "\x00"}}),
        ("PUT", f"/entities/{GOOD}", {"type": "Str", "name": {"value": "\x00"}}),
        (
            "POST",
            "/subscriptions",
            {
                "type": "Subscription",
                "entities": [{"type": "Str"}],
                "q": 'name=="a\x00"',
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/"}},
            },
        ),
        (
            "POST",
            "/temporal/entities",
            {
                "id": "urn:ngsi-ld:Str:t",
                "type": "Str",
                "name": [{"value": "a\x00", "observedAt": "2024-01-01T00:00:00Z"}],
            },
        ),
        ("POST", "/jsonldContexts", {"@context": {"name\x00": "https://example.org/name"}}),
    ],
    ids=[
        "id",
        "control-char-id",
        "value",
        "attribute-name",
        "patch-attrs",
        "patch-attr",
        "append",
        "replace",
        "subscription-q",
        "temporal",
        "hosted-context",
    ],
)
def test_a_nul_in_a_json_body_is_refused_and_nothing_changes(
    http: httpx.Client, method: str, path: str, body: Any
) -> None:
    before = stored_names(http)
    # Other modules' servers share the worker's database: compare, do not expect it empty.
    subscriptions = http.get(f"{NGSI}/subscriptions").json()
    r = http.request(method, NGSI + path, json=body)
    problem = assert_problem(r, 400)
    assert "U+0000" in problem["detail"] or "U+0001" in problem["detail"], problem
    assert stored_names(http) == before
    assert http.get(f"{NGSI}/subscriptions").json() == subscriptions


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"{NGSI}/entities", {"type": "Str", "q": 'name=="\x00"'}),
        (f"{NGSI}/entities", {"type": "Str\x00"}),
        (f"{NGSI}/entities/urn:ngsi-ld:Str:%00", {}),
        (f"{NGSI}/entities/urn:ngsi-ld:Str:%01", {}),
        (f"{NGSI}/entities/urn:ngsi-ld:Str:%FF", {}),
        ("/en/measures/%00", {}),
    ],
    ids=["q", "type", "path-nul", "path-control", "path-not-utf8", "site-path"],
)
def test_nul_in_a_path_or_query_string_is_refused(
    http: httpx.Client, path: str, params: dict[str, str]
) -> None:
    assert_problem(http.get(path, params=params), 400)
    assert_problem(http.delete(path, params=params), 400)
    assert [e[0] for e in stored_names(http)] == [GOOD]


def test_batch_upsert_refuses_only_the_entities_that_hold_a_nul(http: httpx.Client) -> None:
    r = http.post(
        f"{NGSI}/entityOperations/upsert",
        json=[
            entity("urn:ngsi-ld:Str:batch-ok", "kept"),
            entity(NUL_ID),
            entity("urn:ngsi-ld:Str:batch-bad", "a\x00b"),
        ],
    )
    assert r.status_code == 207, r.text
    errors = r.json()["errors"]
    assert len(errors) == 2 and all(e["error"]["status"] == 400 for e in errors), errors
    assert ("urn:ngsi-ld:Str:batch-ok", "kept") in stored_names(http)
    assert "urn:ngsi-ld:Str:batch-bad" not in [e[0] for e in stored_names(http)]
    deleted = http.post(f"{NGSI}/entityOperations/delete", json=["urn:ngsi-ld:Str:batch-ok"])
    assert deleted.status_code == 204, deleted.text


def test_a_non_ascii_id_is_stored_and_its_location_header_works(http: httpx.Client) -> None:
    """Hong Kong names: the id is an IRI; Location carries it percent-encoded (a header cannot
    carry it raw), and the client gets its 201 for what was stored."""
    entity_id = "urn:ngsi-ld:Str:天晴邨-50%"
    r = http.post(f"{NGSI}/entities", json=entity(entity_id, "天晴"))
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.isascii() and "%25" in location
    fetched = http.get(location)
    assert fetched.status_code == 200 and fetched.json()["id"] == entity_id
    assert http.delete(location).status_code == 204


def test_a_device_reading_with_a_nul_is_refused_per_reading(
    server: Server, http: httpx.Client
) -> None:
    r = http.post(
        "/api/v1/devices",
        json={
            "id": "str-1",
            "entity_id": "urn:ngsi-ld:StrFeed:1",
            "entity_type": "StrFeed",
            "attributes": {"label": {"name": "label"}},
        },
    )
    assert r.status_code == 201, r.text
    device = {"Authorization": f"Bearer {r.json()['secret']}"}
    with server.client(headers=device) as dev:
        single = dev.post("/api/v1/devices/str-1/readings", json={"label": "a\x00b"})
        assert_problem(single, 400)
        batch = dev.post(
            "/api/v1/devices/str-1/readings",
            json=[{"label": "a\x00b", "t": 1_700_000_000}, {"label": "ok", "t": 1_700_000_060}],
        )
        assert batch.status_code == 207, batch.text
        assert [x["status"] for x in batch.json()["results"]] == ["rejected", "written"]
    stored = http.get(f"{NGSI}/entities/urn:ngsi-ld:StrFeed:1", params={"options": "keyValues"})
    assert stored.json()["label"] == "ok"


@pytest.mark.parametrize("name", [b'"a\\u0000b"', b'"\\ud800"'], ids=["nul", "lone-surrogate"])
def test_device_registration_refuses_unstorable_strings(http: httpx.Client, name: bytes) -> None:
    spec = {
        "id": "str-2",
        "entity_id": "urn:ngsi-ld:StrFeed:2",
        "entity_type": "StrFeed",
        "attributes": {"label": {"name": "label"}},
        "name": "NAME",
    }
    raw = httpx.Request("POST", "http://x", json=spec).content.replace(b'"NAME"', name)
    r = http.post("/api/v1/devices", content=raw, headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    assert http.get("/api/v1/devices/str-2").status_code == 404


def test_a_device_id_with_a_trailing_newline_is_refused(http: httpx.Client) -> None:
    r = http.post(
        "/api/v1/devices",
        json={
            "id": "str-3\n",
            "entity_id": "urn:ngsi-ld:StrFeed:3",
            "entity_type": "StrFeed",
            "attributes": {"label": {"name": "label"}},
        },
    )
    assert_problem(r, 400)


def test_portal_feedback_and_forms_refuse_a_nul(server: Server) -> None:
    with server.client() as http:
        r = http.post(
            "/api/v1/comments",
            json={"target": "measure:none", "text": "a\x00b", "language": "en"},
        )
        assert r.status_code == 400, r.text
        form = http.post(
            "/en/login",
            content=b"username=a%00b&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 400
