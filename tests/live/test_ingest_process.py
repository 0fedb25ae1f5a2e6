"""The CLI and a real server process: register a device, send readings, SIGKILL, restart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "smartcity"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "SMARTCITY_MQTT_URL"} | {"COLUMNS": "200"},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(database_url: str, port: int) -> subprocess.Popen[str]:
    cmd = [*CLI, "serve", "--port", str(port), "--database", database_url, "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if k != "SMARTCITY_MQTT_URL"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready in 30 s")


def test_devices_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run("db", "upgrade", "--database", db).returncode == 0
    created = run(
        "devices",
        "create",
        "bin-1",
        "--entity",
        "urn:ngsi-ld:WasteContainer:1",
        "--type",
        "WasteContainer",
        "--attr",
        "fill=fillingLevel:P1:0.01",
        "--interval",
        "600",
        "--database",
        db,
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("scd_")
    assert "city/default/devices/bin-1/readings" in created.stdout
    bad = run(
        "devices",
        "create",
        "bin-2",
        "--entity",
        "nope",
        "--type",
        "X",
        "--attr",
        "a=b",
        "--database",
        db,
    )
    assert bad.returncode == 1 and "entity_id" in bad.stderr
    listed = run("devices", "list", "--database", db)
    assert "bin-1" in listed.stdout and secret not in listed.stdout
    shown = run("devices", "show", "bin-1", "--database", db)
    assert '"fillingLevel"' in shown.stdout and '"scale": 0.01' in shown.stdout
    assert run("devices", "revoke", "bin-1", "--database", db).returncode == 0
    again = run("devices", "revoke", "bin-1", "--database", db)
    assert again.returncode == 1 and "devices list" in again.stderr
    assert run("ingest", "mqtt", "--database", db).returncode == 2  # no broker given


def test_accepted_readings_survive_a_killed_server(database_url: str) -> None:
    """Every reading answered 2xx is in the hub (and its history) after a SIGKILL."""
    created = run(
        "devices",
        "create",
        "crash-1",
        "--entity",
        "urn:ngsi-ld:Crash:1",
        "--type",
        "Crash",
        "--attr",
        "n=n",
        "--database",
        database_url,
    )
    assert created.returncode == 0, created.stderr
    auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(database_url, port)
    accepted = []
    try:
        with httpx.Client(base_url=base, timeout=10, headers=auth) as http:
            for n in range(40):
                batch = [{"t": 1_790_000_000 + 2 * n, "n": n}, {"t": 1_790_000_001 + 2 * n, "n": n}]
                r = http.post("/api/v1/devices/crash-1/readings", json=batch)
                if r.status_code == 200:
                    accepted.append(n)
    finally:
        proc.kill()  # SIGKILL right after the last 2xx: no shutdown hook runs
        proc.wait(timeout=20)
    assert len(accepted) == 40
    proc = start(database_url, port)
    try:
        got = httpx.get(
            f"{base}/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Crash:1",
            params={"options": "temporalValues", "lastN": 1000},
            timeout=10,
        )
        assert got.status_code == 200, got.text
        values = got.json()["n"]["values"]
        assert len(values) == 80
        latest = httpx.get(f"{base}/ngsi-ld/v1/entities/urn:ngsi-ld:Crash:1?options=keyValues")
        assert latest.json()["n"] == 39
        # Resending everything (a device retrying after the crash) adds nothing.
        with httpx.Client(base_url=base, timeout=10, headers=auth) as http:
            r = http.post(
                "/api/v1/devices/crash-1/readings",
                json=[{"t": 1_790_000_000 + k, "n": k // 2} for k in range(80)],
            )
            assert {x["status"] for x in r.json()["results"]} == {"duplicate"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
