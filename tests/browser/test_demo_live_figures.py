"""``smartcity demo`` as a newcomer sees it: every measure linked to live data shows its figure.

The demo runs as a real process (small fleet, a free port, no browser of its own, readings over
HTTP so no broker is needed); Chromium opens each live-linked measure page and waits for a
number, at most one minute after the demo answers. The README's example query, run as written
against the demo, finds its car parks.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartcity.portal.blueprint.dataset import load_blueprint

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED = "http://127.0.0.1:8000"  # the address the README's examples use
FIGURE_WITHIN_S = 60.0
# A figure as the page writes it: "1,044 spaces", "73.9 km/h", "3", "4 stops".
NUMBER = re.compile(r"^(\d[\d,]*(?:\.\d+)?)\b")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, float]]:
    """The demo's base URL and the moment (monotonic) it first answered."""
    home = Path(tempfile.mkdtemp(prefix="smartcity-demo-browser-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
    env["COLUMNS"] = "200"
    log = (home / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcity", "demo", "--port", str(port), "--home", str(home),
         "--no-browser", "--devices", "100", "--rate", "50", "--via", "http"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (home / "demo.log").read_text()
            assert time.monotonic() < deadline, "the demo did not answer in 120 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, time.monotonic()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _figures(page: Any) -> list[str]:
    texts: list[str] = page.locator(".figure-value").all_inner_texts()
    return [t.strip() for t in texts]


def test_every_live_linked_measure_page_shows_a_number_within_a_minute(
    demo: tuple[str, float], page: Any
) -> None:
    base, ready = demo
    linked = {m.id: len(m.live) for area in load_blueprint().areas for m in area.measures if m.live}
    assert len(linked) == 6
    last: dict[str, list[str]] = {}
    pending = dict(linked)
    while pending:
        for measure_id, count in list(pending.items()):
            page.goto(f"{base}/en/measures/{measure_id}")
            last[measure_id] = figures = _figures(page)
            assert len(figures) == count, (measure_id, figures)
            numbers = [NUMBER.match(f) for f in figures]
            if all(n and float(n.group(1).replace(",", "")) > 0 for n in numbers):
                del pending[measure_id]
        waited = time.monotonic() - ready
        assert not pending or waited < FIGURE_WITHIN_S, f"after {waited:.0f} s: " + "; ".join(
            f"{m} shows {last[m]}" for m in pending
        )
        if pending:
            time.sleep(2)
    assert set(last) == set(linked)


def test_the_readme_query_finds_the_demo_car_parks(demo: tuple[str, float]) -> None:
    base, _ready = demo
    text = README.read_text(encoding="utf-8")
    city = re.search(r"^CITY='(.+)'$", text, re.M)
    query = re.search(r"""^curl -H "Link: \$CITY" '([^']+)'$""", text, re.M)
    assert city and query, "README's example query moved: update this test"
    link = city.group(1).replace(DOCUMENTED, base)
    answer = httpx.get(query.group(1).replace(DOCUMENTED, base), headers={"Link": link})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found and all(e["type"] == "OffStreetParking" for e in found), found
    assert all("availableSpotNumber" in e for e in found)
    types = httpx.get(f"{base}/ngsi-ld/v1/types", headers={"Link": link}).json()["typeList"]
    assert "OffStreetParking" in types and all(":" not in t for t in types), types
