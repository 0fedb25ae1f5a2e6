"""Registration subscriptions: /csourceSubscriptions CRUD, and notifications on registration
create/update/delete with their triggerReason (clauses 5.11, 5.3.2)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.subscriptions.outbox import RetryPolicy

CSR = "/ngsi-ld/v1/csourceRegistrations"
CSUBS = "/ngsi-ld/v1/csourceSubscriptions"


class Receiver:
    """Takes notifications on 127.0.0.1; ``answers`` are the statuses of the next ones."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                status = receiver.answers.pop(0) if receiver.answers else 204
                if status < 300:
                    receiver.bodies.append(body)
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"got {len(self.bodies)} of {count} notifications"
            time.sleep(0.02)
        return self.bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def hub_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    notifier = app.state.hub.federation.notifier
    notifier.retry = RetryPolicy(base_delay=0.05, max_delay=0.2)
    notifier.idle_poll = 0.1
    with TestClient(app) as client:
        yield client


def registration(reg_id: str, entity_type: str = "TrafficFlowObserved", **extra: Any) -> dict:
    return {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{reg_id}",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": entity_type}], "propertyNames": ["intensity"]}],
        "endpoint": "http://td-broker.example:8000",
        **extra,
    }


def subscription(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Subscription:td-sources",
        "type": "Subscription",
        "entities": [{"type": "TrafficFlowObserved"}],
        "notification": {"endpoint": {"uri": receiver.url}},
        **extra,
    }


def test_notified_of_matching_registrations_created_updated_and_deleted(
    hub_client: TestClient, receiver: Receiver
) -> None:
    client = hub_client
    assert client.post(CSUBS, json=subscription(receiver)).status_code == 201
    assert client.post(CSR, json=registration("td")).status_code == 201
    assert client.post(CSR, json=registration("epd", "AirQualityObserved")).status_code == 201
    first = receiver.wait(1)[0]
    assert first["type"] == "CsourceNotification"
    assert first["subscriptionId"] == "urn:ngsi-ld:Subscription:td-sources"
    assert first["triggerReason"] == "newlyMatching"
    assert [r["id"] for r in first["data"]] == ["urn:ngsi-ld:ContextSourceRegistration:td"]
    assert first["data"][0]["information"][0]["entities"] == [{"type": "TrafficFlowObserved"}]

    location = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:td"
    assert client.patch(location, json={"management": {"timeout": 900}}).status_code == 204
    updated = receiver.wait(2)[1]
    assert updated["triggerReason"] == "updated"
    assert updated["data"][0]["management"] == {"timeout": 900}

    moved = {"information": [{"entities": [{"type": "Road"}]}]}
    assert client.patch(location, json=moved).status_code == 204
    assert receiver.wait(3)[2]["triggerReason"] == "noLongerMatching"
    assert (
        client.patch(location, json={"information": registration("x")["information"]}).status_code
        == 204
    )
    assert receiver.wait(4)[3]["triggerReason"] == "newlyMatching"
    assert client.delete(location).status_code == 204
    gone = receiver.wait(5)[4]
    assert gone["triggerReason"] == "noLongerMatching"
    assert gone["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:td"
    time.sleep(0.3)
    assert len(receiver.bodies) == 5  # the AirQualityObserved source was never notified

    status = client.get(f"{CSUBS}/urn:ngsi-ld:Subscription:td-sources").json()
    assert status["notification"]["timesSent"] == 5
    assert status["notification"]["status"] == "ok"


def test_first_notification_lists_the_registrations_matching_now(
    hub_client: TestClient, receiver: Receiver
) -> None:
    client = hub_client
    for reg_id in ("a", "b"):
        assert client.post(CSR, json=registration(reg_id)).status_code == 201
    body = subscription(receiver, watchedAttributes=["intensity"])
    assert client.post(CSUBS, json=body, headers={"NGSILD-Tenant": ""}).status_code == 201
    first = receiver.wait(1)[0]
    assert first["triggerReason"] == "newlyMatching"
    assert sorted(r["id"][-1] for r in first["data"]) == ["a", "b"]
    assert receiver.headers[0]["link"].startswith("<https://uri.etsi.org/ngsi-ld/")


def test_a_failed_notification_is_retried(hub_client: TestClient, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    assert hub_client.post(CSUBS, json=subscription(receiver)).status_code == 201
    assert hub_client.post(CSR, json=registration("td")).status_code == 201
    assert receiver.wait(1)[0]["triggerReason"] == "newlyMatching"
    status = hub_client.get(f"{CSUBS}/urn:ngsi-ld:Subscription:td-sources").json()
    assert status["notification"]["timesFailed"] == 2


def test_crud_and_validation(hub_client: TestClient, receiver: Receiver) -> None:
    client = hub_client
    made = client.post(CSUBS, json=subscription(receiver, subscriptionName="TD sources"))
    assert made.status_code == 201
    location = made.headers["Location"]
    assert location == f"{CSUBS}/urn:ngsi-ld:Subscription:td-sources"
    assert client.post(CSUBS, json=subscription(receiver)).status_code == 409
    got = client.get(location).json()
    assert got["subscriptionName"] == "TD sources"
    assert got["entities"] == [{"type": "TrafficFlowObserved"}]
    assert got["status"] == "active" and "notificationTrigger" not in got
    listed = client.get(CSUBS, params={"count": "true"})
    assert [s["id"] for s in listed.json()] == [got["id"]]
    assert listed.headers["NGSILD-Results-Count"] == "1"
    assert client.patch(location, json={"isActive": False}).status_code == 204
    assert client.get(location).json()["status"] == "paused"
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404

    for bad, needle in [
        ({"q": "intensity>"}, "q"),
        ({"csf": "mode=="}, "csf"),
        ({"csf": 3}, "csf must be a string"),
        ({"scopeQ": "/HK//x"}, "scope"),
        (
            {
                "geoQ": {
                    "georel": "within",
                    "geometry": "Point",
                    "coordinates": [1, 2],
                    "geoproperty": "parkingArea",
                }
            },
            "geoQ.geoproperty",
        ),
        ({"temporalQ": {"timerel": "after"}}, "timeAt"),
        ({"temporalQ": {"timerel": "whenever", "timeAt": "2026-01-01T00:00:00Z"}}, "timerel"),
        ({"temporalQ": {"timerel": "after", "timeAt": "soon"}}, "timeAt"),
        ({"temporalQ": "after"}, "temporalQ must be an object"),
        ({"timeInterval": 10, "watchedAttributes": ["intensity"]}, "timeInterval"),
        ({"timeInterval": 0.5}, "timeInterval"),
        ({"throttling": -1}, "throttling"),
        ({"throttling": 5, "timeInterval": 10}, "throttling"),
        ({"notificationTrigger": ["entityCreated"]}, "notificationTrigger"),
        ({"type": "Registration"}, "type 'Subscription'"),
        ({"notification": {"endpoint": {"uri": "gopher://x"}}}, "http"),
        ({"entities": [{"id": "urn:a:b"}]}, "needs a type"),
    ]:
        response = client.post(CSUBS, json={**subscription(receiver), **bad})
        assert response.status_code == 400, (bad, response.text)
        assert needle in response.json()["detail"], (bad, response.json())


def test_q_csf_geoq_and_scopeq_narrow_what_is_notified(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """The subscription's filters, on the registration before and after each change, as a
    registration query applies them (they were refused with 400 before)."""
    client = hub_client
    box = [[[114.1, 22.2], [114.2, 22.2], [114.2, 22.4], [114.1, 22.4], [114.1, 22.2]]]
    sub = subscription(
        receiver,
        q='department=="TD"',
        csf='mode=="inclusive"',
        geoQ={"georel": "within", "geometry": "Polygon", "coordinates": box},
        scopeQ="/HK/#",
    )
    made = client.post(CSUBS, json=sub)
    assert made.status_code == 201, made.text
    got = client.get(made.headers["Location"]).json()
    assert (got["q"], got["csf"], got["scopeQ"]) == ('department=="TD"', 'mode=="inclusive"',
                                                     "/HK/#")  # fmt: skip
    assert got["geoQ"]["geoproperty"] == "location" and "csfNames" not in got

    tst = {"type": "Point", "coordinates": [114.17, 22.30]}  # inside the box
    tko = {"type": "Point", "coordinates": [114.26, 22.31]}  # outside it
    for reg_id, extra in [
        ("epd", {"department": "EPD", "location": tst, "scope": "/HK/Kowloon"}),
        ("far", {"department": "TD", "location": tko, "scope": "/HK/Kowloon"}),
        ("aux", {"department": "TD", "location": tst, "scope": "/HK", "mode": "auxiliary"}),
        ("noscope", {"department": "TD", "location": tst}),
        ("td", {"department": "TD", "location": tst, "scope": "/HK/Kowloon"}),
    ]:
        assert client.post(CSR, json=registration(reg_id, **extra)).status_code == 201
    first = receiver.wait(1)[0]
    assert [r["id"].rsplit(":", 1)[1] for r in first["data"]] == ["td"]
    time.sleep(0.3)
    assert len(receiver.bodies) == 1  # none of the four others passed every filter

    # The source moves out of the box: it no longer matches.
    location = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:td"
    assert client.patch(location, json={"location": tko}).status_code == 204
    assert receiver.wait(2)[1]["triggerReason"] == "noLongerMatching"
    # Another source comes into line with every filter.
    far = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:far"
    assert client.patch(far, json={"location": tst}).status_code == 204
    changed = receiver.wait(3)[2]
    assert changed["triggerReason"] == "newlyMatching"
    assert changed["data"][0]["id"].endswith(":far")

    # csf removed by PATCH: the auxiliary source (now changed) is notified
    assert (
        client.patch(made.headers["Location"], json={"csf": "urn:ngsi-ld:null"}).status_code == 204
    )
    assert "csf" not in client.get(made.headers["Location"]).json()
    aux = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:aux"
    assert client.patch(aux, json={"scope": "/HK/Island"}).status_code == 204
    assert receiver.wait(4)[3]["data"][0]["id"].endswith(":aux")


def test_temporal_q_selects_by_the_registration_interval(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """temporalQ (clause 5.2.21) on the registrations' observationInterval, as timerel on a
    registration query: only the sources whose data covers the period are notified; without
    it, only the sources of latest information (clause 5.10.2)."""
    client = hub_client
    sub = subscription(receiver, temporalQ={"timerel": "after", "timeAt": "2026-07-01T00:00:00Z"})
    made = client.post(CSUBS, json=sub)
    assert made.status_code == 201, made.text
    assert client.get(made.headers["Location"]).json()["temporalQ"] == sub["temporalQ"]
    first_half = {"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-06-30T00:00:00Z"}
    ongoing = {"startAt": "2026-01-01T00:00:00Z"}
    for reg_id, interval in [("old", first_half), ("live", ongoing)]:
        body = registration(reg_id, observationInterval=interval)
        assert client.post(CSR, json=body).status_code == 201
    first = receiver.wait(1)[0]
    assert [r["id"].rsplit(":", 1)[1] for r in first["data"]] == ["live"]
    # removed by PATCH: only the sources of latest information (no interval) match now
    patched = client.patch(made.headers["Location"], json={"temporalQ": "urn:ngsi-ld:null"})
    assert patched.status_code == 204
    assert "temporalQ" not in client.get(made.headers["Location"]).json()
    live = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:live"
    assert client.patch(live, json={"registrationName": "TD now"}).status_code == 204
    assert client.post(CSR, json=registration("now")).status_code == 201
    notified = receiver.wait(2)[1]
    assert notified["triggerReason"] == "newlyMatching"
    assert [r["id"].rsplit(":", 1)[1] for r in notified["data"]] == ["now"]
    time.sleep(0.3)
    assert len(receiver.bodies) == 2  # the change to "live" was not notified


def test_throttling_drops_what_comes_within_the_window(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """throttling (clause 5.2.12): at least that many seconds between two notifications, as on
    entity subscriptions; what a change would notify inside the window is not sent (it was
    refused with 400 before)."""
    client = hub_client
    made = client.post(CSUBS, json=subscription(receiver, throttling=1))
    assert made.status_code == 201, made.text
    assert client.get(made.headers["Location"]).json()["throttling"] == 1
    started = time.monotonic()
    assert client.post(CSR, json=registration("td")).status_code == 201
    td = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:td"
    assert client.patch(td, json={"registrationName": "inside the window"}).status_code == 204
    assert client.post(CSR, json=registration("td2")).status_code == 201
    inside = time.monotonic() - started
    first = receiver.wait(1)[0]
    assert first["triggerReason"] == "newlyMatching" and first["data"][0]["id"].endswith(":td")
    time.sleep(max(0.0, 1.2 - (time.monotonic() - started)))
    assert len(receiver.bodies) == 1, "the two changes inside the window were not notified"
    assert inside < 1.0, "the machine was too slow for this test's window"

    assert client.patch(td, json={"registrationName": "after the window"}).status_code == 204
    after = receiver.wait(2)[1]
    assert after["triggerReason"] == "updated"
    assert after["data"][0]["registrationName"] == "after the window"


def test_a_periodic_subscription_lists_what_matches_every_interval(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """timeInterval: not notified of changes; every interval (the first at once) one
    notification listing every registration that matches then, nothing when none does."""
    client = hub_client
    assert client.post(CSR, json=registration("td")).status_code == 201
    assert client.post(CSR, json=registration("epd", "AirQualityObserved")).status_code == 201
    made = client.post(CSUBS, json=subscription(receiver, timeInterval=1))
    assert made.status_code == 201, made.text
    assert client.get(made.headers["Location"]).json()["timeInterval"] == 1
    first = receiver.wait(1)[0]
    assert first["triggerReason"] == "newlyMatching"
    assert [r["id"].rsplit(":", 1)[1] for r in first["data"]] == ["td"]

    assert client.post(CSR, json=registration("td2")).status_code == 201
    # The next periods' notifications, not one of the change: each lists what matches then.
    deadline = time.monotonic() + 15
    while not any(len(b["data"]) == 2 for b in receiver.bodies):
        assert time.monotonic() < deadline, receiver.bodies
        time.sleep(0.05)
    later = receiver.bodies[1:]
    assert all(b["triggerReason"] == "newlyMatching" for b in later)
    assert [r["id"].rsplit(":", 1)[1] for r in later[-1]["data"]] == ["td", "td2"]
    assert later[0]["notifiedAt"] > first["notifiedAt"]

    for reg_id in ("td", "td2"):
        gone = client.delete(f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:{reg_id}")
        assert gone.status_code == 204
    count = len(receiver.bodies)
    time.sleep(2.5)  # two more periods with nothing matching: nothing sent
    assert len(receiver.bodies) <= count + 1  # (one period may have begun before the deletes)
    assert all(b["triggerReason"] == "newlyMatching" for b in receiver.bodies)
