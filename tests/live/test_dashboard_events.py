"""The live event stream: an update event after a committed write (over a real HTTP server),
coalescing, bounded per-client queues (a slow client is told to resync, memory stays
bounded), Last-Event-ID resume, and the publish → stream latency helper."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from tests.asyncrun import run as run_async
from tests.city_context import city_link

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.live.dashboard import events as events_module
from smartcity.live.dashboard.events import CLIENT_QUEUE, LiveEvents
from smartcity.live.dashboard.latency import LatencyProbe, measure_http


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn server (a thread) on a free loopback port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[str, Any]]:
    app = create_app(settings)
    with serving(app) as base:
        yield base, app


_LINES: dict[int, Iterator[str]] = {}


def read_events(response: httpx.Response, until: str, timeout: float) -> list[tuple[str, Any]]:
    """(event, data) pairs up to and including the first ``until`` event."""
    lines = _LINES.setdefault(id(response), response.iter_lines())
    out: list[tuple[str, Any]] = []
    event = ""
    deadline = time.monotonic() + timeout
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            out.append((event, orjson.loads(line[5:])))
            if event == until:
                return out
        assert time.monotonic() < deadline, f"no {until} event within {timeout} s: {out}"
    raise AssertionError("stream ended")


def test_a_committed_write_reaches_the_stream(server: tuple[str, Any]) -> None:
    base, _app = server
    with httpx.Client(base_url=base, timeout=10, headers=city_link()) as http:
        http.post("/ngsi-ld/v1/entities", json={
            "id": "urn:ngsi-ld:AirQualityObserved:tp", "type": "AirQualityObserved",
            "aqhi": 3, "location": {"type": "Point", "coordinates": [114.16, 22.45]}})  # fmt: skip
        with http.stream("GET", "/api/v1/dashboard/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert read_events(stream, "hello", 5)[-1][1]["resumed"] is False
            # Its speed is measured by LatencyProbe and `smartcity bench ingest --server`
            # (docs/performance.md), not bounded here: a loaded CI machine failed a bound.
            r = http.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:tp/attrs",
                           json={"aqhi": {"type": "Property", "value": 8}})  # fmt: skip
            assert r.status_code == 204
            _, update = read_events(stream, "update", 5)[-1]
    [entity] = update["entities"]
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:tp" and entity["value"] == 8
    assert entity["band"] == "Very high" and entity["point"] == [114.16, 22.45]
    air = next(t for t in update["tiles"] if t["kind"] == "air")
    assert air["value"] == 8
    raised = update["alerts"]["raised"]
    assert [(a["rule"], a["id"]) for a in raised] == [("aqhi", "urn:ngsi-ld:AirQualityObserved:tp")]
    assert update["alerts"]["updated"] == []


def test_an_active_alert_shows_its_newest_reading(server: tuple[str, Any]) -> None:
    """Still over its threshold with a new value: the alert is sent again as "updated" (the
    list shows the value now, not the one it was raised with) and not counted as new."""
    base, _app = server
    station = "urn:ngsi-ld:AirQualityObserved:kt"
    with httpx.Client(base_url=base, timeout=10, headers=city_link()) as http:
        http.post("/ngsi-ld/v1/entities", json={
            "id": station, "type": "AirQualityObserved",
            "aqhi": 8, "location": {"type": "Point", "coordinates": [114.2, 22.32]}})  # fmt: skip
        assert http.get("/api/v1/dashboard/tiles").status_code == 200  # the view is loaded
        with http.stream("GET", "/api/v1/dashboard/events") as stream:
            read_events(stream, "hello", 5)
            r = http.patch(f"/ngsi-ld/v1/entities/{station}/attrs",
                           json={"aqhi": {"type": "Property", "value": 10}})  # fmt: skip
            assert r.status_code == 204
            alerts: dict[str, Any] = {}
            while not alerts.get("updated"):
                _, update = read_events(stream, "update", 5)[-1]
                alerts = update.get("alerts", {})
    assert alerts["raised"] == [] and alerts["active"] == 1
    [alert] = alerts["updated"]
    assert (alert["id"], alert["value"]) == (station, 10)


def test_writes_through_another_server_process_reach_the_stream(
    server: tuple[str, Any], settings: Settings
) -> None:
    """Two app instances on one database, like `serve --workers 2` (or `smartcity ingest
    mqtt` beside `serve`): the stream of one carries the writes made through the other,
    which it learns of only from the hub (no commit listener of its own sees them)."""
    base, app = server
    other = create_app(settings)
    aqhi = "urn:ngsi-ld:AirQualityObserved:other"
    with (
        serving(other) as other_base,
        httpx.Client(base_url=base, timeout=10, headers=city_link()) as http,
        httpx.Client(base_url=other_base, timeout=10, headers=city_link()) as writer,
    ):
        assert http.get("/api/v1/dashboard/tiles").status_code == 200  # the view is loaded
        with http.stream("GET", "/api/v1/dashboard/events") as stream:
            read_events(stream, "hello", 5)
            created = writer.post("/ngsi-ld/v1/entities", json={
                "id": aqhi, "type": "AirQualityObserved", "aqhi": 4,
                "location": {"type": "Point", "coordinates": [114.17, 22.3]}})  # fmt: skip
            assert created.status_code == 201
            values: list[Any] = []
            while 4 not in values:
                _, update = read_events(stream, "update", 5)[-1]
                values += [e["value"] for e in update["entities"] if e["id"] == aqhi]
            writer.patch(f"/ngsi-ld/v1/entities/{aqhi}/attrs",
                         json={"aqhi": {"type": "Property", "value": 9}})  # fmt: skip
            while 9 not in values:
                _, update = read_events(stream, "update", 5)[-1]
                values += [e["value"] for e in update["entities"] if e["id"] == aqhi]
    # Each write arrived (``read_events`` waits at most 5 s for an update; without polling
    # the other process's writes never arrive at all) and was applied once. How fast is the
    # benchmarks' business (smartcity.live.dashboard.latency): bounded here at 2 s, a
    # loaded 2-core CI machine took 2.9 s once.
    assert values == [4, 9]
    assert app.state.dashboard.service.state.find(aqhi).value == 9


def test_a_burst_of_writes_is_coalesced_per_entity(server: tuple[str, Any]) -> None:
    base, app = server
    with httpx.Client(base_url=base, timeout=10, headers=city_link()) as http:
        bin_ = {
            "id": "urn:ngsi-ld:WasteContainer:b1",
            "type": "WasteContainer",
            "fillingLevel": 0.1,
        }
        http.post("/ngsi-ld/v1/entities", json=bin_)
        with http.stream("GET", "/api/v1/dashboard/events") as stream:
            read_events(stream, "hello", 5)
            for n in range(1, 41):
                http.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:b1/attrs",
                           json={"fillingLevel": n / 100})  # fmt: skip
            seen: list[float] = []
            while not seen or seen[-1] != 40:
                _, update = read_events(stream, "update", 5)[-1]
                seen += [e["value"] for e in update["entities"]]
    events: LiveEvents = app.state.dashboard.events
    assert seen[-1] == 40
    assert len(seen) < 40  # coalesced: not one event per write
    assert events.sent <= 40


def test_latency_helper_measures_commit_to_event(server: tuple[str, Any]) -> None:
    base, _app = server
    report = measure_http(base, samples=8, interval=0.05)
    summary = report.summary()
    assert summary["n"] == 8 and summary["missed"] == 0
    # What was measured, not how fast: every write reached the stream (missed == 0, within
    # the probe's time-out) and its latency was timed. A bound in milliseconds here failed
    # on a slow, loaded CI machine (p95 1,290 ms); speed belongs to `smartcity bench`.
    p50, p95, most = summary["p50_ms"], summary["p95_ms"], summary["max_ms"]
    assert p50 is not None and p95 is not None and most is not None
    assert 0 < p50 <= p95 <= most


def test_probe_counts_missing_values_as_missed(server: tuple[str, Any]) -> None:
    base, _app = server
    with LatencyProbe(base, timeout=3) as probe:
        probe.expect("urn:ngsi-ld:WeatherObserved:never", 1.0)
        assert probe.wait(0.5).missed == 1


# -- the queue and resume logic, without a network ------------------------------------------------
class _Service:
    class config:
        flush_s = 0.01

    def alerts(self) -> list[Any]:
        return []


async def _next(gen: Any) -> bytes:
    return bytes(await asyncio.wait_for(gen.__anext__(), 2))


def test_a_slow_client_drops_old_events_and_is_told_to_resync() -> None:
    async def scenario() -> None:
        live = LiveEvents(_Service(), heartbeat_s=5)  # type: ignore[arg-type]
        gen = live.stream(None)
        assert b"retry" in await _next(gen)
        assert b"event: hello" in await _next(gen)
        [client] = live._clients
        for n in range(CLIENT_QUEUE * 4):  # the client reads nothing meanwhile
            live._publish("update", {"n": n})
            assert len(client.queue) <= CLIENT_QUEUE
        assert live.dropped == CLIENT_QUEUE * 3
        assert b"event: resync" in await _next(gen)
        assert len(client.queue) == 0
        live._publish("update", {"n": "after"})
        assert b'"n":"after"' in await _next(gen)
        await gen.aclose()
        assert live.clients == 0

    run_async(scenario())


def test_last_event_id_resumes_from_the_ring_or_asks_for_resync(monkeypatch: Any) -> None:
    monkeypatch.setattr(events_module, "RING", 8)

    async def scenario() -> None:
        live = LiveEvents(_Service(), heartbeat_s=5)  # type: ignore[arg-type]
        for n in range(5):
            live._publish("update", {"n": n})
        gen = live.stream("3")
        await _next(gen)
        hello = await _next(gen)
        assert b'"resumed":true' in hello
        replayed = [await _next(gen), await _next(gen)]
        assert [b'"n":3' in m for m in replayed] == [True, False]  # ids 4 and 5: n=3, n=4
        assert replayed[0].startswith(b"id: 4\n")
        await gen.aclose()
        for n in range(20):
            live._publish("update", {"n": n})
        old = live.stream("1")
        await _next(old)
        assert b"event: resync" in await _next(old)
        await old.aclose()

    run_async(scenario())


def test_heartbeat_when_nothing_happens() -> None:
    async def scenario() -> None:
        live = LiveEvents(_Service(), heartbeat_s=0.05)  # type: ignore[arg-type]
        gen = live.stream(None)
        await _next(gen)
        await _next(gen)
        assert b"event: heartbeat" in await _next(gen)
        await gen.aclose()

    run_async(scenario())
