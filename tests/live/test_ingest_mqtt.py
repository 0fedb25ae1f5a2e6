"""Readings over a real Mosquitto broker (SMARTCITY_TEST_MQTT_URL, e.g. mqtt://127.0.0.1:1883)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.config import Settings
from smartcity.hub.api.deps import Hub
from smartcity.hub.runtime import build_hub
from smartcity.live.devices.schemas import DeviceCreate
from smartcity.live.ingest.runtime import Ingest, IngestConfig, build_ingest
from smartcity.storage.engine import Database

MQTT_URL = os.environ.get("SMARTCITY_TEST_MQTT_URL")
pytestmark = pytest.mark.skipif(
    not MQTT_URL, reason="SMARTCITY_TEST_MQTT_URL not set (e.g. mqtt://127.0.0.1:1883)"
)
ENTITY = "urn:ngsi-ld:WeatherObserved:lamppost-7"
T0 = 1_795_000_000  # epoch seconds, 2026-11-18


@pytest.fixture
def live(db: Database, mqtt_config: IngestConfig) -> Iterator[tuple[Ingest, Hub]]:
    hub = build_hub(Settings(database_url=db.url, auth_required=False), db)
    ingest = build_ingest(hub, mqtt_config)
    ingest.start()
    assert ingest.mqtt is not None and ingest.mqtt.wait_connected(10)
    try:
        yield ingest, hub
    finally:
        ingest.stop()


@pytest.fixture
def publisher() -> Iterator[paho.Client]:
    assert MQTT_URL
    url = urlparse(MQTT_URL)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def register(ingest: Ingest, device_id: str = "lamp-7", **extra: Any) -> tuple[str, str]:
    spec = DeviceCreate.model_validate(
        {
            "id": device_id,
            "entity_id": ENTITY,
            "entity_type": "WeatherObserved",
            "attributes": {"temp": {"name": "temperature", "unitCode": "CEL"}},
            **extra,
        }
    )
    device, secret = ingest.registry.create(spec)
    return device.mqtt_topic, secret


def publish(client: paho.Client, topic: str, payload: Any) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    client.publish(topic, data, qos=1).wait_for_publish(5)


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def temperatures(hub: Hub, tenant: str = "") -> list[float]:
    """Every history instance of the entity (straight from the history tables)."""
    from sqlalchemy import select

    from smartcity.storage.schema import attr_history as AH
    from smartcity.storage.schema import history_entities as H

    with hub.entities.db.read() as conn:
        rows = conn.execute(
            select(AH.c.num)
            .join(H, H.c.hid == AH.c.hid)
            .where(H.c.tenant == tenant, H.c.entity_id == ENTITY)
        )
        return sorted(float(r[0]) for r in rows)


def test_readings_arrive_once_and_in_time_order(
    live: tuple[Ingest, Hub], publisher: paho.Client
) -> None:
    ingest, hub = live
    topic, secret = register(ingest)
    publish(publisher, topic, {"key": secret, "t": T0 + 60, "temp": 21.0})
    # (committed before the next ones: within one batch an older reading is applied first)
    wait_until(lambda: ingest.metrics.written >= 1)
    publish(publisher, topic, {"key": secret, "t": T0 + 60, "temp": 21.0})  # redelivered
    publish(publisher, topic, {"key": secret, "t": T0, "temp": 19.0})  # older: history only
    publish(
        publisher,
        topic,
        {"key": secret, "readings": [{"t": T0 + 120, "temp": 22.0}, {"t": "bad", "temp": 0}]},
    )
    wait_until(lambda: ingest.metrics.written + ingest.metrics.duplicates >= 4)
    m = ingest.metrics.snapshot()
    assert m["written"] == 3 and m["duplicates"] == 1 and m["stale"] == 1
    assert m["rejected"] == {"bad_timestamp": 1}
    assert hub.entities.get("", ENTITY)["attrs"]
    doc = hub.entities.get("", ENTITY)
    (inst,) = next(iter(doc["attrs"].values()))
    assert inst["value"] == 22.0 and inst["unitCode"] == "CEL"
    assert temperatures(hub) == [19.0, 21.0, 22.0]


def test_wrong_topic_credentials_and_garbage_are_refused_but_never_stop_ingestion(
    live: tuple[Ingest, Hub], publisher: paho.Client
) -> None:
    ingest, hub = live
    topic, secret = register(ingest)
    other_topic, other_secret = register(ingest, "lamp-8", tenant="kowloon")
    prefix = topic.split("/")[0]
    bad = [
        (topic, b"\xff not json"),
        (topic, b"[1, 2]"),
        (topic, orjson.dumps({"temp": 1, "t": T0})),  # no key
        (topic, orjson.dumps({"key": other_secret, "temp": 1, "t": T0})),  # another's key
        # lamp-8 is in tenant kowloon: the same device on the default tenant's topic
        (
            f"{prefix}/default/devices/lamp-8/readings",
            orjson.dumps({"key": other_secret, "temp": 1}),
        ),
        (f"{prefix}/default/devices/ghost/readings", orjson.dumps({"key": "x", "temp": 1})),
        (f"{prefix}/default/devices/lamp-7/readings/extra", b"{}"),
    ]
    for t, payload in bad:
        publish(publisher, t, payload)
    publish(publisher, topic, {"key": secret, "t": T0, "temp": 18.5})
    publish(publisher, other_topic, {"key": other_secret, "t": T0, "temp": 25.0})
    wait_until(lambda: ingest.metrics.written >= 2)
    wait_until(lambda: sum(ingest.metrics.rejected.values()) >= 6)
    assert dict(ingest.metrics.rejected) == {
        "malformed": 2,
        "bad_credentials": 2,
        "wrong_topic": 1,
        "unknown_device": 1,
    }
    assert temperatures(hub) == [18.5]
    assert hub.entities.get("kowloon", ENTITY) is not None


def test_broker_policy_trusts_the_topic(live: tuple[Ingest, Hub], publisher: paho.Client) -> None:
    ingest, hub = live
    topic, _ = register(ingest, mqtt_auth="broker")
    publish(publisher, topic, {"t": T0, "temp": 20.0})
    wait_until(lambda: ingest.metrics.written >= 1)
    assert temperatures(hub) == [20.0]


def test_unacknowledged_readings_are_redelivered_after_a_crash(
    db: Database, publisher: paho.Client, mqtt_config: IngestConfig
) -> None:
    """A subscriber that dies before committing leaves its messages unacknowledged: the
    broker hands them to the next session with the same client id, and nothing is lost."""
    hub = build_hub(Settings(database_url=db.url, auth_required=False), db)
    config = mqtt_config
    first = build_ingest(hub, config)
    topic, secret = register(first)
    # The writer never runs: messages are received and queued, never committed nor acked.
    from smartcity.live.ingest.mqtt import MqttSubscriber

    crashed = MqttSubscriber(first, MQTT_URL)
    crashed.start()
    assert crashed.wait_connected(10)
    for n in range(5):
        publish(publisher, topic, {"key": secret, "t": T0 + n, "temp": float(n)})
    wait_until(lambda: first.writer.pending == 5)
    crashed.client.loop_stop()  # the process "dies": no acks, the socket is dropped
    crashed.client.socket().close()  # type: ignore[union-attr]
    time.sleep(0.5)
    second = build_ingest(hub, config)
    second.start()
    try:
        wait_until(lambda: second.metrics.written >= 5, timeout=20)
        assert temperatures(hub) == [0.0, 1.0, 2.0, 3.0, 4.0]
    finally:
        second.stop()


def test_a_reading_holding_a_nul_is_refused_and_the_others_kept(
    live: tuple[Ingest, Hub], publisher: paho.Client
) -> None:
    """U+0000 cannot be stored on PostgreSQL: refused per reading, alike on both backends."""
    ingest, hub = live
    topic, secret = register(ingest)
    readings = [{"t": T0, "temp": "a\u0000b"}, {"t": T0 + 60, "temp": 21.0}]
    publish(publisher, topic, {"key": secret, "readings": readings})
    wait_until(lambda: ingest.metrics.written >= 1)
    assert ingest.metrics.snapshot()["rejected"] == {"bad_value": 1}
    assert temperatures(hub) == [21.0]
