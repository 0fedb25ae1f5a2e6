"""`smartcity connect` end to end: in process into the test database (both backends), and
with --hub into a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcity.cli.main import app
from smartcity.storage.engine import Database

FIX = Path(__file__).parent / "fixtures"
TAI_PO = "urn:ngsi-ld:AirQualityObserved:HK-EPD-Tai-Po"
NO2 = "https://smartdatamodels.org/dataModel.Environment/no2"
LANE = "urn:ngsi-ld:TrafficFlowObserved:HK-AID01101-Fast-Lane"


def connect(*args: str) -> str:
    result = CliRunner().invoke(app, ["connect", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_in_process_air_quality_keeps_every_hour_in_history(
    db: Database, client: TestClient
) -> None:
    sources = [
        "--from",
        str(FIX / "24pc_Eng_taipo.xml"),
        "--from",
        str(FIX / "24aqhi_Eng_taipo.xml"),
    ]
    out = connect("air-quality", *sources, "--database", db.url)
    assert "written" in out
    entity = client.get(f"/ngsi-ld/v1/entities/{TAI_PO}?options=keyValues").json()
    assert entity["aqhi"] == 3 and entity["aqhiPublished"] == 3
    # aqhi has no Smart Data Models term: it is found by its plain name (default context).
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{TAI_PO}?attrs=aqhi,{NO2}").json()
    assert [i["observedAt"] for i in history["aqhi"]] == [
        "2024-03-28T16:00:00Z",
        "2024-03-28T17:00:00Z",
    ]
    assert len(history[NO2]) == 3
    # Running the same files again adds nothing to the history.
    again = connect("air-quality", *sources, "--database", db.url)
    assert "reading already in the hub" in again
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{TAI_PO}?attrs={NO2}").json()
    assert len(history[NO2]) == 3


def test_in_process_carparks_two_inputs_merge_into_one_entity(
    db: Database, client: TestClient
) -> None:
    connect(
        "carparks",
        "--from", str(FIX / "td_basic_info_quirks.json"),
        "--from", str(FIX / "td_vacancy_quirks.json"),
        "--database", db.url,
        "--tenant", "transport",
    )  # fmt: skip
    headers = {"NGSILD-Tenant": "transport"}
    one = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:HK-tdc1p1?lang=en&options=keyValues",
        headers=headers,
    ).json()
    # Smart Data Models terms come back as IRIs unless the client sends their @context.
    assert one["https://smartdatamodels.org/name"] == "Test Estate Carpark"
    assert one["vacancyByVehicleType"]["motorCycle"]["vacancy"] == 7
    assert (
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:HK-tdc1p1").status_code == 404
    )


def test_errors_tell_the_user_what_to_do(db: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(
        app, ["connect", "kmb-eta", "--from", str(FIX / "kmb_error_422.json"), "--database", db.url]
    )
    assert bad.exit_code == 1 and "422" in bad.output and "Nothing was written" in bad.output
    missing = runner.invoke(
        app, ["connect", "carparks", "--from", "nope.json", "--database", db.url]
    )
    assert missing.exit_code == 1 and "no such file" in missing.output
    unknown = runner.invoke(app, ["connect", "trams", "--from", "x", "--database", db.url])
    assert unknown.exit_code == 2 and "carparks" in unknown.output
    fresh = f"sqlite:///{tmp_path / 'empty.db'}"
    stale = runner.invoke(app, ["connect", "carparks", "--from", "x", "--database", fresh])
    assert stale.exit_code == 1 and "smartcity db upgrade" in " ".join(stale.output.split())


# -- against a real server process ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "SMARTCITY_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    cli = [sys.executable, "-m", "smartcity"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--no-auth", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _connect_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartcity", "connect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_hub_path_overlapping_detector_files(server: str) -> None:
    a, b = str(FIX / "rawSpeedVol_a.xml"), str(FIX / "rawSpeedVol_b.xml")
    first = _connect_process("traffic-detectors", "--from", a, "--hub", server)
    assert first.returncode == 0, first.stderr + first.stdout
    second = _connect_process("traffic-detectors", "--from", b, "--hub", server)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "reading already in the hub" in second.stdout
    intensity = "https://smartdatamodels.org/dataModel.Transportation/intensity"
    history = httpx.get(
        f"{server}/ngsi-ld/v1/temporal/entities/{LANE}", params={"attrs": intensity}
    ).json()
    values = history[intensity]
    assert [(i["value"], i["observedAt"]) for i in values] == [
        (3, "2024-04-06T15:59:30Z"),
        (4, "2024-04-06T16:00:00Z"),
    ]
    latest = httpx.get(f"{server}/ngsi-ld/v1/entities/{LANE}").json()
    speed = latest["https://smartdatamodels.org/dataModel.Transportation/averageVehicleSpeed"]
    assert speed["value"] == 58 and speed["unitCode"] == "KMH"


def test_hub_path_static_entities_are_not_rewritten(server: str) -> None:
    stops = str(FIX / "kmb_stop_list.json")
    first = _connect_process("kmb-eta", "--from", stops, "--hub", server)
    assert first.returncode == 0, first.stderr + first.stdout
    again = _connect_process("kmb-eta", "--from", stops, "--hub", server)
    assert "unchanged since the last run" in again.stdout
    down = _connect_process("kmb-eta", "--from", stops, "--hub", "http://127.0.0.1:9")
    assert down.returncode == 1 and "smartcity serve" in down.stderr
