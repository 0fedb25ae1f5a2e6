"""``smartcity demo`` as a newcomer runs it: a real process, a fresh home, one command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from smartcity.hub.contexts import CITY_CONTEXT_PATH
from smartcity.live.simulator.provision import terms

TYPES = (
    "OffStreetParking",
    "TrafficFlowObserved",
    "WeatherObserved",
    "CrowdFlowObserved",
    "WasteContainer",
    "RodentActivityObserved",
)
LIVE = {  # an attribute only readings set, per type
    "OffStreetParking": "availableSpotNumber",
    "TrafficFlowObserved": "averageVehicleSpeed",
    "WeatherObserved": "temperature",
    "CrowdFlowObserved": "peopleCount",
    "WasteContainer": "fillingLevel",
    "RodentActivityObserved": "detections",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("via", ["auto", "http"])
def test_demo_starts_everything_and_stops_on_ctrl_c(tmp_path: Path, via: str) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
    # If a broker runs here the demo uses MQTT: keep this run's topics and session apart.
    tag = uuid.uuid4().hex[:8]
    env.update(
        SMARTCITY_MQTT_TOPIC_PATTERN=f"demotest{tag}/{{tenant}}/devices/{{device_id}}/readings",
        SMARTCITY_MQTT_CLIENT_ID=f"smartcity-demotest-{tag}",
        COLUMNS="80",  # a narrow terminal: the printed URLs must still be whole
    )
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smartcity",
            "demo",
            "--port",
            str(port),
            "--home",
            str(home),
            "--no-browser",
            "--devices",
            "100",
            "--rate",
            "60",
            "--via",
            via,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the demo did not answer /healthz in 90 s"
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health.json()["status"] == "ok" and health.json()["database"] == "sqlite"
        assert (home / "smartcity.db").exists()
        site = httpx.get(f"{base}/en/", timeout=10)
        assert site.status_code == 200 and "Blueprint" in site.text
        # Live entities of several kinds appear within a few seconds.
        ctx = terms()
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while seen != set(TYPES) and time.monotonic() < deadline:
            for type_name in set(TYPES) - seen:
                r = httpx.get(
                    f"{base}/ngsi-ld/v1/entities",
                    params={"type": ctx[type_name], "limit": "100", "options": "keyValues"},
                    timeout=10,
                )
                assert r.status_code == 200
                # Smart Data Models names come back as IRIs, default-context ones as short names.
                names = {ctx[LIVE[type_name]], LIVE[type_name]}
                if any(names & set(e) for e in r.json()):
                    seen.add(type_name)
            time.sleep(0.5)
        assert seen == set(TYPES)
        # Writes need a key: anonymous writes are refused; the demo's own key works.
        anonymous = httpx.post(f"{base}/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "T"})
        assert anonymous.status_code == 401
        token = (home / "demo-api-key").read_text().strip()
        assert oct((home / "demo-api-key").stat().st_mode)[-3:] == "600"
        keyed = httpx.post(
            f"{base}/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:Thing:demo-test", "type": "Thing"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert keyed.status_code == 201
        # The simulated city's past is in the hub from the start: a day of hourly figures,
        # the changes vs 1 h / 24 h ago, and the figures are labelled as simulated.
        series = httpx.get(f"{base}/api/v1/dashboard/series?kind=carparks", timeout=10).json()
        assert len(series["points"]) >= 24
        tiles = httpx.get(f"{base}/api/v1/dashboard/tiles", timeout=10).json()["tiles"]
        park = next(t for t in tiles if t["kind"] == "carparks")
        assert park["change1h"] is not None and park["change24h"] is not None
        assert park["simulated"] == park["count"] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    assert "/en/dashboard" in out and "stopped;" in out
    if via == "http":
        assert "via HTTP" in out
    assert "Traceback" not in out
    lines = out.splitlines()
    for url in (f"{base}/sc/)", f"{base}{CITY_CONTEXT_PATH}", "Bearer <key>')"):
        assert any(url in line for line in lines), f"{url} is broken over lines:\n{out}"
