"""A subscription's throttling holds across nodes: two apps on one database (each with its
own matcher, as two ``serve`` nodes have) queue one notification per window between them,
not one each. Runs on every backend."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.changes import Change
from smartcity.hub.runtime import build_hub
from smartcity.storage import schema
from smartcity.storage.engine import Database

SUB = {
    "id": "urn:ngsi-ld:Subscription:throttled",
    "type": "Subscription",
    "entities": [{"type": "Sensor"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    "throttling": 3600,
}
SENSOR = "urn:ngsi-ld:Sensor:s1"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


def sensor() -> dict[str, object]:
    """The sensor as the hub stores it (names expanded)."""
    value = [{"type": "Property", "value": 1}]
    return {"id": SENSOR, "type": [DEFAULT + "Sensor"], "attrs": {DEFAULT + "t": value}}


def owed(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.outbox)).scalar_one())


def test_two_nodes_queue_one_notification_per_throttling_window(db: Database) -> None:
    settings = Settings(database_url=db.url, auth_required=False)
    # No lifespan (no `with`): nothing is delivered, so the outbox shows what was queued.
    a, b = TestClient(create_app(settings)), TestClient(create_app(settings))
    assert a.post("/ngsi-ld/v1/subscriptions", json=SUB).status_code == 201
    r = a.post("/ngsi-ld/v1/entities", json={"id": SENSOR, "type": "Sensor", "t": 1})
    assert r.status_code == 201
    assert owed(db) == 1
    for value in (2, 3):  # through the other node, inside the window
        r = b.patch(f"/ngsi-ld/v1/entities/{SENSOR}/attrs", json={"t": value})
        assert r.status_code == 204
    r = a.patch(f"/ngsi-ld/v1/entities/{SENSOR}/attrs", json={"t": 4})
    assert r.status_code == 204
    assert owed(db) == 1


def test_a_write_that_rolls_back_does_not_take_the_window(db: Database) -> None:
    hub = build_hub(Settings(database_url=db.url, auth_required=False), db)
    client = TestClient(create_app(Settings(database_url=db.url, auth_required=False)))
    assert client.post("/ngsi-ld/v1/subscriptions", json=SUB).status_code == 201

    def fail(_conn: Connection, _changes: Sequence[Change]) -> None:
        raise RuntimeError("the write fails after the matcher queued its notification")

    unplug = hub.feed.on_change(fail)  # runs after the matcher, in the same transaction
    with pytest.raises(RuntimeError):
        hub.entities.create("", sensor())
    unplug()
    with db.read() as conn:
        assert conn.execute(select(schema.subscriptions.c.last_queued_at)).scalar_one() is None
    assert owed(db) == 0
    hub.entities.create("", sensor())
    assert owed(db) == 1  # the window was still free
    hub.close()
