"""Notifications end to end: writes queue them, the notifier delivers them to real receivers.

Receivers are real: a small HTTP server on 127.0.0.1 in a thread, and the Mosquitto broker at
``SMARTCITY_TEST_MQTT_URL`` (default 127.0.0.1:1883). Nothing sleeps blindly: every wait polls
with a deadline. Notifications of one subscription are delivered in order, so "this write did
not notify" is checked by making a later write that does, and seeing only that one arrive.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.subscriptions.notifier import Notifier
from smartcity.hub.subscriptions.outbox import RetryPolicy
from smartcity.storage import schema
from smartcity.storage.engine import Database

JSON = {"Content-Type": "application/json"}
LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
REL = "http://www.w3.org/ns/json-ld#context"
SUBS = "/ngsi-ld/v1/subscriptions"
ENTITIES = "/ngsi-ld/v1/entities"
FAST = RetryPolicy(base_delay=0.05, max_delay=0.2)


# -- receivers -------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any
    at: float = 0.0  # time.monotonic() when it arrived


class Receiver:
    """An HTTP receiver on 127.0.0.1. ``answers`` are the statuses of the next requests (then
    204); ``delay`` makes it slow."""

    def __init__(self, port: int = 0, *, delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self.refused_at: list[float] = []  # time.monotonic() of each request answered >= 300
        self.answers: list[int] = []
        self.delay = delay
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else 204
                    if status < 300:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        now = time.monotonic()
                        receiver.received.append(Received(self.path, headers, body, now))
                    else:
                        receiver.refused_at.append(time.monotonic())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/notify"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def wait(self, count: int, timeout: float = 15.0) -> list[Received]:
        wait_for(lambda: len(self.received) >= count, timeout, f"{count} notification(s)")
        return list(self.received)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A port nothing listens on (a receiver that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_app(settings: Settings, retry: RetryPolicy = FAST) -> FastAPI:
    app = create_app(settings)
    notifier(app).retry = retry
    return app


def notifier(app: Any) -> Notifier:
    found: Notifier = app.state.hub.notifier
    return found


@pytest.fixture
def hub_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings)) as c:
        yield c


# -- helpers ---------------------------------------------------------------------------------


def subscribe(
    client: TestClient, uri: str, headers: dict[str, str] | None = None, **extra: Any
) -> str:
    notification = extra.pop("notification", {})
    endpoint = notification.pop("endpoint", {})
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        **extra,
        "notification": {**notification, "endpoint": {"uri": uri, **endpoint}},
    }
    if "entities" in extra and extra["entities"] is None:
        del body["entities"]
    r = client.post(SUBS, json=body, headers={**JSON, **(headers or {})})
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def sensor(n: int, temperature: float = 20.0, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{n}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": temperature, "unitCode": "CEL"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [114.17, 22.3]},
        },
        **extra,
    }


def write(client: TestClient, method: str, path: str, body: Any = None, **headers: str) -> None:
    r = client.request(method, path, json=body, headers={**JSON, **headers} if body else headers)
    assert r.status_code in (200, 201, 204, 207), r.text


def set_temperature(client: TestClient, n: int, value: float) -> None:
    write(client, "PATCH", f"{ENTITIES}/urn:ngsi-ld:Sensor:{n}/attrs", {"temperature": value})


def outbox_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.outbox)).scalar_one())


def status(client: TestClient, sub_id: str, **headers: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{SUBS}/{sub_id}", headers=headers).json()
    return body


# -- content ---------------------------------------------------------------------------------


def test_create_and_update_notify_with_the_spec_payload(
    hub_client: TestClient, receiver: Receiver
) -> None:
    sub_id = subscribe(
        hub_client,
        receiver.url,
        notification={"endpoint": {"receiverInfo": [{"key": "X-Token", "value": "s3cret"}]}},
    )
    write(hub_client, "POST", ENTITIES, sensor(1), **{"NGSILD-Tenant": "other"})  # not ours
    write(hub_client, "POST", ENTITIES, sensor(1))
    set_temperature(hub_client, 1, 21.5)
    first, second = receiver.wait(2)
    assert len(receiver.received) == 2
    note = first.body
    assert note["id"].startswith("urn:ngsi-ld:Notification:")
    assert note["type"] == "Notification" and note["subscriptionId"] == sub_id
    assert note["notifiedAt"].endswith("Z")
    assert note["data"] == [sensor(1)]
    assert second.body["data"][0]["temperature"] == {"type": "Property", "value": 21.5}
    assert first.path == "/notify"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["link"] == f'<{CORE}>; rel="{REL}"; type="application/ld+json"'
    assert first.headers["x-token"] == "s3cret"
    assert "ngsild-tenant" not in first.headers  # the default tenant
    wait_for(lambda: status(hub_client, sub_id)["notification"].get("timesSent") == 2)
    params = status(hub_client, sub_id)["notification"]
    assert params["status"] == "ok" and "timesFailed" not in params
    assert params["lastSuccess"] == params["lastNotification"]


def test_tenant_header_and_ld_json_with_the_subscription_context(
    hub_client: TestClient, receiver: Receiver
) -> None:
    tenant = {"NGSILD-Tenant": "kowloon"}
    ctx = [
        {"Sensor": "https://example.org/Sensor", "temp": "https://example.org/temperature"},
        CORE,
    ]
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "watchedAttributes": ["temp"],
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/ld+json"}},
        "@context": ctx,
    }
    r = hub_client.post(SUBS, json=body, headers={**LD, **tenant})
    assert r.status_code == 201, r.text
    entity = {"id": "urn:ngsi-ld:Sensor:ld", "type": "Sensor", "temp": 30, "@context": ctx}
    write(hub_client, "POST", ENTITIES, entity, **{**LD, **tenant})
    got = receiver.wait(1)[0]
    assert got.headers["content-type"] == "application/ld+json"
    assert got.headers["ngsild-tenant"] == "kowloon"
    assert "link" not in got.headers
    assert got.body["@context"] == ctx
    # Compacted with the subscription's @context, not the core one; each entity carries it.
    assert got.body["data"] == [
        {
            "id": "urn:ngsi-ld:Sensor:ld",
            "type": "Sensor",
            "temp": {"type": "Property", "value": 30},
            "@context": ctx,
        }
    ]


def test_jsonld_context_member_compacts_ld_json_notifications(
    hub_client: TestClient, receiver: Receiver
) -> None:
    # The suite's 046_20: jsonldContext (here the core context) replaces the subscription's
    # own @context for notifications, so the user's names arrive expanded.
    ctx = [{"Sensor": "https://example.org/Sensor", "t": "https://example.org/t"}, CORE]
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "jsonldContext": CORE,
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/ld+json"}},
        "@context": ctx,
    }
    assert hub_client.post(SUBS, json=body, headers=LD).status_code == 201
    entity = {"id": "urn:ngsi-ld:Sensor:j", "type": "Sensor", "t": 1, "@context": ctx}
    write(hub_client, "POST", ENTITIES, entity, **LD)
    write(
        hub_client,
        "POST",
        f"{ENTITIES}/urn:ngsi-ld:Sensor:j/attrs",
        {"t": 2, "@context": ctx},
        **LD,
    )
    created, appended = receiver.wait(2)
    assert created.body["data"][0]["https://example.org/t"]["value"] == 1
    assert appended.body["@context"] == CORE
    assert appended.body["data"] == [
        {
            "id": "urn:ngsi-ld:Sensor:j",
            "type": "https://example.org/Sensor",
            "https://example.org/t": {"type": "Property", "value": 2},
            "@context": CORE,
        }
    ]


@pytest.mark.parametrize("fmt", ["normalized", "concise", "keyValues"])
def test_sys_attrs_adds_the_timestamps_in_every_format(
    hub_client: TestClient, receiver: Receiver, fmt: str
) -> None:
    subscribe(hub_client, receiver.url, notification={"format": fmt, "sysAttrs": True})
    write(hub_client, "POST", ENTITIES, sensor(15))
    entity = receiver.wait(1)[0].body["data"][0]
    assert entity["createdAt"] == entity["modifiedAt"]
    assert entity["createdAt"].endswith("Z")
    if fmt != "keyValues":  # attribute values are bare in keyValues
        assert entity["temperature"]["createdAt"] == entity["createdAt"]


def test_json_link_header_carries_a_url_context(hub_client: TestClient, receiver: Receiver) -> None:
    url = "https://example.org/sensors.jsonld"
    document = {"@context": {"Sensor": "https://example.org/Sensor", "t": "https://example.org/t"}}
    hub_client.app.state.hub.contexts.add(url, document)  # type: ignore[attr-defined]
    link = {"Link": f'<{url}>; rel="{REL}"; type="application/ld+json"'}
    subscribe(hub_client, receiver.url, headers=link)
    # [user URL, core] is conveyed by the user URL alone (the core context is implied).
    with_core = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": receiver.url}},
        "@context": [url, CORE],
    }
    assert hub_client.post(SUBS, json=with_core, headers=LD).status_code == 201
    write(
        hub_client,
        "POST",
        ENTITIES,
        {"id": "urn:ngsi-ld:Sensor:u", "type": "Sensor", "t": 1},
        **link,
    )
    for got in receiver.wait(2):
        assert got.headers["link"].startswith(f"<{url}>")
    assert got.body["data"][0] == {
        "id": "urn:ngsi-ld:Sensor:u",
        "type": "Sensor",
        "t": {"type": "Property", "value": 1},
    }


def test_json_with_an_inline_context_falls_back_to_full_names(
    hub_client: TestClient, receiver: Receiver
) -> None:
    # A Link header carries one URL: an inline @context cannot travel with application/json,
    # so names are sent expanded (compacted with the core context only) rather than misread.
    ctx = [{"Sensor": "https://example.org/Sensor", "t": "https://example.org/t"}, CORE]
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": receiver.url}},
        "@context": ctx,
    }
    assert hub_client.post(SUBS, json=body, headers=LD).status_code == 201
    entity = {"id": "urn:ngsi-ld:Sensor:i", "type": "Sensor", "t": 1, "@context": ctx}
    write(hub_client, "POST", ENTITIES, entity, **LD)
    got = receiver.wait(1)[0]
    assert got.headers["link"].startswith(f"<{CORE}>")
    assert got.body["data"][0]["type"] == "https://example.org/Sensor"
    assert got.body["data"][0]["https://example.org/t"] == {"type": "Property", "value": 1}


def test_key_values_attributes_and_sys_attrs(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(
        hub_client,
        receiver.url,
        notification={"format": "keyValues", "attributes": ["temperature"]},
    )
    write(hub_client, "POST", ENTITIES, sensor(2, 18.0))
    data = receiver.wait(1)[0].body["data"]
    assert data == [{"id": "urn:ngsi-ld:Sensor:2", "type": "Sensor", "temperature": 18.0}]


def test_concise_with_show_changes_keeps_previous_values(
    hub_client: TestClient, receiver: Receiver
) -> None:
    subscribe(
        hub_client,
        receiver.url,
        notification={"format": "concise", "showChanges": True, "sysAttrs": True},
    )
    write(hub_client, "POST", ENTITIES, sensor(3, 10.0, status="ok"))
    write(hub_client, "PATCH", f"{ENTITIES}/urn:ngsi-ld:Sensor:3/attrs", {"status": "broken"})
    created, updated = receiver.wait(2)
    assert "previousValue" not in json.dumps(created.body)  # nothing before a creation
    status_attr = updated.body["data"][0]["status"]
    assert status_attr["value"] == "broken" and status_attr["previousValue"] == "ok"
    assert "createdAt" in updated.body["data"][0]


def test_relationship_previous_object(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(hub_client, receiver.url, notification={"showChanges": True})
    owner = {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"}
    write(hub_client, "POST", ENTITIES, sensor(4, owner=owner))
    write(
        hub_client,
        "PATCH",
        f"{ENTITIES}/urn:ngsi-ld:Sensor:4/attrs",
        {"owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:2"}},
    )
    updated = receiver.wait(2)[1].body["data"][0]["owner"]
    assert updated == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:Org:2",
        "previousObject": "urn:ngsi-ld:Org:1",
    }


# -- which writes notify ---------------------------------------------------------------------


def test_watched_attributes_and_q_decide(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(hub_client, receiver.url, watchedAttributes=["temperature"], q="temperature>25")
    write(hub_client, "POST", ENTITIES, sensor(5, 20.0))  # q fails
    write(
        hub_client, "POST", f"{ENTITIES}/urn:ngsi-ld:Sensor:5/attrs", {"humidity": 50}
    )  # unwatched
    set_temperature(hub_client, 5, 30.0)  # notifies
    got = receiver.wait(1)
    assert len(got) == 1 and got[0].body["data"][0]["temperature"]["value"] == 30.0


def test_geo_query_decides(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(
        hub_client,
        receiver.url,
        geoQ={
            "geometry": "Point",
            "coordinates": [114.17, 22.3],
            "georel": "near;maxDistance==500",
        },
    )
    far = sensor(6)
    far["location"]["value"]["coordinates"] = [113.9, 22.5]
    write(hub_client, "POST", ENTITIES, far)
    write(hub_client, "POST", ENTITIES, sensor(7))
    got = receiver.wait(1)
    assert [r.body["data"][0]["id"] for r in got] == ["urn:ngsi-ld:Sensor:7"]


def test_scope_query_decides(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(hub_client, receiver.url, scopeQ="/HK/Kowloon/#")
    write(hub_client, "POST", ENTITIES, sensor(13, scope="/HK/Islands"))
    write(hub_client, "POST", ENTITIES, sensor(14, scope=["/HK/Kowloon/MongKok"]))
    got = receiver.wait(1)
    assert [r.body["data"][0]["id"] for r in got] == ["urn:ngsi-ld:Sensor:14"]
    assert got[0].body["data"][0]["scope"] == "/HK/Kowloon/MongKok"


def test_id_pattern_and_types(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(hub_client, receiver.url, entities=[{"type": "Sensor", "idPattern": ":Sensor:9\\d$"}])
    write(hub_client, "POST", ENTITIES, {"id": "urn:ngsi-ld:Lamp:91", "type": "Lamp", "on": True})
    write(hub_client, "POST", ENTITIES, sensor(8))
    write(hub_client, "POST", ENTITIES, sensor(91))
    got = receiver.wait(1)
    assert [r.body["data"][0]["id"] for r in got] == ["urn:ngsi-ld:Sensor:91"]


def test_deletions_need_their_triggers(hub_client: TestClient, receiver: Receiver) -> None:
    subscribe(hub_client, receiver.url, notificationTrigger=["entityDeleted", "attributeDeleted"])
    write(hub_client, "POST", ENTITIES, sensor(10, extra={"value": 1}))  # not a trigger here
    write(hub_client, "DELETE", f"{ENTITIES}/urn:ngsi-ld:Sensor:10/attrs/extra")
    write(hub_client, "DELETE", f"{ENTITIES}/urn:ngsi-ld:Sensor:10")
    attr_deleted, entity_deleted = receiver.wait(2)
    extra = attr_deleted.body["data"][0]["extra"]
    assert extra == {"type": "Property", "value": "urn:ngsi-ld:null"}
    gone = entity_deleted.body["data"][0]
    assert gone["id"] == "urn:ngsi-ld:Sensor:10" and gone["type"] == "Sensor"
    # attributeDeleted: each attribute of the deleted entity is reported as the NGSI-LD Null.
    assert gone["deletedAt"].endswith("Z")
    assert gone["temperature"] == {"type": "Property", "value": "urn:ngsi-ld:null"}


def test_default_triggers_ignore_deletion_and_entity_created_alone(
    hub_client: TestClient, receiver: Receiver
) -> None:
    default = subscribe(hub_client, receiver.url)
    created_only = subscribe(hub_client, receiver.url, notificationTrigger=["entityCreated"])
    write(hub_client, "POST", ENTITIES, sensor(11))
    set_temperature(hub_client, 11, 1.0)
    write(hub_client, "DELETE", f"{ENTITIES}/urn:ngsi-ld:Sensor:11")
    write(hub_client, "POST", ENTITIES, sensor(12))
    receiver.wait(5)
    by_sub: dict[str, list[str]] = {}
    for r in receiver.received:
        by_sub.setdefault(r.body["subscriptionId"], []).append(r.body["data"][0]["id"])
    s11, s12 = "urn:ngsi-ld:Sensor:11", "urn:ngsi-ld:Sensor:12"
    assert by_sub[default] == [s11, s11, s12]  # created, updated, (deleted: no), created
    assert by_sub[created_only] == [s11, s12]


def test_one_notification_per_write_with_every_matching_entity(
    hub_client: TestClient, receiver: Receiver
) -> None:
    subscribe(hub_client, receiver.url)
    r = hub_client.post(
        "/ngsi-ld/v1/entityOperations/create", json=[sensor(n) for n in range(20, 25)], headers=JSON
    )
    assert r.status_code == 201, r.text
    got = receiver.wait(1)[0]
    assert [e["id"] for e in got.body["data"]] == [f"urn:ngsi-ld:Sensor:{n}" for n in range(20, 25)]


def test_paused_and_expired_subscriptions_are_silent(
    hub_client: TestClient, receiver: Receiver
) -> None:
    sub_id = subscribe(hub_client, receiver.url, isActive=False)
    write(hub_client, "POST", ENTITIES, sensor(30, 1.0))
    r = hub_client.patch(f"{SUBS}/{sub_id}", json={"isActive": True}, headers=JSON)
    assert r.status_code == 204
    set_temperature(hub_client, 30, 2.0)
    got = receiver.wait(1)
    assert [r.body["data"][0]["temperature"]["value"] for r in got] == [2.0]


def test_throttling_drops_notifications_inside_the_window(
    hub_client: TestClient, receiver: Receiver, db: Database
) -> None:
    subscribe(hub_client, receiver.url, throttling=3600)
    write(hub_client, "POST", ENTITIES, sensor(31, 1.0))
    set_temperature(hub_client, 31, 2.0)
    set_temperature(hub_client, 31, 3.0)
    # Queuing happens in the write itself: once the outbox is empty, nothing more is coming.
    receiver.wait(1)
    wait_for(lambda: outbox_rows(db) == 0)
    assert len(receiver.received) == 1


# -- delivery --------------------------------------------------------------------------------


def test_a_write_never_waits_for_a_slow_receiver(hub_client: TestClient) -> None:
    slow = Receiver(delay=3.0)
    try:
        subscribe(hub_client, slow.url)
        started = time.monotonic()
        write(hub_client, "POST", ENTITIES, sensor(40))
        assert time.monotonic() - started < 1.5
        slow.wait(1)
    finally:
        slow.close()


def test_failures_are_retried_and_counted(hub_client: TestClient, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    sub_id = subscribe(hub_client, receiver.url)
    write(hub_client, "POST", ENTITIES, sensor(41))
    receiver.wait(1)
    wait_for(lambda: status(hub_client, sub_id)["notification"].get("timesSent") == 3)
    params = status(hub_client, sub_id)["notification"]
    assert params["timesFailed"] == 2 and params["status"] == "ok"
    assert params["lastSuccess"] >= params["lastFailure"]


def test_order_is_kept_while_retrying(hub_client: TestClient, receiver: Receiver) -> None:
    receiver.answers = [500, 500]
    subscribe(hub_client, receiver.url)
    write(hub_client, "POST", ENTITIES, sensor(42, 0.0))
    for value in range(1, 6):
        set_temperature(hub_client, 42, float(value))
    got = receiver.wait(6)
    assert [r.body["data"][0]["temperature"]["value"] for r in got] == [0, 1, 2, 3, 4, 5]


def test_deleting_a_subscription_drops_what_it_is_owed(settings: Settings, db: Database) -> None:
    dead = f"http://127.0.0.1:{free_port()}/notify"
    app = make_app(settings, RetryPolicy(base_delay=60, max_delay=60))
    with TestClient(app) as client:
        sub_id = subscribe(client, dead)
        write(client, "POST", ENTITIES, sensor(44))
        wait_for(lambda: status(client, sub_id)["notification"].get("timesFailed") == 1)
        assert outbox_rows(db) == 1
        assert client.delete(f"{SUBS}/{sub_id}").status_code == 204
        assert outbox_rows(db) == 0


def test_owed_notifications_survive_a_restart(settings: Settings, db: Database) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/notify"
    # The receiver is down; the retry delay is long, so the notification is still owed when
    # the server stops.
    with TestClient(make_app(settings, RetryPolicy(base_delay=3600, max_delay=3600))) as client:
        sub_id = subscribe(client, url)
        write(client, "POST", ENTITIES, sensor(45, 45.0))
        wait_for(lambda: status(client, sub_id)["notification"].get("timesFailed") == 1)
    assert outbox_rows(db) == 1
    # A new server on the same database, with the receiver up, delivers it at startup (with
    # the default retry policy: the pending retry delay is not waited out).
    receiver = Receiver(port)
    try:
        with TestClient(create_app(settings)) as client:
            got = receiver.wait(1)[0]
            assert got.body["subscriptionId"] == sub_id
            assert got.body["data"][0]["temperature"]["value"] == 45.0
            wait_for(lambda: outbox_rows(db) == 0)
            params = status(client, sub_id)["notification"]
            assert params["timesSent"] == 2 and params["timesFailed"] == 1
            assert params["status"] == "ok"
    finally:
        receiver.close()


def test_two_notifiers_on_one_database_deliver_each_notification_once(
    settings: Settings, receiver: Receiver, db: Database
) -> None:
    # Two servers sharing the database (as two worker processes would): on PostgreSQL they
    # claim with FOR UPDATE SKIP LOCKED, on SQLite behind BEGIN IMMEDIATE; both use leases.
    with TestClient(make_app(settings)) as one, TestClient(make_app(settings)) as two:
        for n in range(8):
            subscribe(
                one, receiver.url, entities=[{"type": "Sensor", "id": f"urn:ngsi-ld:Sensor:{n}"}]
            )
        for n in range(8):
            write(one if n % 2 else two, "POST", ENTITIES, sensor(n))
        for round_ in range(3):
            for n in range(8):
                set_temperature(two if n % 2 else one, n, float(round_))
        receiver.wait(32)
        wait_for(lambda: outbox_rows(db) == 0)  # nothing more is owed: the count is final
        ids = [r.body["id"] for r in receiver.received]
        assert len(ids) == len(set(ids)) == 32


def test_periodic_notifications(hub_client: TestClient, receiver: Receiver) -> None:
    write(hub_client, "POST", ENTITIES, sensor(50, 5.0))
    write(hub_client, "POST", ENTITIES, sensor(51, 50.0))
    sub_id = subscribe(hub_client, receiver.url, timeInterval=1, q="temperature>10")
    first, second = receiver.wait(2, timeout=10)
    for got in (first, second):
        assert got.body["subscriptionId"] == sub_id
        assert [e["id"] for e in got.body["data"]] == ["urn:ngsi-ld:Sensor:51"]
    # About one interval apart (never two at once).
    gap = _instant(second.body["notifiedAt"]) - _instant(first.body["notifiedAt"])
    assert gap >= 0.9


def _instant(iso: str) -> float:
    from smartcity.hub.timeutil import parse_datetime_us

    return parse_datetime_us(iso, field="t") / 1e6


# -- MQTT ------------------------------------------------------------------------------------


def _mqtt_url() -> str | None:
    url = os.environ.get("SMARTCITY_TEST_MQTT_URL")
    if url:
        return url
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", 1883)) == 0:
            return "mqtt://127.0.0.1:1883"
    return None


def test_mqtt_notifications_reach_the_broker(hub_client: TestClient) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    base = _mqtt_url()
    if base is None:
        pytest.skip("no MQTT broker: set SMARTCITY_TEST_MQTT_URL or run one on 127.0.0.1:1883")
    parts = urlsplit(base)
    topic = f"smartcity/test/{uuid.uuid4().hex}"
    messages: list[Any] = []
    subscribed = threading.Event()
    listener = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    listener.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda _c, _u, msg: messages.append(json.loads(msg.payload))
    listener.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    listener.loop_start()
    try:
        assert subscribed.wait(10), "could not subscribe to the test broker"
        sub_id = subscribe(
            hub_client,
            f"mqtt://{parts.hostname}:{parts.port or 1883}/{topic}",
            notification={"endpoint": {"receiverInfo": [{"key": "X-Feed", "value": "lamps"}]}},
        )
        write(hub_client, "POST", ENTITIES, sensor(60, 6.0))
        set_temperature(hub_client, 60, 7.0)
        wait_for(lambda: len(messages) >= 2, 15, "2 MQTT messages")
        first, second = messages[:2]
        assert first["metadata"]["Content-Type"] == "application/json"
        assert first["metadata"]["X-Feed"] == "lamps"
        assert CORE in first["metadata"]["Link"]
        assert first["body"]["subscriptionId"] == sub_id
        assert first["body"]["data"][0]["temperature"]["value"] == 6.0
        assert second["body"]["data"][0]["temperature"]["value"] == 7.0
        wait_for(lambda: status(hub_client, sub_id)["notification"].get("timesSent") == 2)
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.5)
    # Retries go on while the subscription is active: thousands of attempts must not overflow.
    expected = ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0), (5000, 60.0))
    for attempts, full in expected:
        delays = [policy.delay(attempts) for _ in range(50)]
        assert all(full * 0.5 <= d <= full for d in delays), (attempts, delays)
        assert len(set(delays)) > 1  # jittered, so receivers are not hit in lockstep
