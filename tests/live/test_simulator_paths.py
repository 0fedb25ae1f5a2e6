"""The simulator through the real ingestion paths.

* MQTT: simulator -> real Mosquitto (SMARTCITY_TEST_MQTT_URL) -> ingestion -> hub, on every
  backend (SQLite, PostgreSQL when configured).
* HTTP: ``smartcity simulate --via http`` against a real ``smartcity serve`` process, twice
  with the same seed and start: the second run's readings are all duplicates (same readings).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from smartcity.config import Settings
from smartcity.hub.querying import EntityQuery
from smartcity.hub.runtime import build_hub
from smartcity.live.ingest.runtime import IngestConfig, build_ingest
from smartcity.live.simulator.models import CityModel
from smartcity.live.simulator.places import build_fleet
from smartcity.live.simulator.provision import LocalRegistrar, State, prepare, terms
from smartcity.live.simulator.publishers import MqttPublisher
from smartcity.live.simulator.runner import Schedule, run
from smartcity.storage import schema
from smartcity.storage.engine import Database

MQTT_URL = os.environ.get("SMARTCITY_TEST_MQTT_URL")
CLI = [sys.executable, "-m", "smartcity"]
LIVE_TYPES = ("OffStreetParking", "TrafficFlowObserved", "CrowdFlowObserved", "WasteContainer")


def _history_rows(db: Database, entity_id: str) -> int:
    h, a = schema.history_entities, schema.attr_history
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(a.join(h, a.c.hid == h.c.hid))
                .where(h.c.entity_id == entity_id)
            ).scalar_one()
        )


@pytest.mark.skipif(not MQTT_URL, reason="SMARTCITY_TEST_MQTT_URL not set (mqtt://127.0.0.1:1883)")
def test_mqtt_path_end_to_end(db: Database, tmp_path: Path, mqtt_config: IngestConfig) -> None:
    assert MQTT_URL
    hub = build_hub(Settings(database_url=db.url), db)
    config = mqtt_config
    prefix = config.topic_pattern.split("/")[0]
    ingest = build_ingest(hub, config)
    ingest.start()
    try:
        assert ingest.mqtt is not None and ingest.mqtt.wait_connected(10)
        fleet = build_fleet(100, 11)
        creds = prepare(
            fleet,
            LocalRegistrar(ingest.registry, hub.entities, hub.contexts),
            State(db.url, tmp_path),
            interval_s=60,
        )
        assert all(c.topic.startswith(prefix + "/default/devices/sim-") for c in creds.values())
        publisher = MqttPublisher(MQTT_URL, client_id=f"sim-{prefix}")
        publisher.connect()
        start_us = (int(time.time()) - 600) * 1_000_000  # ten minutes ago: never "future"
        final = run(
            Schedule(fleet, 11, 300.0, 1.0, start_us),
            CityModel(11),
            creds,
            publisher,
            stop=threading.Event(),
            duration_s=1.0,
        )
        publisher.close()
        assert final.produced == 300 and publisher.stats.acked == 300
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ingest.metrics.snapshot()["written"] < 300:
            time.sleep(0.1)
        snapshot = ingest.metrics.snapshot()
        assert snapshot["written"] == 300, snapshot
        assert snapshot["rejectedTotal"] == 0, snapshot
    finally:
        ingest.stop()
    names = terms()
    for type_name in LIVE_TYPES:
        ids = [d.entity_id for d in fleet if d.entity_type == type_name]
        docs, _ = hub.entities.find("", EntityQuery(ids=ids), limit=1000)
        assert docs, type_name
        assert all(names[type_name] in d["type"] for d in docs)
        assert all(names["location"] in d["attrs"] for d in docs)  # static part provisioned
    # Each of the 100 devices sent 3 readings: the history holds them all.
    park = next(d for d in fleet if d.kind == "carpark")
    assert _history_rows(db, park.entity_id) >= 3 * 3  # 3 attributes x 3 readings
    doc = hub.entities.get("", park.entity_id)
    spots = doc["attrs"][names["availableSpotNumber"]][0]
    assert isinstance(spots["value"], int) and spots["observedAt"]


def _serve(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    database = f"sqlite:///{tmp_path / 'city.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_MQTT")}
    env["SMARTCITY_HOME"] = str(tmp_path / "home")
    subprocess.run(
        [*CLI, "db", "upgrade", "--database", database], check=True, env=env, capture_output=True
    )
    created = subprocess.run(
        [*CLI, "keys", "create", "sim", "--database", database],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--database", database, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, key
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_path_against_a_real_server(tmp_path: Path) -> None:
    port = _free_port()
    proc, key = _serve(tmp_path, port)
    hub = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_MQTT")}
    env.update(SMARTCITY_HOME=str(tmp_path / "sim-home"), COLUMNS="200")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    args = [
        *CLI,
        "simulate",
        "--via",
        "http",
        "--hub",
        hub,
        "--key",
        key,
        "--devices",
        "100",
        "--rate",
        "100",
        "--duration",
        "2s",
        "--seed",
        "5",
        "--start",
        start,
    ]
    try:
        first = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "200 readings" in first.stdout and "written 200" in first.stdout, first.stdout
        # The same seed and start again: the very same readings, so all duplicates.
        again = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "duplicate 200" in again.stdout, again.stdout
        # Live entities of several types, with history, through the public API.
        ctx = terms()
        for type_name in LIVE_TYPES:
            r = httpx.get(
                f"{hub}/ngsi-ld/v1/entities", params={"type": ctx[type_name], "limit": "100"}
            )
            assert r.status_code == 200 and r.json(), type_name
        r = httpx.get(
            f"{hub}/ngsi-ld/v1/entities",
            params={"type": ctx["OffStreetParking"], "limit": "1", "options": "keyValues"},
        )
        park = r.json()[0]
        assert isinstance(park[ctx["availableSpotNumber"]], int)
        history = httpx.get(
            f"{hub}/ngsi-ld/v1/temporal/entities/{park['id']}",
            params={"attrs": ctx["availableSpotNumber"], "options": "temporalValues"},
        )
        assert history.status_code == 200
        values = history.json()[ctx["availableSpotNumber"]]["values"]
        assert len(values) == 2  # 200 readings over 100 devices, no duplicates kept
        # A wrong key is refused clearly, before anything is sent.
        bad = subprocess.run(
            [*args[:8], "--key", "sc_wrong", *args[10:]],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "SMARTCITY_HOME": str(tmp_path / "other")},
        )
        assert bad.returncode == 1 and "refused the key" in bad.stderr
    finally:
        proc.terminate()
        proc.wait(20)


def test_every_device_has_its_figures_before_the_first_live_reading(
    db: Database, tmp_path: Path
) -> None:
    """The demo's start (``backfill.present``): a car park has its free spaces, a traffic
    detector its speed, before the simulator has sent anything."""
    from smartcity.hub.timeutil import now_us
    from smartcity.live.simulator.backfill import present

    hub = build_hub(Settings(database_url=db.url), db)
    ingest = build_ingest(hub, IngestConfig())
    fleet = build_fleet(100, 5)
    prepare(
        fleet,
        LocalRegistrar(ingest.registry, hub.entities, hub.contexts),
        State(db.url, tmp_path),
        interval_s=60,
    )
    names = terms()
    model = CityModel(5)
    at = now_us()
    assert present(fleet, model, ingest.registry, hub.entities, now_us=at) == len(fleet)
    for sim in fleet:
        attrs = hub.entities.get("", sim.entity_id)["attrs"]
        wanted = {names[key] for key in model.reading(sim, at)}
        assert wanted and wanted <= set(attrs), (sim.entity_id, sorted(wanted - set(attrs)))
