"""Water leakage through the command line (a real process) and the JSON API."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from smartcity.config import Settings
from smartcity.hub.runtime import open_hub
from smartcity.live.simulator.backfill import backfill
from smartcity.live.simulator.models import DAY, HKT, LEAK_CYCLE_DAYS, CityModel
from smartcity.live.simulator.places import build_fleet
from smartcity.storage.engine import Database


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartcity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


@pytest.mark.slow
def test_water_run_and_api(db: Database, client: TestClient) -> None:
    fleet = [d for d in build_fleet(400, 3) if d.kind == "water"]  # clean, burst, clean, rising
    model = CityModel(3)
    first = (20_600 // LEAK_CYCLE_DAYS + 1) * LEAK_CYCLE_DAYS
    with open_hub(Settings(database_url=db.url), db) as hub:
        for day in range(first, first + 22):
            end = int((day * DAY - 4 * 3600) * 1e6)  # 04:00 Hong Kong time
            backfill(fleet, model, hub.temporal, end_us=end, hours=2, step_s=900)
    at = datetime.fromtimestamp((first + 21) * DAY, HKT).isoformat()
    r = client.get("/api/v1/analytics/water", params={"at": at})
    assert r.status_code == 200, r.text
    findings = {d["dma"].rsplit("-", 1)[-1]: d["finding"] for d in r.json()["dmas"]}
    assert findings == {"000": "none", "001": "burst", "002": "none", "003": "rising"}
    done = cli("analytics", "water", "run", "--at", at, "--database", db.url)
    assert done.returncode == 0, done.stderr
    assert "2 raised" in done.stdout and "burst" in done.stdout
    active = client.get("/api/v1/analytics/water/alerts").json()["alerts"]
    assert sorted(a["subCategory"] for a in active) == ["waterBurst", "waterLeakage"]
