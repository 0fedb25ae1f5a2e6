"""Publish → browser latency: how long a reading takes to reach the dashboard's event stream.

``LatencyProbe`` listens to ``/api/v1/dashboard/events`` exactly as a browser's EventSource
does (an httpx stream read on its own thread). Call ``expect(entity_id, value)`` just before
publishing a reading (MQTT, HTTP readings endpoint, NGSI-LD PATCH, ...); when an ``update``
event carries that entity with that value, the delay is recorded. ``smartcity bench ingest``
can wrap its publishers with it; ``measure_http`` is a self-contained run over NGSI-LD.

The stream coalesces per entity (at most one update every ``flush_s``, 0.25 s by default), so
the figures include that wait: they are what a person watching the page sees.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from smartcity.hub.contexts import CITY_CONTEXT_PATH

EVENTS = "/api/v1/dashboard/events"


@dataclass
class LatencyReport:
    samples: list[float] = field(default_factory=list)  # seconds
    missed: int = 0  # expected values never seen (timeout)

    def percentile(self, p: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    def summary(self) -> dict[str, Any]:
        return {
            "n": len(self.samples),
            "missed": self.missed,
            "p50_ms": _ms(self.percentile(50)),
            "p95_ms": _ms(self.percentile(95)),
            "max_ms": _ms(max(self.samples) if self.samples else None),
            "mean_ms": _ms(statistics.fmean(self.samples) if self.samples else None),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class LatencyProbe:
    """An SSE client recording when expected (entity, value) pairs arrive."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # entity id -> [(value, when expected)] in publishing order
        self._pending: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.report = LatencyReport()
        self.events = 0
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise TimeoutError(f"no event stream at {self.base_url}{EVENTS}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def expect(self, entity_id: str, value: float) -> None:
        """Call right before publishing ``value`` for ``entity_id``. A reading counts as
        delivered when it, or a newer reading of the same entity, reaches the stream."""
        with self._lock:
            self._pending.setdefault(entity_id, []).append((float(value), time.perf_counter()))

    def wait(self, timeout: float | None = None) -> LatencyReport:
        """Wait until every expected value arrived (or the timeout); the rest are missed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.01)
        with self._lock:
            self.report.missed += sum(len(v) for v in self._pending.values())
            self._pending.clear()
        return self.report

    def close(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:  # unblocks the reader (else it waits for the next heartbeat)
            with contextlib.suppress(Exception):
                response.close()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as http,
                # A heartbeat a second: the reader notices close() soon.
                http.stream("GET", self.base_url + EVENTS + "?heartbeat=1") as response,
            ):
                response.raise_for_status()
                self._response = response
                event = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        self._on(event, line[5:].strip())
                    elif not line:
                        event = ""
        except Exception:
            if not self._stop.is_set():  # closing the stream from close() lands here too
                raise

    def _on(self, event: str, data: str) -> None:
        if event == "hello":
            self._ready.set()
        if event != "update":
            return
        now = time.perf_counter()
        self.events += 1
        payload = orjson.loads(data)
        with self._lock:
            if not self._pending:
                return
            for entity in payload.get("entities", ()):
                value = entity.get("value")
                if value is None:
                    continue
                waiting = self._pending.get(entity["id"])
                if not waiting:
                    continue
                # The stream coalesces: a newer value also delivers the ones it superseded.
                hit = next((i for i, (v, _) in enumerate(waiting) if v == float(value)), None)
                if hit is None:
                    continue
                self.report.samples.extend(now - started for _, started in waiting[: hit + 1])
                del waiting[: hit + 1]
                if not waiting:
                    del self._pending[entity["id"]]


def measure_http(
    base_url: str, *, samples: int = 50, interval: float = 0.3, key: str | None = None
) -> LatencyReport:
    """Write ``samples`` readings to a probe entity over NGSI-LD and time them to the stream.

    The probe is a ``WeatherObserved`` entity (it appears on the dashboard while the run lasts
    and is deleted afterwards)."""
    entity_id = f"urn:ngsi-ld:WeatherObserved:latency-probe-{int(time.time())}"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # The dashboard's names are those of the hub's city @context (kinds.py).
    context = base_url.rstrip("/") + CITY_CONTEXT_PATH
    headers["Link"] = f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"'
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
        created = http.post(
            "/ngsi-ld/v1/entities",
            json={"id": entity_id, "type": "WeatherObserved", "temperature": 20.0},
        )
        created.raise_for_status()
        try:
            with LatencyProbe(base_url) as probe:
                for n in range(samples):
                    value = 20.0 + (n + 1) / 1000
                    probe.expect(entity_id, value)
                    http.patch(
                        f"/ngsi-ld/v1/entities/{entity_id}/attrs",
                        json={"temperature": {"type": "Property", "value": value}},
                    ).raise_for_status()
                    time.sleep(interval)
                return probe.wait()
        finally:
            http.delete(f"/ngsi-ld/v1/entities/{entity_id}")
