"""Subscriptions over HTTP: create, retrieve, query, update, delete and validation (clause 5.8).

Delivery is tested in test_notifications.py; here no entity is written, so nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.api.paging import page_links
from smartcity.security.keys import KeyStore
from smartcity.storage.engine import Database

JSON = {"Content-Type": "application/json"}
LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
REL = "http://www.w3.org/ns/json-ld#context"
SUBS = "/ngsi-ld/v1/subscriptions"
# Nothing listens here: these tests never make the hub notify.
RECEIVER = "http://receiver.example.org:8080/notify"


def subscription(**extra: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "OffStreetParking"}],
        "watchedAttributes": ["availableSpotNumber"],
        "q": "availableSpotNumber<10",
        "notification": {
            "attributes": ["availableSpotNumber"],
            "format": "keyValues",
            "endpoint": {"uri": RECEIVER, "accept": "application/json"},
        },
        **extra,
    }


def create(client: TestClient, body: dict[str, Any], **headers: str) -> str:
    r = client.post(SUBS, json=body, headers={**JSON, **headers})
    assert r.status_code == 201, r.text
    location: str = r.headers["location"]
    assert location.startswith(SUBS + "/")
    return location.rsplit("/", 1)[1]


def test_create_then_retrieve(client: TestClient) -> None:
    sub_id = create(client, subscription(subscriptionName="few spots", description="d"))
    assert sub_id.startswith("urn:ngsi-ld:Subscription:")
    got = client.get(f"{SUBS}/{sub_id}")
    assert got.status_code == 200
    assert CORE in got.headers["link"]
    body = got.json()
    assert body["id"] == sub_id and body["type"] == "Subscription"
    assert body["subscriptionName"] == "few spots" and body["description"] == "d"
    assert body["entities"] == [{"type": "OffStreetParking"}]
    assert body["watchedAttributes"] == ["availableSpotNumber"]
    assert body["q"] == "availableSpotNumber<10"
    assert body["isActive"] is True and body["status"] == "active"
    # The default triggers (clause 5.2.12) are shown.
    assert body["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    notification = body["notification"]
    assert notification["attributes"] == ["availableSpotNumber"]
    assert notification["format"] == "keyValues"
    assert notification["endpoint"] == {"uri": RECEIVER, "accept": "application/json"}
    assert "timesSent" not in notification  # nothing sent yet
    assert "createdAt" not in body
    sys_attrs = client.get(f"{SUBS}/{sub_id}?options=sysAttrs").json()
    assert sys_attrs["createdAt"].endswith("Z") and sys_attrs["modifiedAt"].endswith("Z")


def test_defaults_are_spelled_out_in_the_representation(client: TestClient) -> None:
    # Clause 5.2.12/5.2.14: isActive defaults to true and format to normalized; both are shown,
    # as are status and the default triggers, so a client never has to know the defaults.
    minimal = {
        "type": "Subscription",
        "entities": [{"type": "OffStreetParking"}],
        "notification": {"endpoint": {"uri": RECEIVER}},
    }
    body = client.get(f"{SUBS}/{create(client, minimal)}").json()
    assert body["isActive"] is True and body["status"] == "active"
    assert body["notification"] == {
        "format": "normalized",
        "endpoint": {"uri": RECEIVER, "accept": "application/json"},
    }
    paused = client.get(f"{SUBS}/{create(client, {**minimal, 'isActive': False})}").json()
    assert paused["isActive"] is False and paused["status"] == "paused"


def test_given_id_and_duplicate_is_409(client: TestClient) -> None:
    body = subscription(id="urn:ngsi-ld:Subscription:parking")
    assert create(client, body) == "urn:ngsi-ld:Subscription:parking"
    r = client.post(SUBS, json=body, headers=JSON)
    assert r.status_code == 409 and r.json()["type"] == ERR + "AlreadyExists"


def test_missing_subscription_is_404(client: TestClient) -> None:
    for method in ("GET", "DELETE"):
        r = client.request(method, f"{SUBS}/urn:ngsi-ld:Subscription:none")
        assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"
    r = client.patch(f"{SUBS}/urn:ngsi-ld:Subscription:none", json={"q": "a>1"}, headers=JSON)
    assert r.status_code == 404


def _endpoint(**endpoint: Any) -> dict[str, Any]:
    return {"endpoint": {"uri": RECEIVER, **endpoint}}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"type": "Notification"}, "Subscription"),
    ({"id": "not a uri"}, "URI"),
    ({"notification": _endpoint(uri="ftp://example.org/x")}, "http, https, mqtt or mqtts"),
    ({"notification": _endpoint(uri="mqtt://broker.example.org")}, "topic"),
    ({"notification": _endpoint(uri="mqtt://broker.example.org/a/#")}, "wildcard"),
    ({"notification": _endpoint(accept="text/csv")}, "accept"),
    ({"notification": _endpoint(receiverInfo=[{"key": "a b", "value": "1"}])}, "header"),
    ({"notification": _endpoint(receiverInfo={"key": "x"})}, "receiverInfo"),
    ({"notification": _endpoint(notifierInfo=[{"key": "MQTT-QoS", "value": "3"}])}, "MQTT-QoS"),
    ({"notification": _endpoint(cooldown=0)}, "cooldown"),
    ({"notification": {"format": "keyValues"}}, "endpoint"),
    ({"notification": {**_endpoint(), "format": "compact"}}, "format"),
    ({"notification": {**_endpoint(), "format": "keyValues", "showChanges": True}}, "keyValues"),
    ({"notification": {**_endpoint(), "pick": ["id"], "omit": ["type"]}}, "pick"),
    ({"expiresAt": "2001-01-01T00:00:00Z"}, "past"),
    ({"expiresAt": "tomorrow"}, "expiresAt"),
    ({"notificationTrigger": ["entityMoved"]}, "entityMoved"),
    ({"notificationTrigger": []}, "notificationTrigger"),
    ({"q": "availableSpotNumber<<10"}, "q"),
    ({"scopeQ": "HK/Kowloon"}, "scopeQ"),
    ({"geoQ": {"geometry": "Point", "coordinates": [114.1, 22.3]}}, "georel"),
    ({"geoQ": {"geometry": "Polygon", "coordinates": [1, 2], "georel": "within"}}, "coordinates"),
    ({"throttling": -5}, "positive"),
    ({"throttling": "5"}, "number"),
    ({"timeInterval": 0.5, "watchedAttributes": None}, "at least 1"),
    ({"notification": _endpoint(receiverInfo=[{"key": "X-Name", "value": "天星"}])}, "ASCII"),
    ({"timeInterval": 10}, "watchedAttributes"),
    ({"watchedAttributes": [], "entities": [{"type": "T"}]}, "watchedAttributes"),
    ({"entities": [{"idPattern": "x"}]}, "type"),
    ({"entities": [{"type": "T", "idPattern": "(unclosed"}]}, "regular expression"),
    ({"isActive": "yes"}, "isActive"),
    ({"watchedAtributes": ["a"]}, "unknown Subscription member 'watchedAtributes'"),
    ({"csf": "x"}, "csf"),
    ({"jsonldContext": "urn:x:1"}, "http(s)"),
    ({"notification": {**_endpoint(), "pick": ["a"], "attributes": ["a"]}}, "pick cannot"),
    ({"notification": {**_endpoint(), "omit": ["b"], "attributes": ["a"]}}, "omit cannot"),
    ({"datasetId": "urn:ngsi-ld:Dataset:fr"}, "datasetId must be a non-empty list"),
    ({"datasetId": []}, "datasetId"),
    ({"datasetId": ["not a uri"]}, "datasetId entry"),
]


@pytest.mark.parametrize(("change", "word"), BAD)
def test_bad_subscriptions_are_400_naming_the_problem(
    client: TestClient, change: dict[str, Any], word: str
) -> None:
    body = {k: v for k, v in subscription(**change).items() if v is not None}
    r = client.post(SUBS, json=body, headers=JSON)
    assert r.status_code == 400, (change, r.text)
    assert r.json()["type"] == ERR + "BadRequestData"
    assert word in r.json()["detail"], (word, r.json()["detail"])


def test_rules_across_members(client: TestClient) -> None:
    periodic = subscription(timeInterval=30)
    del periodic["watchedAttributes"]
    assert client.post(SUBS, json={**periodic, "throttling": 5}, headers=JSON).status_code == 400
    no_entities = {k: v for k, v in periodic.items() if k != "entities"}
    r = client.post(SUBS, json=no_entities, headers=JSON)
    assert r.status_code == 400 and "entities" in r.json()["detail"]
    nothing = {
        k: v for k, v in subscription().items() if k not in ("entities", "watchedAttributes")
    }
    r = client.post(SUBS, json=nothing, headers=JSON)
    assert r.status_code == 400 and "entities or watchedAttributes" in r.json()["detail"]
    assert create(client, periodic)  # entities + timeInterval is a valid periodic subscription
    watched_only = {k: v for k, v in subscription().items() if k != "entities"}
    assert create(client, watched_only)


def test_private_receivers_refused_when_configured(db: Database) -> None:
    settings = Settings(database_url=db.url, auth_required=False, forbid_private_targets=True)
    with TestClient(create_app(settings)) as client:
        for uri in ("http://127.0.0.1:9000/n", "http://localhost/n", "mqtt://10.1.2.3/topic"):
            body = subscription(notification={"endpoint": {"uri": uri}})
            r = client.post(SUBS, json=body, headers=JSON)
            assert r.status_code == 400, uri
            assert "private or loopback" in r.json()["detail"]
            assert "SMARTCITY_FORBID_PRIVATE_TARGETS" in r.json()["detail"]
        # An update cannot sneak one in either.
        sub_id = create(
            client, subscription(notification={"endpoint": {"uri": "http://8.8.8.8/n"}})
        )
        r = client.patch(
            f"{SUBS}/{sub_id}",
            json={"notification": {"endpoint": {"uri": "http://127.0.0.1/n"}}},
            headers=JSON,
        )
        assert r.status_code == 400 and "private" in r.json()["detail"]


def test_private_receivers_allowed_by_default(client: TestClient) -> None:
    body = subscription(notification={"endpoint": {"uri": "http://127.0.0.1:9/n"}})
    assert create(client, body)


def test_query_with_paging_and_count(client: TestClient) -> None:
    ids = [create(client, subscription(subscriptionName=f"s{n}")) for n in range(5)]
    r = client.get(f"{SUBS}?limit=2&offset=1&count=true")
    assert r.status_code == 200
    assert r.headers["ngsild-results-count"] == "5"
    assert [s["id"] for s in r.json()] == ids[1:3]
    assert len(client.get(SUBS).json()) == 5
    assert client.get(f"{SUBS}?limit=0&count=true").json() == []
    assert client.get(f"{SUBS}?limit=0").status_code == 400
    assert client.get(f"{SUBS}?limit=5000").status_code == 403  # TooManyResults
    ld = client.get(SUBS, headers={"Accept": "application/ld+json"}).json()
    assert all(s["@context"] == CORE for s in ld)


def _links(response: Any) -> dict[str, str]:
    """rel -> URL of the paging links in a Link header (the @context link has no rel name)."""
    found = {}
    for part in response.headers.get("link", "").split(","):
        match = re.search(r'<([^>]*)>;\s*rel="(prev|next)";\s*type="([^"]*)"', part)
        if match:
            found[match[2]] = match[1]
            assert match[3] == response.headers["content-type"]
    return found


def test_query_pages_with_prev_and_next_links(client: TestClient) -> None:
    ids = [create(client, subscription(subscriptionName=f"s{n}")) for n in range(3)]
    ld = {"Accept": "application/ld+json"}
    middle = client.get(f"{SUBS}?limit=1&offset=1", headers=ld)
    assert [s["id"] for s in middle.json()] == ids[1:2]
    # With application/ld+json the Link header carries the paging links only.
    assert middle.headers["link"].replace(" ", "").split(",") == [
        f'<{SUBS}?limit=1&offset=0>;rel="prev";type="application/ld+json"',
        f'<{SUBS}?limit=1&offset=2>;rel="next";type="application/ld+json"',
    ]
    last = client.get(f"{SUBS}?limit=1&offset=2", headers=ld)
    assert _links(last) == {"prev": f"{SUBS}?limit=1&offset=1"}
    assert "link" not in client.get(f"{SUBS}?limit=15", headers=ld).headers
    # application/json: the @context link and the paging links share one header; other
    # parameters are kept in the links.
    first = client.get(f"{SUBS}?count=true&limit=2")
    assert CORE in first.headers["link"]
    assert _links(first) == {"next": f"{SUBS}?count=true&limit=2&offset=2"}
    assert first.headers["ngsild-results-count"] == "3"
    assert "ngsild-results-count" not in middle.headers
    # Following the links visits every subscription once.
    seen, url = [], f"{SUBS}?limit=2"
    while url:
        page = client.get(url)
        seen += [s["id"] for s in page.json()]
        url = _links(page).get("next", "")
    assert seen == ids


@given(total=st.integers(0, 60), limit=st.integers(1, 25), start=st.integers(0, 70))
def test_page_links_walk_every_item_once(total: int, limit: int, start: int) -> None:
    def offsets(links: list[str]) -> dict[str, int]:
        return {
            re.search(r'rel="(\w+)"', link)[1]: int(re.search(r"offset=(\d+)", link)[1])  # type: ignore[index]
            for link in links
        }

    def links(offset: int) -> dict[str, int]:
        return offsets(
            page_links(SUBS, [], limit=limit, offset=offset, total=total, media="application/json")
        )

    visited: list[int] = []
    offset: int | None = 0
    while offset is not None:
        visited += range(offset, min(offset + limit, total))
        offset = links(offset).get("next")
    assert visited == list(range(total))
    here = links(start)
    if "next" in here:
        assert here["next"] == start + limit < total
        assert links(here["next"])["prev"] == start
    assert ("prev" in here) == (start > 0)


def test_tenants_are_separate(client: TestClient) -> None:
    sub_id = create(client, subscription(), **{"NGSILD-Tenant": "kowloon"})
    assert client.get(f"{SUBS}/{sub_id}").status_code == 404
    assert client.get(SUBS).json() == []
    got = client.get(f"{SUBS}/{sub_id}", headers={"NGSILD-Tenant": "kowloon"})
    assert got.status_code == 200


def test_update_replaces_members_and_validates(client: TestClient) -> None:
    sub_id = create(client, subscription(throttling=5, subscriptionName="old"))
    before = client.get(f"{SUBS}/{sub_id}?options=sysAttrs").json()
    patch = {
        "q": "availableSpotNumber<5",
        "isActive": False,
        "notification": {"format": "normalized"},
        "subscriptionName": "urn:ngsi-ld:null",  # removes the member
    }
    r = client.patch(f"{SUBS}/{sub_id}", json=patch, headers=JSON)
    assert r.status_code == 204, r.text
    after = client.get(f"{SUBS}/{sub_id}?options=sysAttrs").json()
    assert after["q"] == "availableSpotNumber<5"
    assert after["isActive"] is False and after["status"] == "paused"
    assert "subscriptionName" not in after
    # Inside notification only the given members change.
    assert after["notification"]["format"] == "normalized"
    assert after["notification"]["attributes"] == ["availableSpotNumber"]
    assert after["notification"]["endpoint"]["uri"] == RECEIVER
    assert after["throttling"] == 5
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] >= before["modifiedAt"]
    # Invalid updates change nothing.
    for bad in (
        {"q": "(("},
        {"id": "urn:ngsi-ld:Subscription:other"},
        {"timeInterval": 10},  # with watchedAttributes and throttling
        {"notification": {"format": "keyValues", "showChanges": True}},
        {"expiresAt": "2000-01-01T00:00:00Z"},
        {},
    ):
        r = client.patch(f"{SUBS}/{sub_id}", json=bad, headers=JSON)
        assert r.status_code == 400, (bad, r.text)
    assert client.get(f"{SUBS}/{sub_id}?options=sysAttrs").json() == after
    r = client.patch(
        f"{SUBS}/{sub_id}",
        json={"expiresAt": "2099-01-01T00:00:00Z", "isActive": True},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204
    renewed = client.get(f"{SUBS}/{sub_id}").json()
    assert renewed["expiresAt"] == "2099-01-01T00:00:00.000Z" and renewed["status"] == "active"


def test_delete(client: TestClient) -> None:
    sub_id = create(client, subscription())
    assert client.delete(f"{SUBS}/{sub_id}").status_code == 204
    assert client.get(f"{SUBS}/{sub_id}").status_code == 404
    assert client.delete(f"{SUBS}/{sub_id}").status_code == 404


def test_names_are_expanded_with_the_request_context(client: TestClient) -> None:
    ctx = {
        "@context": {
            "Parking": "https://example.org/Parking",
            "spots": "https://example.org/spots",
        }
    }
    client.app.state.hub.contexts.add("https://example.org/ctx.jsonld", ctx)  # type: ignore[attr-defined]
    link = {"Link": f'<https://example.org/ctx.jsonld>; rel="{REL}"; type="application/ld+json"'}
    body = subscription(
        entities=[{"type": "Parking"}],
        watchedAttributes=["spots"],
        q="spots<3",
        notification={"attributes": ["spots"], "endpoint": {"uri": RECEIVER}},
    )
    sub_id = create(client, body, **link)
    short = client.get(f"{SUBS}/{sub_id}", headers=link).json()
    assert short["entities"] == [{"type": "Parking"}]
    assert short["watchedAttributes"] == ["spots"]
    assert short["notification"]["attributes"] == ["spots"]
    full = client.get(f"{SUBS}/{sub_id}").json()
    assert full["entities"] == [{"type": "https://example.org/Parking"}]
    assert full["watchedAttributes"] == ["https://example.org/spots"]


def test_ld_json_body_with_context_and_geo_query(client: TestClient) -> None:
    body = {
        **subscription(
            geoQ={
                "geometry": "Point",
                "coordinates": [114.17, 22.3],
                "georel": "near;maxDistance==2000",
            },
            entities=[{"type": "OffStreetParking", "idPattern": "^urn:ngsi-ld:OffStreetParking:"}],
            scopeQ="/HK/#",
        ),
        "@context": [{"OffStreetParking": "https://example.org/OSP"}, CORE],
    }
    r = client.post(SUBS, json=body, headers=LD)
    assert r.status_code == 201, r.text
    sub_id = r.headers["location"].rsplit("/", 1)[1]
    got = client.get(f"{SUBS}/{sub_id}").json()
    assert got["entities"][0]["type"] == "https://example.org/OSP"
    assert got["entities"][0]["idPattern"] == "^urn:ngsi-ld:OffStreetParking:"
    assert got["scopeQ"] == "/HK/#"
    assert got["geoQ"] == {
        "geometry": "Point",
        "coordinates": [114.17, 22.3],
        "georel": "near;maxDistance==2000",
        "geoproperty": "location",
    }
    # application/ld+json without @context, or application/json with one, are refused.
    assert client.post(SUBS, json=subscription(), headers=LD).status_code == 400
    assert client.post(SUBS, json=body, headers=JSON).status_code == 400


def test_type_selection_language_round_trips(client: TestClient) -> None:
    sub_id = create(client, subscription(entities=[{"type": "(A;B)|C"}]))
    assert client.get(f"{SUBS}/{sub_id}").json()["entities"] == [{"type": "A;B,C"}]


@pytest.fixture
def secured(db: Database) -> Iterator[tuple[TestClient, KeyStore]]:
    settings = Settings(database_url=db.url, auth_required=True)
    with TestClient(create_app(settings)) as client:
        yield client, KeyStore(db)


def test_subscriptions_need_a_write_key_even_to_read(
    secured: tuple[TestClient, KeyStore],
) -> None:
    client, keys = secured
    assert client.post(SUBS, json=subscription(), headers=JSON).status_code == 401
    assert client.get(SUBS).status_code == 401  # receiverInfo may hold a receiver's credentials
    _, reader = keys.create("dashboard", scope="read")
    assert client.get(SUBS, headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    _, writer = keys.create("integrator", scope="write")
    auth = {"Authorization": f"Bearer {writer}"}
    sub_id = create(client, subscription(), **auth)
    assert client.get(f"{SUBS}/{sub_id}", headers=auth).status_code == 200
    assert client.delete(f"{SUBS}/{sub_id}", headers=auth).status_code == 204
