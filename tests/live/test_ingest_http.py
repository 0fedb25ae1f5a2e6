"""Readings over HTTP: single and batch, duplicates, out of order, auth, backpressure."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.hub.timeutil import now_us
from smartcity.live.devices.service import AttrMap, Device, DeviceRegistry
from smartcity.live.ingest.metrics import Metrics
from smartcity.live.ingest.readings import Rejected, parse_reading
from smartcity.live.ingest.writer import BatchWriter, Outcome, Submission

ENTITY = "urn:ngsi-ld:AirQualityObserved:tai-po"
SPEC: dict[str, Any] = {
    "id": "aq-1",
    "entity_id": ENTITY,
    "entity_type": "AirQualityObserved",
    "attributes": {
        "pm25": {"name": "pm25", "unitCode": "GQ"},
        "temp": {"name": "temperature", "unitCode": "CEL", "scale": 0.1},
    },
    "interval_s": 60,
}


def device(client: TestClient, **overrides: Any) -> dict[str, str]:
    r = client.post("/api/v1/devices", json={**SPEC, **overrides})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


def post(client: TestClient, auth: dict[str, str], body: Any, device_id: str = "aq-1") -> Any:
    return client.post(f"/api/v1/devices/{device_id}/readings", json=body, headers=auth)


def history(client: TestClient, attr: str = "pm25") -> list[Any]:
    r = client.get(
        f"/ngsi-ld/v1/temporal/entities/{ENTITY}",
        params={"attrs": attr, "options": "temporalValues"},
    )
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    values = r.json().get(attr, {}).get("values", [])
    return [v for v, _ in values] if isinstance(values, list) else []


def latest(client: TestClient) -> dict[str, Any]:
    r = client.get(f"/ngsi-ld/v1/entities/{ENTITY}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def metrics(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/api/v1/ingest/metrics").json())


def test_single_reading_creates_the_entity_with_units_and_scale(client: TestClient) -> None:
    auth = device(client)
    r = post(client, auth, {"t": "2026-11-25T08:00:00Z", "pm25": 12, "temp": 215, "rssi": -70})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "index": 0,
        "t": "2026-11-25T08:00:00.000Z",
        "ignored": ["rssi"],
        "status": "written",
    }
    doc = latest(client)
    assert doc["type"] == "AirQualityObserved"
    assert doc["pm25"] == {
        "type": "Property",
        "value": 12,
        "observedAt": "2026-11-25T08:00:00.000Z",
        "unitCode": "GQ",
    }
    assert doc["temperature"]["value"] == 21.5
    assert doc["temperature"]["unitCode"] == "CEL"
    assert history(client) == [12]


def test_epoch_seconds_and_missing_time(client: TestClient) -> None:
    auth = device(client)
    assert post(client, auth, {"t": 1_795_000_000.25, "pm25": 1}).json()["t"] == (
        "2026-11-18T11:06:40.250Z"
    )
    before = now_us()
    got = post(client, auth, {"pm25": 2}).json()
    assert got["status"] == "written" and got["t"] >= "2026"
    assert latest(client)["pm25"]["value"] == 2 and before > 0


def test_batch_with_bad_items_keeps_the_good_ones(client: TestClient) -> None:
    auth = device(client)
    body = [
        {"t": "2026-11-25T08:00:00Z", "pm25": 10},
        {"t": "yesterday", "pm25": 11},
        {"t": "2026-11-25T08:01:00Z", "pm25": "high", "temp": "warm"},
        "not an object",
        {"t": "2026-11-25T08:02:00Z", "unknown": 1},
        {"t": "2026-11-25T08:03:00Z", "pm25": 13},
        {"t": "2999-01-01T00:00:00Z", "pm25": 14},
    ]
    r = post(client, auth, body)
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [
        "written",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "written",
        "rejected",
    ]
    assert [x.get("reason") for x in results if x["status"] == "rejected"] == [
        "bad_timestamp",
        "bad_value",
        "malformed",
        "no_values",
        "future_timestamp",
    ]
    assert r.json()["accepted"] == 2
    assert history(client) == [10, 13]
    m = metrics(client)
    assert m["received"] == 7 and m["written"] == 2 and m["rejectedTotal"] == 5
    all_bad = post(client, auth, [{"t": "bad", "pm25": 1}])
    assert all_bad.status_code == 400
    single_bad = post(client, auth, {"t": "bad", "pm25": 1})
    assert single_bad.status_code == 400
    assert single_bad.json()["reason"] == "bad_timestamp"


def test_same_device_and_time_twice_is_one_history_instance(client: TestClient) -> None:
    auth = device(client)
    reading = {"t": "2026-11-25T08:00:00Z", "pm25": 12}
    assert post(client, auth, reading).json()["status"] == "written"
    again = post(client, auth, reading)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # ... also inside one batch, and with another representation of the same instant
    same = [reading, {"t": "2026-11-25T16:00:00+08:00", "pm25": 99}, reading]
    results = post(client, auth, same).json()["results"]
    assert [x["status"] for x in results] == ["duplicate"] * 3
    assert history(client) == [12]
    assert latest(client)["pm25"]["value"] == 12
    assert metrics(client)["duplicates"] == 4


def test_an_older_reading_goes_to_the_history_only(client: TestClient) -> None:
    auth = device(client)
    assert post(client, auth, {"t": "2026-11-25T09:00:00Z", "pm25": 30}).status_code == 200
    older = post(client, auth, {"t": "2026-11-25T08:00:00Z", "pm25": 20, "temp": 180})
    # temp had no value yet, so the reading moved the latest state: written
    assert older.json()["status"] == "written"
    doc = latest(client)
    assert doc["pm25"]["value"] == 30
    assert doc["pm25"]["observedAt"] == "2026-11-25T09:00:00.000Z"
    assert doc["temperature"]["value"] == 18.0
    stale = post(client, auth, {"t": "2026-11-25T07:00:00Z", "pm25": 10})
    assert stale.json()["status"] == "stale"
    assert latest(client)["pm25"]["value"] == 30
    assert sorted(history(client)) == [10, 20, 30]
    # Within one batch too: the newest wins whatever the order of the items.
    batch = [{"t": "2026-11-25T11:00:00Z", "pm25": 50}, {"t": "2026-11-25T10:00:00Z", "pm25": 40}]
    post(client, auth, batch)
    assert latest(client)["pm25"]["value"] == 50
    assert metrics(client)["stale"] == 1


def test_credentials_are_checked_and_failures_counted(client: TestClient) -> None:
    auth = device(client)
    device(client, id="aq-2")
    reading = {"pm25": 1}
    assert post(client, {}, reading).status_code == 401
    assert post(client, {"Authorization": "Bearer scd_wrong"}, reading).status_code == 401
    assert post(client, auth, reading, device_id="aq-2").status_code == 401  # not its secret
    unknown = post(client, auth, reading, device_id="nope")
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    key = auth["Authorization"].split()[1]
    assert post(client, {"X-Device-Key": key}, reading).status_code == 200
    # Revoked by another process: refused here once this process refreshed its cache.
    reg = client.app.state.ingest.registry  # type: ignore[attr-defined]
    DeviceRegistry(reg.db, reg.entities, reg.contexts).revoke("aq-1")
    assert post(client, auth, reading).status_code == 200
    assert reg.refresh() >= 1
    assert post(client, auth, reading).status_code == 401
    rejected = metrics(client)["rejected"]
    assert rejected == {"bad_credentials": 3, "unknown_device": 1, "revoked": 1}


def test_limits_and_malformed_bodies(client: TestClient) -> None:
    auth = device(client)
    too_many = [{"pm25": n} for n in range(1001)]
    assert post(client, auth, too_many).status_code == 413
    assert post(client, auth, []).status_code == 400
    r = client.post("/api/v1/devices/aq-1/readings", content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")


def test_a_full_queue_answers_503_with_retry_after(client: TestClient) -> None:
    auth = device(client)
    writer = client.app.state.ingest.writer  # type: ignore[attr-defined]
    gate = threading.Event()
    writer.capacity = 2
    # Hold the writer's database lock-free path busy: a callback that blocks the thread.
    blocker = Submission([], lambda _o: gate.wait(10))
    dev = client.app.state.ingest.registry.get("aq-1")  # type: ignore[attr-defined]
    assert dev is not None
    filler = [parse_reading(dev, {"t": 1_000 + n, "pm25": n}, now_us()) for n in range(2)]
    try:
        assert writer.offer(blocker)
        assert writer.flush(0.2) is False  # the writer is stuck in the blocker
        assert writer.offer(Submission(filler))
        r = post(client, auth, {"pm25": 1})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert metrics(client)["overload"] >= 1
    finally:
        gate.set()
        writer.capacity = 50_000
    assert writer.flush(10)
    assert post(client, auth, {"pm25": 1}).status_code == 200
    assert sorted(history(client)) == [0, 1, 1]


def test_bounded_queue_blocks_producers_until_there_is_room(client: TestClient) -> None:
    ingest = client.app.state.ingest  # type: ignore[attr-defined]
    writer = BatchWriter(ingest.writer.db, ingest.writer.entities, Metrics(), capacity=3)
    device(client)
    dev = ingest.registry.get("aq-1")
    readings = [parse_reading(dev, {"t": 2_000 + n, "pm25": n}, now_us()) for n in range(6)]
    outcomes: list[Outcome] = []
    assert writer.offer(Submission(readings[:3], outcomes.append))
    assert not writer.offer(Submission(readings[3:4]), timeout=0.05)  # full, writer not started
    assert writer.pending == 3
    writer.start()
    try:
        assert writer.offer(Submission(readings[3:], outcomes.append), timeout=5)
        assert writer.flush(10)
    finally:
        writer.stop()
    assert [s for o in outcomes for s in o.statuses] == ["written"] * 6
    assert writer.metrics.overload == 1


def _device() -> Device:
    attrs = {
        "v": AttrMap("v", "v", "https://example.org/v", None, 2.0, 1.0),
        "s": AttrMap("s", "s", "https://example.org/s", "CEL", None, None),
    }
    return Device(
        1,
        "d",
        "",
        "d",
        "urn:x:1",
        "T",
        "https://example.org/T",
        None,
        attrs,
        "",
        "t",
        "secret",
        60,
        "ok",
        0,
        None,
        None,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["t", "v", "s", "x", "key"]), inner, max_size=4)
        ),
        max_leaves=8,
    )
)
def test_the_reading_parser_never_fails_unexpectedly(raw: Any) -> None:
    try:
        reading = parse_reading(_device(), raw, now_us())
    except Rejected as exc:
        assert exc.reason in {
            "malformed",
            "bad_timestamp",
            "future_timestamp",
            "bad_value",
            "no_values",
        }
        return
    assert reading.values and reading.t % 1000 == 0
    for inst in reading.values.values():
        assert inst["observedAt"] == reading.observed_at
    if "https://example.org/v" in reading.values:
        assert reading.values["https://example.org/v"]["value"] == raw["v"] * 2.0 + 1.0


def test_the_ledger_forgets_readings_older_than_its_window(client: TestClient) -> None:
    """Pruning removes only ledger rows of readings older than ``ledger_days``: a redelivery
    of a recent reading is still recognised, the history keeps everything."""
    from sqlalchemy import func, select

    from smartcity.live.tables import live_readings

    auth = device(client)
    now_s = now_us() / 1e6
    old = [now_s - 40 * 86_400 + k for k in range(3)]  # 40 days ago
    recent = [now_s - 3_600 + k for k in range(2)]  # an hour ago
    r = post(client, auth, [{"t": t, "pm25": k} for k, t in enumerate(old + recent)])
    assert r.status_code == 200, r.text
    ingest = client.app.state.ingest  # type: ignore[attr-defined]
    db = ingest.writer.db

    def ledger() -> int:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(live_readings)).scalar_one())

    assert ledger() == 5
    ingest.config.ledger_days = 30
    assert ingest.prune_ledger() == 3
    assert ledger() == 2
    again = post(client, auth, {"t": recent[0], "pm25": 3})  # redelivered: still a duplicate
    assert again.json()["status"] == "duplicate", again.text
    assert sorted(history(client)) == [0, 1, 2, 3, 4]
    ingest.config.ledger_days = 0  # never prune
    assert ingest.prune_ledger() == 0 and ledger() == 2
