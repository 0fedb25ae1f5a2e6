"""Tiles, alerts, map layers, trend series and entity details, computed from the hub.

Latest values come from the in-memory ``LiveState``; series come from the hub's hourly
rollup of the history (one row per entity and hour, written in the same transaction as every
reading), so a week of city-wide figures is one grouped SQL statement per kind.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from smartcity.hub.entity import VALUE_KEY
from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.live.dashboard.kinds import (
    BY_KEY,
    KAI_TAK_RADIUS_M,
    KINDS,
    RULES,
    DashboardConfig,
    Kind,
    local_name,
)
from smartcity.live.dashboard.state import Item, LiveState, as_display, item_from, kind_of
from smartcity.storage import schema

HOUR = 3_600_000_000
WINDOWS = {"24h": 24, "7d": 168}
SERIES_TTL_S = 30.0
OUTLOOK_TTL_S = 30.0
log = logging.getLogger(__name__)
NGSI = "/ngsi-ld/v1"
MAX_ALERTS = 200


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, spherical Earth): plenty for 'within 2 km'."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def data_url(kind: Kind) -> str:
    """The NGSI-LD query behind a figure (full IRIs: no Link header needed)."""
    params = {
        "type": ",".join(kind.type_iris),
        "attrs": ",".join(kind.attr_iris),
        "options": "keyValues",
        "limit": "1000",
    }
    if kind.near:
        params.update(
            georel=f"near;maxDistance=={int(KAI_TAK_RADIUS_M)}",
            geometry="Point",
            coordinates=f"[{kind.near[0]},{kind.near[1]}]",
        )
    return f"{NGSI}/entities?{urlencode(params, safe=',;=[]')}"


def history_url(kind: Kind, hours: int) -> str:
    start = (now_us() // HOUR - hours + 1) * HOUR
    params = {
        "type": ",".join(kind.type_iris),
        "attrs": ",".join(kind.attr_iris),
        "aggrMethods": "avg,max,min",
        "aggrPeriodDuration": "PT1H",
        "timerel": "after",
        "timeAt": iso_from_us(start),
    }
    return f"{NGSI}/temporal/entities?{urlencode(params, safe=',:')}"


def entity_url(entity_id: str) -> str:
    from urllib.parse import quote

    return f"{NGSI}/entities/{quote(entity_id, safe=':')}"


@dataclass
class Tile:
    kind: str
    value: float | None
    count: int  # entities with a value
    observed_at: str | None  # newest reading
    change_1h: float | None = None
    change_24h: float | None = None
    band: str | None = None  # msgid (AQHI health risk)
    colour: str | None = None
    data_url: str = ""
    history_url: str = ""
    simulated: int = 0  # of the counted sources, those the simulator wrote

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "count": self.count,
            "observedAt": self.observed_at,
            "change1h": self.change_1h,
            "change24h": self.change_24h,
            "band": self.band,
            "colour": self.colour,
            "dataUrl": self.data_url,
            "historyUrl": self.history_url,
            "simulated": self.simulated,
        }


@dataclass(frozen=True)
class Alert:
    rule: str
    kind: str
    entity_id: str
    name: Any
    value: float
    threshold: float
    observed_at: str | None

    def key(self) -> tuple[str, str]:
        return (self.rule, self.entity_id)


@dataclass
class Series:
    kind: str
    window: str
    points: list[tuple[int, float]]  # (hour start µs, value)
    history_url: str


@dataclass
class EntityDetail:
    id: str
    types: list[str]
    kind: Kind | None
    attributes: list[tuple[str, Any, str | None, str | None]]  # name, value, unit, observedAt
    history: list[tuple[str, float]]  # (observedAt ISO, value) of the kind's attribute
    item: Item | None
    urls: dict[str, str] = field(default_factory=dict)


def near(kind: Kind, items: Sequence[Item]) -> list[Item]:
    if kind.near is None:
        return list(items)
    centre = kind.near
    return [i for i in items if i.point and distance_m(i.point, centre) <= KAI_TAK_RADIUS_M]


def aggregate(kind: Kind, values: Sequence[float]) -> float | None:
    if kind.aggregate == "count_over":
        level = kind.count_over or 0.0
        return float(sum(1 for v in values if v >= level))
    if not values:
        return None
    if kind.aggregate == "sum":
        return float(sum(values))
    if kind.aggregate == "max":
        return max(values)
    return sum(values) / len(values)


class DashboardService:
    def __init__(
        self, entities: EntityService, config: DashboardConfig, temporal: Any = None
    ) -> None:
        from smartcity.hub.temporal.service import TemporalService

        self.entities = entities
        self.temporal: TemporalService = temporal or TemporalService(entities.db, entities)
        self.config = config
        self.state = LiveState(entities, config.tenant, config.resync_s, config.poll_s)
        self._series_cache: dict[tuple[str, str], tuple[float, Series]] = {}
        self._cache_lock = threading.Lock()
        # Car park id -> minutes until likely full on arrival (0: full now; None: not within
        # the forecasts' reach). The car park analytics are another feature: the app wires
        # their answer in here (app.py), and without it the column stays empty.
        self.car_park_outlook: Callable[[], Mapping[str, int | None]] | None = None
        self._outlook: tuple[float, dict[str, int | None]] | None = None

    # -- car parks: likely full on arrival ---------------------------------------------------
    def likely_full_within(self) -> dict[str, int | None] | None:
        """The car parks' outlook (cached OUTLOOK_TTL_S: forecasts refresh every few minutes);
        None when no analytics are wired in or they failed (the page still shows the rest)."""
        if self.car_park_outlook is None:
            return None
        with self._cache_lock:
            if self._outlook and time.monotonic() - self._outlook[0] < OUTLOOK_TTL_S:
                return self._outlook[1]
        try:
            outlook = dict(self.car_park_outlook())
        except Exception:
            log.exception("dashboard: the car parks' forecasts could not be read")
            return None
        with self._cache_lock:
            self._outlook = (time.monotonic(), outlook)
        return outlook

    # -- tiles -------------------------------------------------------------------------------
    def tile(self, kind: Kind, *, with_changes: bool = True) -> Tile:
        items = near(kind, self.state.items(kind.key))
        values = [i.value for i in items if i.value is not None]
        times = [i.observed_at for i in items if i.value is not None and i.observed_at]
        value = aggregate(kind, values)
        tile = Tile(
            kind=kind.key,
            value=value,
            count=len(values),
            observed_at=max(times) if times else None,
            data_url=data_url(kind),
            history_url=history_url(kind, 24),
            simulated=sum(1 for i in items if i.simulated and i.value is not None),
        )
        if kind.key == "air" and value is not None:
            band = kind.band(value)
            tile.band, tile.colour = (band.label, band.colour) if band else (None, None)
        if with_changes and value is not None:
            points = dict(self.series(kind.key, "24h").points)
            this_hour = now_us() // HOUR * HOUR
            for hours, attr in ((1, "change_1h"), (24, "change_24h")):
                then = points.get(this_hour - hours * HOUR)
                if then is not None:
                    setattr(tile, attr, value - then)
        return tile

    def tiles(self, *, with_changes: bool = True) -> list[Tile]:
        return [self.tile(kind, with_changes=with_changes) for kind in KINDS]

    # -- alerts ------------------------------------------------------------------------------
    def alerts(self) -> list[Alert]:
        out: list[Alert] = []
        for rule in RULES:
            threshold = float(self.config.thresholds[rule.key])
            kind = BY_KEY[rule.kind]
            for item in self.state.items(kind.key):
                value = item.colour_value if rule.on_colour else item.value
                full = rule.key == "carpark" and item.status == "full"
                if rule.crossed(value, threshold) or (full and value is not None):
                    assert value is not None
                    out.append(
                        Alert(
                            rule.key,
                            kind.key,
                            item.id,
                            item.name,
                            value,
                            threshold,
                            item.observed_at,
                        )
                    )
        # Worst first within each rule: furthest past its threshold.
        order = {r.key: n for n, r in enumerate(RULES)}
        out.sort(key=lambda a: (order[a.rule], -abs(a.value - a.threshold), a.entity_id))
        return out

    # -- layers ------------------------------------------------------------------------------
    def layer(self, kind: Kind) -> list[Item]:
        return self.state.items(kind.key)

    # -- series ------------------------------------------------------------------------------
    def series(self, kind_key: str, window: str) -> Series:
        kind = BY_KEY[kind_key]
        hours = WINDOWS[window]
        key = (kind_key, window)
        with self._cache_lock:
            hit = self._series_cache.get(key)
            if hit and time.monotonic() - hit[0] < SERIES_TTL_S:
                return hit[1]
        ids = None
        if kind.near is not None:
            ids = [i.id for i in near(kind, self.state.items(kind.key))]
        # The current hour too (partial), and one more before the window for the 24 h change.
        end = now_us() // HOUR * HOUR + HOUR
        start = end - (hours + 1) * HOUR
        points = self._hourly(kind, start, end, ids)
        series = Series(kind_key, window, points, history_url(kind, hours))
        with self._cache_lock:
            self._series_cache[key] = (time.monotonic(), series)
        return series

    def _hourly(
        self, kind: Kind, start: int, end: int, ids: Sequence[str] | None
    ) -> list[tuple[int, float]]:
        if ids is not None and not ids:
            return []
        r, h = schema.attr_history_hourly.c, schema.history_entities.c
        if kind.aggregate == "sum":
            value: Any = sa.func.sum(r.total / r.n_num)
        elif kind.aggregate == "max":
            value = sa.func.max(r.vmax)
        elif kind.aggregate == "count_over":
            top = sa.case((r.vmax <= 1, r.vmax * 100), else_=r.vmax) if kind.percent else r.vmax
            value = sa.func.sum(sa.case((top >= (kind.count_over or 0), 1), else_=0))
        else:
            value = sa.func.sum(r.total) / sa.func.sum(r.n_num)
        types_text = sa.cast(h.types, sa.Text)
        stmt = (
            sa.select(r.hour, value)
            .select_from(schema.attr_history_hourly.join(schema.history_entities))
            .where(
                h.tenant == self.config.tenant,
                r.attr.in_(kind.attr_iris),
                r.dataset_id == "",
                r.n_num > 0,
                r.hour >= start,
                r.hour < end,
                sa.or_(*(types_text.like(f'%"{iri}"%') for iri in kind.type_iris)),
            )
            .group_by(r.hour)
            .order_by(r.hour)
        )
        if ids is not None:
            stmt = stmt.where(h.entity_id.in_(list(ids)))
        with self.entities.db.read() as conn:
            rows = conn.execute(stmt).all()
        points = [(int(hour), float(v)) for hour, v in rows if v is not None]
        if kind.percent and kind.aggregate in ("mean", "max"):
            points = [(t, as_display(True, v) or 0.0) for t, v in points]
        return points

    # -- one entity --------------------------------------------------------------------------
    def entity(self, entity_id: str, *, history_hours: int = 24) -> EntityDetail:
        doc = self.entities.get(self.config.tenant, entity_id)  # ResourceNotFound → 404
        kind = kind_of(doc)
        attributes: list[tuple[str, Any, str | None, str | None]] = []
        for iri, instances in sorted(doc.get("attrs", {}).items(), key=lambda x: local_name(x[0])):
            for inst in instances[:3]:
                member = VALUE_KEY.get(inst.get("type", "Property"), "value")
                name = local_name(iri)
                if "datasetId" in inst:
                    name += f" ({local_name(inst['datasetId'])})"
                attributes.append((name, inst.get(member), inst.get("unitCode"),
                                   inst.get("observedAt")))  # fmt: skip
        history: list[tuple[str, float]] = []
        item = None
        if kind is not None:
            from smartcity.hub.temporal.service import TemporalQuery

            item = item_from(doc, kind)  # fresh from the hub, whatever the view holds
            tq = TemporalQuery(timerel="after", time_at=now_us() - history_hours * HOUR)
            present = [i for i in kind.attr_iris if i in doc.get("attrs", {})]
            if present:
                try:
                    result = self.temporal.retrieve(
                        self.config.tenant, entity_id, tq, attrs=present
                    )
                except ResourceNotFound:
                    result = None
                for entity in result.entities if result else []:
                    for instances in entity.instances.values():
                        for inst in instances:
                            raw = inst.value.get("value")
                            if isinstance(raw, int | float) and not isinstance(raw, bool):
                                v = as_display(kind.percent, float(raw))
                                assert v is not None
                                history.append((iso_from_us(inst.t), v))
                history.sort()
        urls = {"entity": entity_url(entity_id)}
        if kind is not None:
            from urllib.parse import quote

            urls["history"] = f"{NGSI}/temporal/entities/{quote(entity_id, safe=':')}?" + urlencode(
                {"attrs": ",".join(kind.attr_iris), "lastN": "100"}, safe=","
            )
        return EntityDetail(entity_id, list(doc.get("type", [])), kind, attributes, history,
                            item, urls)  # fmt: skip
