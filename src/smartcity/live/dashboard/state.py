"""The dashboard's in-memory view of the latest values: one small record per entity of every
kind, read from the hub once and then kept current by the hub's commit listeners.

Tiles, alerts and map layers are computed from it without touching the database, so a page
load or an update tick costs microseconds per entity however fast readings arrive. Writes
made by *other* processes (server workers, other nodes, ``smartcity ingest mqtt``, connectors)
are not seen by the listeners: ``poll`` asks the hub every ``poll_s`` for the entities
modified and deleted since the last time (two indexed queries), and the whole view is re-read
every ``resync_s`` (see README.md, "Several processes").
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from smartcity.hub.changes import Change
from smartcity.hub.errors import BadRequestData
from smartcity.hub.provenance import is_simulated_provider
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import now_us, parse_datetime_us
from smartcity.live.dashboard.kinds import BY_TYPE_IRI, KINDS, LOCATION, Kind, iri

log = logging.getLogger(__name__)
PAGE = 1000
MAX_PER_KIND = 100_000  # beyond this a kind is cut (and the cut logged): memory stays bounded
POLL_LIMIT = 2000  # entities per poll for other processes' writes
POLL_LAG_US = 5_000_000  # how long a write transaction may take between its stamp and commit

NAME = iri("name")
STATUS = iri("status")
PROVIDER = iri("dataProvider")


@dataclass(slots=True)
class Item:
    """What the dashboard keeps of one entity."""

    id: str
    kind: str
    value: float | None  # the kind's attribute, in display units (fractions → %)
    colour_value: float | None  # the colour attribute when the kind has one
    observed_at: str | None  # the reading's observedAt (or the entity's modifiedAt)
    name: Any  # str, a language map, or None
    geometry: dict[str, Any] | None  # GeoJSON
    point: tuple[float, float] | None  # a representative lon/lat
    status: str | None = None
    simulated: bool = False  # written by the simulator (its dataProvider says so)


def _default_instance(instances: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not instances:
        return None
    for inst in instances:
        if "datasetId" not in inst:
            return inst
    return instances[0]


def _number(inst: dict[str, Any] | None) -> float | None:
    if inst is None:
        return None
    value = inst.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def as_display(kind_percent: bool, value: float | None) -> float | None:
    """Fractions (Smart Data Models 0..1) shown as %; values above 1 are taken as % already."""
    if value is None or not kind_percent:
        return value
    return value * 100 if value <= 1 else value


def representative_point(geometry: dict[str, Any] | None) -> tuple[float, float] | None:
    """A point for a geometry: itself, or the mean of its positions (cheap, good enough for
    placing a marker and for 'near Kai Tak')."""
    if not geometry:
        return None
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2:
        return float(coords[0]), float(coords[1])
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, list) and c and isinstance(c[0], int | float):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, list):
            for sub in c:
                walk(sub)

    walk(coords)
    return (sum(xs) / len(xs), sum(ys) / len(ys)) if xs else None


def kind_of(doc: dict[str, Any]) -> Kind | None:
    for t in doc.get("type", ()):
        kind = BY_TYPE_IRI.get(t)
        if kind is not None:
            return kind
    return None


def item_from(doc: dict[str, Any], kind: Kind) -> Item:
    attrs: dict[str, list[dict[str, Any]]] = doc.get("attrs", {})
    value_inst = colour_inst = name_inst = status_inst = provider_inst = None
    geometry = None
    value_iri, colour_iri = kind.attr_iris[0], kind.colour_iri
    for attr, instances in attrs.items():
        if attr == value_iri:
            value_inst = _default_instance(instances)
        elif attr == colour_iri:
            colour_inst = _default_instance(instances)
        elif attr == NAME:
            name_inst = _default_instance(instances)
        elif attr == STATUS:
            status_inst = _default_instance(instances)
        elif attr == PROVIDER:
            provider_inst = _default_instance(instances)
        elif attr == LOCATION:
            loc = _default_instance(instances)
            geometry = loc.get("value") if loc else None
    label: Any = None
    if name_inst is not None:
        label = name_inst.get("languageMap") or name_inst.get("value")
    status = status_inst.get("value") if status_inst else None
    provider = provider_inst.get("value") if provider_inst else None
    observed = (value_inst or {}).get("observedAt") or doc.get("modifiedAt")
    return Item(
        id=doc["id"],
        kind=kind.key,
        value=as_display(kind.percent, _number(value_inst)),
        colour_value=as_display(True, _number(colour_inst)) if kind.colour_attr else None,
        observed_at=observed if isinstance(observed, str) else None,
        name=label,
        geometry=geometry if isinstance(geometry, dict) else None,
        point=representative_point(geometry if isinstance(geometry, dict) else None),
        status=status if isinstance(status, str) else None,
        simulated=is_simulated_provider(provider),
    )


class LiveState:
    """Latest values of the dashboard's kinds in one tenant (thread-safe)."""

    def __init__(
        self, entities: EntityService, tenant: str, resync_s: float = 300.0, poll_s: float = 0.5
    ) -> None:
        self.entities = entities
        self.tenant = tenant
        self.resync_s = resync_s
        self.poll_s = poll_s
        # Other processes' writes: entities modified at or after _since are asked for; _seen
        # holds each entity's last applied modification (ms) so nothing is applied twice.
        self._since: int | None = None
        self._after_eid = -1
        self._seen: dict[str, int] = {}
        self._polling = threading.Lock()
        self.polled_at = 0.0
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Item]] = {k.key: {} for k in KINDS}
        self._loaded_at: float | None = None
        self._loading = False
        self._buffer: list[Change] = []  # changes seen while (re)loading, replayed after
        self.version = 0  # bumps on every applied change

    # -- loading -----------------------------------------------------------------------------
    def ensure(self) -> None:
        """Load on first use; re-read in the background when older than ``resync_s``; take in
        other processes' writes when the last poll is older than ``poll_s``."""
        if self._loaded_at is None:
            self.reload()
        elif time.monotonic() - self._loaded_at > self.resync_s and not self._loading:
            threading.Thread(target=self.reload, name="dashboard-resync", daemon=True).start()
        elif self.poll_s and time.monotonic() - self.polled_at >= self.poll_s:
            try:
                self.poll()
            except Exception:  # a page still renders from the view it has
                log.exception("dashboard: polling the hub for changes failed")

    def reload(self) -> None:
        with self._lock:
            if self._loading:
                return
            self._loading = True
            self._buffer = []
        since = now_us() - POLL_LAG_US  # what the read below may miss, the polls take in
        try:
            fresh: dict[str, dict[str, Item]] = {k.key: {} for k in KINDS}
            for kind in KINDS:
                query = EntityQuery(types=[frozenset({iri}) for iri in kind.type_iris])
                offset = 0
                while offset < MAX_PER_KIND:
                    docs, _ = self.entities.find(self.tenant, query, limit=PAGE, offset=offset)
                    for doc in docs:
                        fresh[kind.key][doc["id"]] = item_from(doc, kind)
                    if len(docs) < PAGE:
                        break
                    offset += PAGE
                else:
                    log.warning("dashboard: more than %d %s entities, the rest left out",
                                MAX_PER_KIND, kind.type_name)  # fmt: skip
        except Exception:
            with self._lock:
                self._loading = False
            raise
        with self._lock:
            self._items = fresh
            buffered, self._buffer = self._buffer, []
            self._loading = False
            self._loaded_at = time.monotonic()
            self._apply_locked(buffered)
            self.version += 1
            if self._since is None or since > self._since:
                self._since, self._after_eid = since, -1
                self._seen.clear()

    def poll(self) -> list[tuple[str, str]]:
        """Apply the writes other processes committed since the last poll; returns the
        (kind, entity id) pairs that changed. A transaction stamps its entities with the time
        it began, and may commit up to ``POLL_LAG_US`` later: each poll asks again from that
        far back, and ``_seen`` skips what was already applied."""
        if self._since is None or not self._polling.acquire(blocking=False):
            return []
        try:
            started = now_us()
            rows = self.entities.changed_since(
                self.tenant, self._since, self._after_eid, limit=POLL_LIMIT
            )
            # Only the documents this view has not applied yet (its own writes it has).
            wanted = {
                eid: (entity_id, modified // 1000)
                for modified, eid, entity_id in rows
                if self._seen.get(entity_id, -1) < modified // 1000
            }
            # Deletions leave no entity row: the history keeps when each was deleted.
            changes = [
                Change(self.tenant, entity_id, None, None)
                for entity_id in self.entities.deleted_since(self.tenant, self._since)
                if self._present(entity_id)
            ]
            if wanted:
                for eid, doc in self.entities.docs_by_eid(list(wanted)).items():
                    entity_id, ms = wanted[eid]
                    self._seen[entity_id] = ms
                    changes.append(Change(self.tenant, entity_id, None, doc))
            if len(rows) == POLL_LIMIT:  # more than a page changed: on from the last one
                self._since, self._after_eid = rows[-1][0], rows[-1][1]
            elif started - POLL_LAG_US > self._since:  # caught up: slide the window
                self._since, self._after_eid = started - POLL_LAG_US, -1
            if len(self._seen) > 4 * POLL_LIMIT:  # forget what the window has passed
                floor = self._since // 1000
                with self._lock:  # the writers' threads add to it under this lock
                    self._seen = {k: v for k, v in self._seen.items() if v >= floor}
        finally:
            self.polled_at = time.monotonic()  # also after a failure: retried next interval
            self._polling.release()
        return self.apply(changes) if changes else []

    def _present(self, entity_id: str) -> bool:
        with self._lock:
            return any(entity_id in items for items in self._items.values())

    # -- changes -----------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change]) -> list[tuple[str, str]]:
        """Take committed changes in; returns the (kind, entity id) pairs that changed."""
        with self._lock:
            if self._loading:
                self._buffer.extend(c for c in changes if c.tenant == self.tenant)
            if self._loaded_at is None:
                return []
            touched = self._apply_locked(changes)
            if touched:
                self.version += 1
            return touched

    def _apply_locked(self, changes: Iterable[Change]) -> list[tuple[str, str]]:
        touched: list[tuple[str, str]] = []
        for change in changes:
            if change.tenant != self.tenant:
                continue
            doc = change.after
            modified = doc.get("modifiedAt") if doc is not None else None
            if isinstance(modified, str):  # a poll need not apply this write again
                with contextlib.suppress(BadRequestData):
                    ms = parse_datetime_us(modified, field="modifiedAt") // 1000
                    if ms > self._seen.get(change.entity_id, -1):
                        self._seen[change.entity_id] = ms
            if doc is None:  # deleted: drop it from whichever kind had it
                for key, items in self._items.items():
                    if items.pop(change.entity_id, None) is not None:
                        touched.append((key, change.entity_id))
                continue
            kind = kind_of(doc)
            if kind is None:
                continue
            items = self._items[kind.key]
            if change.entity_id not in items and len(items) >= MAX_PER_KIND:
                continue
            items[change.entity_id] = item_from(doc, kind)
            touched.append((kind.key, change.entity_id))
        return touched

    # -- reads -------------------------------------------------------------------------------
    def items(self, kind: str) -> list[Item]:
        self.ensure()
        with self._lock:
            return list(self._items[kind].values())

    def get(self, kind: str, entity_id: str) -> Item | None:
        with self._lock:
            return self._items[kind].get(entity_id)

    def find(self, entity_id: str) -> Item | None:
        self.ensure()
        with self._lock:
            for items in self._items.values():
                item = items.get(entity_id)
                if item is not None:
                    return item
        return None
