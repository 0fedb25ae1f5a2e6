"""Crowds through the command line (a real process) and the JSON API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.analytics.history import export_history
from smartcity.config import Settings
from smartcity.hub.runtime import open_hub
from smartcity.live.simulator.backfill import backfill
from smartcity.live.simulator.models import HKT, CityModel, first_event
from smartcity.live.simulator.places import build_fleet
from smartcity.storage.engine import Database

MIN = 60_000_000
START = datetime(2026, 11, 23, 21, 0, tzinfo=HKT)  # a Monday: no fixture at Kai Tak


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartcity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def egress_history(db: Database) -> None:
    start = int(START.timestamp() * 1e6)
    fleet = [d for d in build_fleet(100, 1) if d.kind == "crowd"]
    model = CityModel(1, first_event_us=first_event(start, "egress"))
    with open_hub(Settings(database_url=db.url), db) as hub:
        backfill(fleet, model, hub.temporal, end_us=start + 90 * MIN, hours=2, step_s=60)


@pytest.mark.slow
def test_crowds_run_writes_alerts_and_the_api_shows_them(
    db: Database, client: TestClient, tmp_path: Path
) -> None:
    egress_history(db)
    # The API computes without writing: LOS per zone at 21:25, 20 minutes after the match.
    r = client.get(
        "/api/v1/analytics/crowds/kai-tak-sports-park", params={"at": "2026-11-23T21:25"}
    )
    assert r.status_code == 200, r.text
    zones = {z["zone"]: z for z in r.json()["zones"]}
    assert zones["shing-kai-footbridge"]["los"] == "F"
    assert zones["shing-kai-footbridge"]["level"] == "critical"
    assert r.json()["design_egress_min"] == 7.25
    assert client.get("/api/v1/analytics/crowds/kai-tak-sports-park/alerts").json() == {
        "alerts": []
    }

    done = cli(
        "analytics", "crowds", "run", "--at", "2026-11-23T21:25", "--json", "--database", db.url
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["alerts"]  # the JSON result names the alerts it raised
    active = client.get("/api/v1/analytics/crowds/kai-tak-sports-park/alerts").json()["alerts"]
    bridge = [a for a in active if "shing-kai-footbridge" in a["id"]]
    assert bridge and bridge[0]["severity"] == "critical"
    # ...and they are NGSI-LD entities like any other, for subscriptions and the catalogue.
    ngsi = client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "Alert", "limit": 100},
        headers=city_link(),
    )
    assert ngsi.status_code == 200 and {e["id"] for e in ngsi.json()} == {a["id"] for a in active}

    done = cli("analytics", "crowds", "run", "--at", "2026-11-23T22:25", "--database", db.url)
    assert done.returncode == 0, done.stderr
    assert f"{len(active)} cleared" in done.stdout and "Green Guide" in done.stdout
    assert client.get("/api/v1/analytics/crowds/kai-tak-sports-park/alerts").json() == {
        "alerts": []
    }
    live = client.get(
        "/ngsi-ld/v1/entities", params={"type": "Alert", "q": "!validTo"}, headers=city_link()
    )
    assert live.status_code == 200 and live.json() == []  # what the docs tell clients to ask
    cleared = client.get("/api/v1/analytics/crowds/kai-tak-sports-park/alerts?all=true").json()
    assert len(cleared["alerts"]) == len(active)

    # The same readings from Parquet (--readings): the folder `smartcity history export` wrote.
    export_history(db, tmp_path / "history", types=["CrowdFlowObserved"], settle_s=0)
    done = cli(
        "analytics",
        "crowds",
        "run",
        "--at",
        "2026-11-23T21:25",
        "--no-alerts",
        "--json",
        "--readings",
        str(tmp_path / "history"),
        "--database",
        db.url,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["zones"] == r.json()["zones"]  # as the API said from the hub


def test_bad_requests_say_what_to_do(db: Database, client: TestClient) -> None:
    r = client.get("/api/v1/analytics/crowds/wembley")
    assert r.status_code == 404 and "kai-tak-sports-park" in r.json()["detail"]
    r = client.get("/api/v1/analytics/crowds/kai-tak-sports-park", params={"at": "yesterday"})
    assert r.status_code == 400 and "ISO 8601" in r.json()["detail"]
    r = client.get("/api/v1/analytics/water", params={"nights": 3})
    assert r.status_code == 400 and "between 9" in r.json()["detail"]
    assert client.get("/api/v1/analytics/crowds").json()["venues"][0]["id"] == "kai-tak-sports-park"
    done = cli("analytics", "crowds", "run", "--venue", "wembley", "--database", db.url)
    assert done.returncode == 2 and "no venue 'wembley'" in done.stderr
    done = cli("analytics", "crowds", "run", "--readings", "missing.parquet", "--database", db.url)
    assert done.returncode == 2 and "missing.parquet" in done.stderr
