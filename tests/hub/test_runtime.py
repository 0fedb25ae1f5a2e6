"""The hub's front door (hub/runtime.py) and its change feed (hub/changes.py): every writer,
device ingestion included, goes through one pipeline — history, in-transaction hooks, commit,
after-commit listeners — and every registration can be undone."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from smartcity.config import Settings
from smartcity.hub.changes import Change, Listeners
from smartcity.hub.runtime import Hub, build_hub
from smartcity.hub.timeutil import now_us
from smartcity.live.devices.schemas import DeviceCreate
from smartcity.live.ingest.readings import parse_reading
from smartcity.live.ingest.runtime import IngestConfig, build_ingest
from smartcity.live.ingest.writer import Submission
from smartcity.storage import schema
from smartcity.storage.engine import Database

E = "urn:ngsi-ld:Sensor:feed-1"


def sensor(value: float = 1) -> dict[str, object]:
    return {
        "id": E,
        "type": ["https://uri.fiware.org/ns/data-models#Sensor"],
        "attrs": {"https://w3id.org/saref#temperature": [{"type": "Property", "value": value}]},
    }


@pytest.fixture
def hub(db: Database) -> Hub:
    return build_hub(Settings(database_url=db.url, auth_required=False), db)


def history_rows(db: Database) -> int:
    """How many attribute instances the temporal evolution of the sensor keeps."""
    AH, H = schema.attr_history, schema.history_entities
    with db.read() as conn:
        query = select(func.count()).select_from(AH.join(H, H.c.hid == AH.c.hid))
        return int(conn.execute(query.where(H.c.entity_id == E)).scalar_one())


def test_listeners_can_unsubscribe_even_while_being_called() -> None:
    calls: list[str] = []
    listeners: Listeners[[str]] = Listeners("test")

    def once(x: str) -> None:
        calls.append("once " + x)
        unsubscribe_once()

    unsubscribe_once = listeners.add(once)
    unsubscribe_always = listeners.add(lambda x: calls.append("always " + x))
    listeners.notify("a")
    listeners.notify("b")
    unsubscribe_always()
    unsubscribe_always()  # a second call is harmless
    listeners.notify("c")
    assert calls == ["once a", "always a", "always b"]
    assert not listeners


def test_a_write_runs_history_then_hooks_in_the_transaction_then_listeners(
    hub: Hub, db: Database
) -> None:
    seen: list[str] = []

    def hook(conn: Connection, changes: Sequence[Change]) -> None:
        # Inside the transaction: the history row and the entity are there, not yet committed.
        rows = conn.execute(select(func.count()).select_from(schema.attr_history)).scalar()
        seen.append(f"hook {[c.entity_id for c in changes]} history={rows}")

    def listener(changes: Sequence[Change]) -> None:
        seen.append(f"listener {[c.entity_id for c in changes]} history={history_rows(db)}")

    hub.feed.on_change(hook)
    hub.feed.on_commit(listener)
    hub.entities.create("", sensor())
    assert seen == [f"hook {[E]} history=1", f"listener {[E]} history=1"]


def test_a_failing_hook_undoes_the_write_and_nobody_is_told(hub: Hub, db: Database) -> None:
    told: list[Sequence[Change]] = []

    def refuse(_conn: Connection, _changes: Sequence[Change]) -> None:
        raise RuntimeError("refused")

    unplug = hub.feed.on_change(refuse)
    hub.feed.on_commit(told.append)
    with pytest.raises(RuntimeError):
        hub.entities.create("", sensor())
    assert told == [] and history_rows(db) == 0
    with pytest.raises(Exception, match="does not exist"):
        hub.entities.get("", E)
    unplug()
    hub.entities.create("", sensor())
    assert len(told) == 1 and history_rows(db) == 1


def test_a_failing_listener_never_undoes_an_accepted_write(hub: Hub) -> None:
    told: list[Sequence[Change]] = []

    def broken(_changes: Sequence[Change]) -> None:
        raise RuntimeError("listener bug")

    hub.feed.on_commit(broken)
    hub.feed.on_commit(told.append)  # the others are still told
    hub.entities.create("", sensor())
    assert hub.entities.get("", E)["id"] == E
    assert len(told) == 1


def test_device_ingestion_commits_through_the_hub_pipeline(hub: Hub, db: Database) -> None:
    ingest = build_ingest(hub, IngestConfig())
    device, _secret = ingest.registry.create(
        DeviceCreate.model_validate(
            {
                "id": "t-1",
                "entity_id": E,
                "entity_type": "Sensor",
                "attributes": {"temp": {"name": "temperature"}},
            }
        )
    )
    in_transaction: list[str] = []
    committed: list[str] = []
    hub.feed.on_change(lambda _c, changes: in_transaction.extend(c.entity_id for c in changes))
    hub.feed.on_commit(lambda changes: committed.extend(c.entity_id for c in changes))
    now = now_us()
    readings = [
        parse_reading(device, {"t": (now - 2_000_000 + k * 1_000_000) / 1e6, "temp": k}, now)
        for k in range(2)
    ]
    ingest.writer.start()
    try:
        assert ingest.writer.offer(Submission(readings))
        assert ingest.writer.flush(10)
    finally:
        ingest.writer.stop()
    assert in_transaction == [E] and committed == [E]  # the latest state changed once
    assert history_rows(db) == 2  # every reading is in the history


def test_the_app_and_the_clis_share_one_hub_builder(client: TestClient) -> None:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    assert isinstance(hub, Hub)
    # The matcher and the dashboard's live view are plugged into the one feed.
    assert len(hub.feed.hooks) == 1 and len(hub.feed.listeners) == 2


def test_closing_a_hub_unplugs_what_it_wired(db: Database) -> None:
    hub = build_hub(Settings(database_url=db.url, auth_required=False), db)
    assert len(hub.feed.hooks) == 1
    hub.close()
    assert len(hub.feed.hooks) == 0 and len(hub.feed.listeners) == 0


def test_storage_runs_the_hooks_of_the_layers_above_on_every_connection(db: Database) -> None:
    made: list[object] = []
    db.prepare_connection(made.append)
    with db.read() as conn:
        conn.exec_driver_sql("SELECT 1")
    with db.write() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert made  # connections opened since, the pooled ones included, were prepared


def test_the_site_session_layer_wraps_only_the_portal(client: TestClient) -> None:
    cookie = {"Cookie": "smartcity_session=planted"}
    api = client.get("/ngsi-ld/v1/types", headers=cookie)
    assert api.status_code == 200
    assert "set-cookie" not in api.headers and "cache-control" not in api.headers
    assert all(m.cls.__name__ != "SiteSessions" for m in client.app.user_middleware)  # type: ignore[attr-defined]
    page = client.get("/en/login")
    assert page.status_code == 200
    assert "smartcity_session" in page.headers.get("set-cookie", "")
    # The portal's own assets are its routes too (served without a session).
    script = client.get("/site-assets/interactive.js")
    assert script.status_code == 200 and "set-cookie" not in script.headers
    assert client.get("/en/no-such-page").status_code == 404
