"""The live event stream: committed writes → coalesced update events → Server-Sent Events.

The hub calls ``on_commit`` after every committed write, from whatever thread wrote (request
threads, the ingestion writer). It updates the in-memory state and marks the entities dirty;
nothing else happens on the writer's thread. A flusher task on the event loop wakes at once
when something is dirty, but runs at most every ``flush_s`` seconds: each run sends one
``update`` event with the latest value of every entity that changed since the last (at most
``MAX_ENTITIES`` per event, oldest first; the rest go in the next one), the tiles of the kinds
touched and the alert changes. However fast readings arrive, a browser gets a few events a
second.

Every client has a bounded queue. A client that does not keep up loses its oldest events,
never grows memory, and is sent a ``resync`` event telling it to reload the state. Event ids
increase; a reconnecting client's ``Last-Event-ID`` is replayed from a short ring of recent
events, or answered with ``resync`` when it is older than the ring. The app starts the ids at
a random number (``first_seq``): behind a load balancer a browser may reconnect to another
node, or to this one restarted, whose numbers mean other events; an id from elsewhere falls
outside this node's ring and gets ``resync``, never a replay of the wrong events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from smartcity.hub.changes import Change
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.live.dashboard.kinds import BY_KEY, RULES
from smartcity.live.dashboard.service import Alert, DashboardService, Tile
from smartcity.live.dashboard.state import Item

log = logging.getLogger(__name__)
MAX_ENTITIES = 1000  # entity updates per event
RING = 256  # recent events kept for Last-Event-ID resume
CLIENT_QUEUE = 64  # events a client may lag behind before it must resync
MAX_CLIENTS = 1000


def item_json(item: Item) -> dict[str, Any]:
    kind = BY_KEY[item.kind]
    band = kind.band(item.colour_value if kind.colour_attr else item.value)
    return {
        "id": item.id,
        "kind": item.kind,
        "value": item.value,
        "colourValue": item.colour_value,
        "observedAt": item.observed_at,
        "status": item.status,
        "name": item.name,
        "point": list(item.point) if item.point else None,
        "band": band.label if band else None,
        "colour": band.colour if band else "#666666",
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "rule": alert.rule,
        "kind": alert.kind,
        "id": alert.entity_id,
        "name": alert.name,
        "value": alert.value,
        "threshold": alert.threshold,
        "observedAt": alert.observed_at,
    }


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


@dataclass(eq=False)
class Client:
    queue: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=CLIENT_QUEUE))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0


class LiveEvents:
    def __init__(
        self, service: DashboardService, *, heartbeat_s: float = 15.0, first_seq: int = 0
    ) -> None:
        self.service = service
        self.flush_s = service.config.flush_s
        self.heartbeat_s = heartbeat_s
        self._dirty: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._dirty_lock = threading.Lock()
        self._clients: set[Client] = set()
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=RING)
        self._seq = first_seq
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._alerts: dict[tuple[str, str], Alert] | None = None
        self.sent = 0  # events produced (for tests and metrics)
        self.dropped = 0  # events dropped from slow clients' queues

    # -- from the writers' threads ------------------------------------------------------------
    def on_commit(self, changes: Sequence[Change]) -> None:
        self._mark(self.service.state.apply(changes))

    def _mark(self, touched: list[tuple[str, str]]) -> None:
        if not touched:
            return
        with self._dirty_lock:
            for key in touched:
                self._dirty[key] = None
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and self._clients:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wake.set)

    # -- the flusher (event loop) ------------------------------------------------------------
    def _ensure_flusher(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="dashboard-flusher")
            if self._dirty:
                self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        last = 0.0
        state = self.service.state
        while self._clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=state.poll_s or 5.0)
            # Other processes' writes (server workers, `smartcity ingest mqtt`) from the hub.
            if state.poll_s and time.monotonic() - state.polled_at >= state.poll_s:
                try:
                    self._mark(await asyncio.to_thread(state.poll))
                except Exception:
                    log.exception("dashboard: polling the hub for changes failed")
            if not self._wake.is_set():
                continue
            # Coalesce: at most one event per flush_s, sent as soon as that allows.
            pause = last + self.flush_s - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self._wake.clear()
            last = time.monotonic()
            try:
                payload = await asyncio.to_thread(self._build)
            except Exception:
                log.exception("dashboard update failed")
                continue
            if payload is not None:
                self._publish("update", payload)
            with self._dirty_lock:
                if self._dirty:
                    self._wake.set()
        self._task = None

    def _build(self) -> dict[str, Any] | None:
        with self._dirty_lock:
            keys: list[tuple[str, str]] = []
            while self._dirty and len(keys) < MAX_ENTITIES:
                keys.append(self._dirty.popitem(last=False)[0])
        if not keys:
            return None
        state = self.service.state
        entities: list[dict[str, Any]] = []
        removed: list[str] = []
        for kind, entity_id in keys:
            item = state.get(kind, entity_id)
            if item is None:
                removed.append(entity_id)
            else:
                entities.append(item_json(item))
        kinds = sorted({k for k, _ in keys})
        tiles = [self._tile(BY_KEY[k]) for k in kinds]
        payload: dict[str, Any] = {
            "at": iso_from_us(now_us()),
            "entities": entities,
            "removed": removed,
            "tiles": [t.as_json() for t in tiles],
        }
        if any(r.kind in kinds for r in RULES):
            payload["alerts"] = self._alert_changes()
        return payload

    def _tile(self, kind: Any) -> Tile:
        # Changes vs 1 h / 24 h come from the (cached) hourly series.
        return self.service.tile(kind)

    def _alert_changes(self) -> dict[str, Any]:
        current = {a.key(): a for a in self.service.alerts()}
        previous = self._alerts if self._alerts is not None else {}
        raised = [alert_json(a) for k, a in current.items() if k not in previous]
        # Still active with a new reading: the list shows the value now, not the first one.
        updated = [
            alert_json(a)
            for k, a in current.items()
            if k in previous
            and (a.value, a.observed_at) != (previous[k].value, previous[k].observed_at)
        ]
        cleared = [{"rule": k[0], "id": k[1]} for k in previous if k not in current]
        self._alerts = current
        by_rule: dict[str, int] = {}
        for rule, _ in current:
            by_rule[rule] = by_rule.get(rule, 0) + 1
        return {
            "active": len(current),
            "byRule": by_rule,
            "raised": raised[:200],
            "updated": updated[:200],
            "cleared": cleared[:200],
        }

    def _publish(self, event: str, payload: dict[str, Any]) -> None:
        self._seq += 1
        payload["seq"] = self._seq
        message = (self._seq, sse(event, payload, self._seq))
        self._ring.append(message)
        self.sent += 1
        for client in self._clients:
            if len(client.queue) == client.queue.maxlen:
                client.dropped += 1  # the deque drops the oldest: never more memory
                self.dropped += 1
            client.queue.append(message)
            client.wake.set()

    # -- one SSE client ----------------------------------------------------------------------
    @property
    def clients(self) -> int:
        return len(self._clients)

    async def stream(
        self, last_event_id: str | None, heartbeat_s: float | None = None
    ) -> AsyncIterator[bytes]:
        heartbeat = heartbeat_s or self.heartbeat_s
        if len(self._clients) >= MAX_CLIENTS:
            raise OverflowError("too many live clients")
        client = Client()
        self._clients.add(client)
        self._ensure_flusher()
        if self._alerts is None:  # the baseline, so the first update reports real changes
            self._alerts = {a.key(): a for a in await asyncio.to_thread(self.service.alerts)}
        try:
            yield b"retry: 2000\n\n"
            yield self._resume(client, last_event_id)
            while True:
                try:
                    await asyncio.wait_for(client.wake.wait(), timeout=heartbeat)
                except TimeoutError:
                    yield sse("heartbeat", {"at": iso_from_us(now_us()), "seq": self._seq})
                    continue
                client.wake.clear()
                if client.dropped:
                    client.dropped = 0
                    client.queue.clear()
                    yield sse("resync", {"reason": "slow client: events dropped"}, self._seq)
                    continue
                while client.queue:
                    yield client.queue.popleft()[1]
        finally:
            self._clients.discard(client)

    def _resume(self, client: Client, last_event_id: str | None) -> bytes:
        if last_event_id:
            try:
                last = int(last_event_id)
            except ValueError:
                last = -1
            oldest = self._ring[0][0] if self._ring else self._seq + 1
            if 0 <= last <= self._seq and last >= oldest - 1:
                for seq, message in self._ring:
                    if seq > last:
                        client.queue.append((seq, message))
                client.wake.set()
                return sse("hello", {"seq": self._seq, "resumed": True})
            return sse("resync", {"reason": "Last-Event-ID is too old"}, self._seq)
        return sse("hello", {"seq": self._seq, "resumed": False}, self._seq)
