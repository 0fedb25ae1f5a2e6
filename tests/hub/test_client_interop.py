"""Interop with a real NGSI-LD client library: ngsildclient (PyPI, by Orange) drives a real
`smartcity serve` process over HTTP with its own API, unchanged: create, retrieve, query, batch
upsert, and a subscription whose notifications reach a receiver on 127.0.0.1.

ngsildclient 0.5.2 (its latest release) pins httpx<0.24 and rich<13, which cannot be installed
beside the hub's own dependencies, so it runs in a virtualenv of its own: the session script
(interop/ngsildclient_session.py) runs there and prints what each call returned, and the test
checks that against the hub and the receiver. The virtualenv is made once (pip, from PyPI) and
kept in the temp directory; SMARTCITY_NGSILDCLIENT_PYTHON may name an interpreter that already
has ngsildclient.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.hub.test_notifications import Receiver, free_port, wait_for
from tests.test_cli_and_server import wait_ready

from smartcity.storage.engine import Database

VERSION = "0.5.2"
SESSION = Path(__file__).parent / "interop" / "ngsildclient_session.py"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def _client_python() -> Path:
    """An interpreter with ngsildclient installed (see the module docstring)."""
    given = os.environ.get("SMARTCITY_NGSILDCLIENT_PYTHON")
    if given:
        return Path(given)
    home = Path(tempfile.gettempdir()) / f"smartcity-ngsildclient-{VERSION}"
    python = home / "bin" / "python"
    ready = home / ".installed"
    # pytest-xdist workers may get here together: one builds, the others wait for it.
    with open(f"{home}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return python
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(home)], check=True, timeout=120
        )
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"ngsildclient=={VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if pip.returncode != 0:
            pytest.skip(f"cannot install ngsildclient {VERSION} from PyPI: {pip.stderr[-500:]}")
        ready.touch()
    return python


@pytest.fixture(scope="module")
def client_python() -> Path:
    return _client_python()


@pytest.fixture
def hub_url(db: Database) -> Iterator[str]:
    """A real `smartcity serve` process without authentication on a free port, on the test
    database (``db`` empties it afterwards: no subscription to a closed receiver is left)."""
    database_url = db.url
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "smartcity", "serve", "--port", str(port)),
            *("--database", database_url, "--no-auth", "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run_session(python: Path, hub: str, receiver: str, run: str) -> dict[str, Any]:
    port = hub.rsplit(":", 1)[1]
    done = subprocess.run(
        [str(python), str(SESSION), port, receiver, run],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_ngsildclient_drives_the_hub(client_python: Path, hub_url: str) -> None:
    receiver = Receiver()
    run = uuid.uuid4().hex[:8]
    central = f"urn:ngsi-ld:AirQualityObserved:HK:Central:{run}"
    try:
        out = run_session(client_python, hub_url, receiver.url, run)
        # Subscription: created, read back with the spec's representation.
        sub_id = out["subscription"]
        assert sub_id.startswith("urn:ngsi-ld:Subscription:")
        assert out["subscription_read"]["watchedAttributes"] == ["NO2"]
        assert out["subscription_read"]["isActive"] is True
        # Create and retrieve: the library's entity comes back as it was built.
        assert out["created"] is True
        assert out["retrieved"] == {
            "id": central,
            "type": "AirQualityObserved",
            "NO2": {"type": "Property", "value": 22, "unitCode": "GP"},
            "PM25": {"type": "Property", "value": 12.5},
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [114.1582, 22.2819]},
            },
            "@context": CORE,
        }
        # Batch upsert (options=replace): two created, the existing one replaced. The library
        # counts the created ids of the 201 body (clause 5.6.8) as its successes.
        assert out["upserted"] == {"ok": 2, "total": 2}
        assert out["after_upsert"] == {
            "id": central,
            "type": "AirQualityObserved",
            "NO2": {"type": "Property", "value": 40},
            "@context": CORE,
        }
        # Query with q, paged by the library through count=true and offset.
        stations = [f"urn:ngsi-ld:AirQualityObserved:HK:Station{n}:{run}" for n in (0, 1)]
        assert out["queried"] == sorted([central, *stations])
        # Notifications: the creation, then the upsert (one notification, three entities).
        receiver.wait(2)
        created, upserted = (r.body for r in receiver.received[:2])
        assert created["subscriptionId"] == sub_id
        assert created["data"] == [
            {
                "id": central,
                "type": "AirQualityObserved",
                "NO2": 22,
                "PM25": 12.5,
                "location": {"type": "Point", "coordinates": [114.1582, 22.2819]},
            }
        ]
        assert sorted(e["id"] for e in upserted["data"]) == sorted([central, *stations])

        # The hub counted both deliveries.
        def sent() -> Any:
            got = httpx.get(f"{hub_url}/ngsi-ld/v1/subscriptions/{sub_id}", timeout=10).json()
            return got["notification"].get("timesSent")

        wait_for(lambda: sent() == 2, 15, "timesSent == 2")
    finally:
        receiver.close()
