"""Latency probes of ``smartcity bench ingest``: how long a published reading takes to reach
one stage of the platform.

Every reading carries its publish time as ``t`` (whole milliseconds); the publishers also
return the times they published per device (``BenchContext.published``), so a probe can give
every reading its latency, including readings that a newer one superseded before they were
shown:

- ``CommitProbe`` — publish → committed in the hub with its history (in-process runs);
- ``BrowserProbe`` — publish → the dashboard's event stream, read over HTTP exactly as a
  browser's EventSource reads it (``--server`` runs: the stream is served by
  ``smartcity serve``). The stream coalesces per entity, so a reading counts as shown when an
  update carrying it, or a newer reading of the same entity, arrives: what a person watching
  the page sees.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.hub.errors import BadRequestData
from smartcity.hub.timeutil import now_us, parse_datetime_us
from smartcity.live.dashboard.latency import LatencyProbe
from smartcity.live.ingest.readings import Reading


@dataclass
class BenchContext:
    """What a probe may need: where the hub and the broker are, and the in-process ingest."""

    database_url: str
    mqtt_url: str
    base_url: str | None  # the server's URL (--server), else None
    ingest: Any  # smartcity.live.ingest.runtime.Ingest when in-process, else None
    entity_ids: list[str]
    # entity id -> publish times (ms) of its readings; filled in once the publishers are done
    published: dict[str, list[int]] = field(default_factory=dict)


class Probe:
    """Latency of one stage, in milliseconds from the reading's publish time."""

    name = "probe"

    def start(self, ctx: BenchContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def stop(self) -> list[float]:  # pragma: no cover - interface
        raise NotImplementedError

    def figures(self) -> dict[str, float]:
        """Extra figures (e.g. readings never seen)."""
        return {}


class CommitProbe(Probe):
    name = "publish->committed"

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def start(self, ctx: BenchContext) -> None:
        if ctx.ingest is None:
            return

        def committed(readings: Sequence[Reading], _at: int) -> None:
            # Now, not ``_at``: that is when the transaction began (its records' timestamp).
            done = now_us()
            self.latencies.extend((done - r.t) / 1000 for r in readings)

        ctx.ingest.writer.committed.add(committed)

    def stop(self) -> list[float]:
        return self.latencies


class _StreamRecorder(LatencyProbe):
    """The dashboard's SSE stream, recording when each entity's shown reading arrived."""

    def __init__(self, base_url: str, wanted: set[str]) -> None:
        super().__init__(base_url, timeout=30.0)
        self.wanted = wanted
        # entity id -> [(observedAt in ms, arrival in ms)], in arrival order
        self.shown: dict[str, list[tuple[int, float]]] = {}

    def _on(self, event: str, data: str) -> None:
        if event == "hello":
            self._ready.set()
        if event != "update":
            return
        arrival = time.time() * 1000  # wall clock: the publishers stamp t with it too
        self.events += 1
        for entity in orjson.loads(data).get("entities", ()):
            entity_id, observed = entity.get("id"), entity.get("observedAt")
            if entity_id not in self.wanted or not observed:
                continue
            try:
                t = parse_datetime_us(observed, field="observedAt") // 1000
            except BadRequestData:
                continue
            self.shown.setdefault(entity_id, []).append((t, arrival))


def shown_latencies(
    published: dict[str, list[int]], shown: dict[str, list[tuple[int, float]]]
) -> tuple[list[float], int]:
    """Each published reading's delay until its entity showed it or a newer reading; and how
    many readings were never shown."""
    latencies: list[float] = []
    missed = 0
    for entity_id, times in published.items():
        events = shown.get(entity_id, [])
        # Newest reading shown so far, per event (the stream never goes back, but be sure).
        newest: list[int] = []
        for t, _ in events:
            newest.append(max(t, newest[-1]) if newest else t)
        for t in times:
            i = bisect.bisect_left(newest, t)
            if i == len(newest):
                missed += 1
            else:
                latencies.append(events[i][1] - t)
    return latencies, missed


class BrowserProbe(Probe):
    name = "publish->browser"

    def __init__(self) -> None:
        self._ctx: BenchContext | None = None
        self._recorder: _StreamRecorder | None = None
        self._missed = 0

    def start(self, ctx: BenchContext) -> None:
        if ctx.base_url is None:
            return  # in-process runs serve no stream
        self._ctx = ctx
        self._recorder = _StreamRecorder(ctx.base_url, set(ctx.entity_ids))
        self._recorder.__enter__()

    def stop(self) -> list[float]:
        if self._recorder is None or self._ctx is None:
            return []
        # The last readings are committed; their update leaves within one flush interval.
        wait_until = time.monotonic() + 3.0
        latest = {e: max(ts) for e, ts in self._ctx.published.items() if ts}
        while time.monotonic() < wait_until:
            shown = self._recorder.shown
            if all(shown.get(e) and shown[e][-1][0] >= t for e, t in latest.items()):
                break
            time.sleep(0.05)
        self._recorder.close()
        latencies, self._missed = shown_latencies(self._ctx.published, self._recorder.shown)
        return latencies

    def figures(self) -> dict[str, float]:
        return {f"{self.name} never_shown": float(self._missed)} if self._recorder else {}


# Probes started by every run; a new stage's probe registers its factory here.
PROBES: list[Callable[[], Probe]] = [CommitProbe, BrowserProbe]

__all__ = ["PROBES", "BenchContext", "BrowserProbe", "CommitProbe", "Probe", "shown_latencies"]
