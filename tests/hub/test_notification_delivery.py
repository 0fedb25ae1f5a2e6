"""What notification delivery promises (docs/hub.md, "Delivery guarantees"): nothing is dropped
while the subscription is active, a receiver that comes back gets everything without a restart,
what a subscription that ended still owed is kept as failed (listed, replayed, discarded), and a
dead worker's claim is taken over within seconds while a live worker's claim is respected.

Retries use a short cap (``SMARTCITY_NOTIFY_RETRY_CAP`` through the settings) so tests take
seconds; receivers are real HTTP servers on 127.0.0.1 (tests/hub/test_notifications.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.hub.test_notifications import (
    ENTITIES,
    SUBS,
    Receiver,
    free_port,
    notifier,
    outbox_rows,
    sensor,
    set_temperature,
    status,
    subscribe,
    wait_for,
    write,
)

from smartcity.app import create_app
from smartcity.config import NotificationSettings, Settings
from smartcity.hub.subscriptions.notifier import Notifier
from smartcity.security.keys import KeyStore
from smartcity.storage import schema
from smartcity.storage.engine import Database

CSR = "/ngsi-ld/v1/csourceRegistrations"
CSUBS = "/ngsi-ld/v1/csourceSubscriptions"
METRICS = "/api/v1/notifications/metrics"


def fast(settings: Settings, *, lease: float = 5.0) -> Settings:
    settings.notifications = NotificationSettings(retry_base=0.05, retry_cap=0.2, lease=lease)
    return settings


def temperatures(receiver: Receiver) -> list[float]:
    return [r.body["data"][0]["temperature"]["value"] for r in receiver.received]


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_a_receiver_that_comes_back_gets_every_notification(
    settings: Settings, db: Database
) -> None:
    port = free_port()
    with TestClient(create_app(fast(settings))) as client:
        sub_id = subscribe(client, f"http://127.0.0.1:{port}/notify")
        write(client, "POST", ENTITIES, sensor(1, 0.0))
        for value in range(1, 5):
            set_temperature(client, 1, float(value))
        # Well past the 10 failed attempts after which the oldest notification used to be
        # dropped (the receiver is down all along).
        wait_for(lambda: status(client, sub_id)["notification"].get("timesFailed", 0) >= 15)
        assert status(client, sub_id)["notification"]["status"] == "failed"
        assert outbox_rows(db) == 5
        receiver = Receiver(port)
        try:
            # No restart: the capped back-off brings the next attempt within the cap.
            receiver.wait(5, timeout=5)
            assert temperatures(receiver) == [0.0, 1.0, 2.0, 3.0, 4.0]
            wait_for(lambda: outbox_rows(db) == 0)
            params = status(client, sub_id)["notification"]
            assert params["status"] == "ok" and params["timesFailed"] >= 15
            counters = client.get(METRICS).json()["subscriptions"]
            assert counters["process"]["delivered"] == 5 and counters["process"]["failed"] == 0
            assert counters["outbox"] == {"pending": 0, "retrying": 0, "failed": 0}
        finally:
            receiver.close()


def test_what_an_expired_subscription_still_owed_is_kept_listed_and_replayed(
    settings: Settings, db: Database
) -> None:
    port = free_port()
    with TestClient(create_app(fast(settings))) as client:
        sub_id = subscribe(client, f"http://127.0.0.1:{port}/notify", expiresAt=in_seconds(600))
        write(client, "POST", ENTITIES, sensor(2, 0.0))
        set_temperature(client, 2, 1.0)
        # Both notifications exist and have failed while the subscription was active; then it
        # ends. (It used to expire 1.5 s after it was made: a loaded CI machine once took longer
        # than that over the two writes, and the second write found it expired.)
        wait_for(lambda: outbox_rows(db) == 2, what="both notifications queued")
        wait_for(lambda: status(client, sub_id)["notification"].get("timesFailed", 0) >= 2)
        ends = client.patch(f"{SUBS}/{sub_id}", json={"expiresAt": in_seconds(0.3)})
        assert ends.status_code == 204, ends.text
        failed = f"{SUBS}/{sub_id}/failedNotifications"
        wait_for(lambda: len(client.get(failed).json()) == 2, timeout=10, what="kept as failed")
        listed = client.get(failed, params={"count": "true"})
        assert listed.headers["NGSILD-Results-Count"] == "2"
        first, second = listed.json()
        assert first["subscriptionId"] == sub_id and first["entityIds"] == ["urn:ngsi-ld:Sensor:2"]
        assert first["failedReason"] == "the subscription is expired"
        assert first["attempts"] >= 1 and "refused" in first["lastError"]
        assert first["failedAt"] >= first["lastAttemptAt"] >= first["notifiedAt"]
        # The subscription tells: expired, its last notification failed, and how often.
        sub = status(client, sub_id)
        assert sub["status"] == "expired" and sub["notification"]["status"] == "failed"
        times_failed = sub["notification"]["timesFailed"]
        assert times_failed >= 1
        counters = client.get(METRICS).json()["subscriptions"]
        assert counters["outbox"] == {"pending": 0, "retrying": 0, "failed": 2}
        assert counters["process"]["failed"] == 2
        # Kept, not retried: nothing more is attempted (several retry caps later).
        time.sleep(0.6)
        assert status(client, sub_id)["notification"]["timesFailed"] == times_failed

        receiver = Receiver(port)
        try:
            replayed = client.post(f"{failed}/replay")
            assert replayed.status_code == 202 and replayed.json() == {"replayed": 2}
            receiver.wait(2, timeout=5)
            assert temperatures(receiver) == [0.0, 1.0]
            assert [r.body["id"] for r in receiver.received] == [first["id"], second["id"]]
            wait_for(lambda: outbox_rows(db) == 0)
            assert client.get(failed).json() == []
            assert status(client, sub_id)["notification"]["status"] == "ok"
        finally:
            receiver.close()


def test_registration_notifications_of_a_paused_subscription_are_kept_too(
    settings: Settings, db: Database
) -> None:
    port = free_port()
    with TestClient(create_app(fast(settings))) as client:
        sub = {
            "id": "urn:ngsi-ld:Subscription:sources",
            "type": "Subscription",
            "entities": [{"type": "TrafficFlowObserved"}],
            "notification": {"endpoint": {"uri": f"http://127.0.0.1:{port}/notify"}},
        }
        assert client.post(CSUBS, json=sub).status_code == 201
        for name in ("td", "epd"):
            registration = {
                "id": f"urn:ngsi-ld:ContextSourceRegistration:{name}",
                "type": "ContextSourceRegistration",
                "information": [{"entities": [{"type": "TrafficFlowObserved"}]}],
                "endpoint": "http://td-broker.example:8000",
            }
            assert client.post(CSR, json=registration).status_code == 201
        location = f"{CSUBS}/{sub['id']}"
        wait_for(lambda: client.get(location).json()["notification"].get("timesFailed", 0) >= 3)
        assert client.patch(location, json={"isActive": False}).status_code == 204
        failed = f"{location}/failedNotifications"
        wait_for(lambda: len(client.get(failed).json()) == 2, timeout=10, what="kept as failed")
        first, second = client.get(failed).json()
        assert first["registrationIds"] == ["urn:ngsi-ld:ContextSourceRegistration:td"]
        assert first["failedReason"] == "the subscription is paused"
        assert client.get(location).json()["notification"]["status"] == "failed"

        # One is discarded, the other replayed by id; an unknown id is a 404 naming it.
        unknown = client.post(f"{failed}/replay", params={"id": "urn:ngsi-ld:Notification:x"})
        assert unknown.status_code == 404 and "urn:ngsi-ld:Notification:x" in unknown.text
        assert client.delete(failed, params={"id": first["id"]}).status_code == 204
        receiver = Receiver(port)
        try:
            replayed = client.post(f"{failed}/replay", params={"id": second["id"]})
            assert replayed.status_code == 202 and replayed.json() == {"replayed": 1}
            got = receiver.wait(1, timeout=5)
            assert [r.body["id"] for r in got] == [second["id"]]
            assert got[0].body["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:epd"
            wait_for(lambda: client.get(failed).json() == [])
            counters = client.get(METRICS).json()["csourceSubscriptions"]
            assert counters["outbox"] == {"pending": 0, "retrying": 0, "failed": 0}
            assert counters["process"]["delivered"] == 1
        finally:
            receiver.close()
        missing = client.get(f"{CSUBS}/urn:ngsi-ld:Subscription:none/failedNotifications")
        assert missing.status_code == 404


def test_a_dead_workers_claim_is_taken_over_within_seconds(
    settings: Settings, db: Database
) -> None:
    receiver = Receiver()
    app = create_app(fast(settings))
    try:
        # Outside its lifespan the app's notifier is not running: the notification waits.
        idle = TestClient(app)
        sub_id = subscribe(idle, receiver.url)
        write(idle, "POST", ENTITIES, sensor(3, 3.0))
        # Another process claims it with a 1 s lease, then dies (never renews, never sends).
        hub = app.state.hub
        dead = Notifier(
            db, hub.subscriptions, hub.entities, hub.contexts, senders=hub.notifier.senders,
            lease=1.0,
        )  # fmt: skip
        claimed_at = time.monotonic()
        assert [len(group) for group in dead.claim(8, set())] == [1]
        with db.read() as conn:
            holder = conn.execute(select(schema.outbox.c.claimed_by)).scalar_one()
        assert holder == dead.worker_id
        with TestClient(app):  # the server starts: its notifier claims what is due
            receiver.wait(1, timeout=5)
            taken_after = time.monotonic() - claimed_at
            # Not before the dead worker's lease ran out (a live worker's claim is respected),
            # and within seconds of it (it used to be two minutes).
            assert 0.9 <= taken_after < 5, taken_after
            assert receiver.received[0].body["subscriptionId"] == sub_id
            wait_for(lambda: outbox_rows(db) == 0)
            assert notifier(app).metrics.snapshot()["takenOver"] == 1
    finally:
        receiver.close()


def test_a_live_worker_keeps_its_claim_while_a_slow_receiver_answers(
    settings: Settings, db: Database
) -> None:
    # A lease of 0.3 s against a receiver taking 1 s per notification: only the renewals keep
    # the second server from taking the notifications over and sending them again.
    slow = Receiver(delay=1.0)
    try:
        settings = fast(settings, lease=0.3)
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            subscribe(one, slow.url)
            write(one, "POST", ENTITIES, sensor(4, 0.0))
            set_temperature(two, 4, 1.0)
            slow.wait(2, timeout=10)
            wait_for(lambda: outbox_rows(db) == 0)
            ids = [r.body["id"] for r in slow.received]
            assert len(ids) == len(set(ids)) == 2
            assert temperatures(slow) == [0.0, 1.0]
    finally:
        slow.close()


def test_failed_notifications_and_counters_need_the_right_key(db: Database) -> None:
    settings = Settings(database_url=db.url, auth_required=True)
    keys = KeyStore(db)
    _, everywhere = keys.create("operator", scope="write")
    _, city = keys.create("city app", scope="write", tenants=["city"])
    _, reader = keys.create("reader", scope="read")
    failed = f"{SUBS}/urn:ngsi-ld:Subscription:x/failedNotifications"
    with TestClient(create_app(settings)) as client:
        assert client.get(failed).status_code == 401
        assert client.post(f"{failed}/replay", headers=bearer(reader)).status_code == 403
        assert client.delete(failed, headers=bearer(city)).status_code == 403  # not its tenant
        city_failed = client.get(failed, headers={**bearer(city), "NGSILD-Tenant": "city"})
        assert city_failed.status_code == 404  # allowed, and no such subscription there
        assert "urn:ngsi-ld:Subscription:x" in city_failed.json()["detail"]
        assert client.get(METRICS).status_code == 401
        assert client.get(METRICS, headers=bearer(city)).status_code == 403
        assert client.get(METRICS, headers=bearer(everywhere)).status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
