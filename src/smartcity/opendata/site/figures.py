"""The map and the chart of a resource's page, read on the server and bounded: at most
``MAX_FEATURES`` places and ``MAX_POINTS`` points, so a page costs the same whatever the size
of the data. Each figure is also a table (the page without JavaScript shows the table; the
script draws the figure from the same data, embedded in the page as a JSON block, so it asks
nothing more of the server and nothing of another host).

Every read is an anonymous visitor's (``ANONYMOUS``): the page is only rendered for a dataset
such a visitor may see, and the DataStore checks it again."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from smartcity.opendata.catalogue.access import ANONYMOUS
from smartcity.opendata.citydata import exports
from smartcity.opendata.citydata.publish import TENANT_EXTRA, TYPE_EXTRA
from smartcity.opendata.datastore import search as s
from smartcity.opendata.datastore.store import Registered
from smartcity.opendata.errors import OpenDataError
from smartcity.opendata.runtime import OpenData
from smartcity.opendata.site import visuals
from smartcity.storage.engine import QueryTimeout
from smartcity.web.nav import N_

MAX_FEATURES = 500  # places drawn and listed
MAX_POINTS = 500  # rows of a time series charted (the latest)
MAX_GEOJSON_BYTES = 5_000_000  # an uploaded GeoJSON file read for its map
MAX_VERTICES = 50_000  # line and polygon vertices drawn in all (beyond: their centre only)
MAX_READINGS = 20_000  # a live dataset's history rows read for its chart
# Why a figure is missing, translated on the page (a DataStore's own message passes as it is).
SLOW = N_("the table took too long to read")
MISSING = N_("the file is missing")
TOO_LARGE = N_("the file is too large to show on a map: download it")
NOT_GEOJSON = N_("the file is not GeoJSON")
NAME_KEYS = ("name", "名稱", "名称", "title", "label", "NAME", "Name")


@dataclass
class Place:
    name: str
    lat: float
    lon: float
    geometry: dict[str, Any] | None = None  # a line or polygon to draw (points come from lat/lon)


@dataclass
class MapPreview:
    places: list[Place] = field(default_factory=list)
    capped: bool = False  # there were more than MAX_FEATURES
    skipped: int = 0  # features or rows read without a usable position
    error: str | None = None
    limit: int = MAX_FEATURES

    def data(self) -> str:
        """The places for the script, as a JSON text safe inside ``<script>``."""
        body = [
            {"name": p.name, "lat": p.lat, "lon": p.lon, "geometry": p.geometry}
            for p in self.places
        ]
        return _script_json({"places": body})


@dataclass
class Series:
    label: str
    values: list[float | None]  # one per row of the chart (None: no value at that time)

    def extremes(self) -> tuple[int, int, int] | None:
        """Row indexes of the lowest, the highest and the last value."""
        known = [(v, i) for i, v in enumerate(self.values) if v is not None]
        if not known:
            return None
        return min(known)[1], max(known)[1], known[-1][1]


@dataclass
class ChartPreview:
    times: list[dt.datetime] = field(default_factory=list)  # ascending
    series: list[Series] = field(default_factory=list)
    capped: bool = False  # only the latest MAX_POINTS rows (or the first MAX_READINGS readings)
    hourly: bool = False  # a live dataset's hourly means
    day: dt.date | None = None  # the live dataset's day charted
    error: str | None = None
    limit: int = MAX_POINTS

    @property
    def as_written(self) -> bool:
        """Times without an offset are shown as written (the DataStore keeps no zone)."""
        return bool(self.times) and self.times[0].tzinfo is None

    def label(self, i: int) -> str:
        """A row's time as written (for naive times; aware ones are formatted by the page)."""
        t = self.times[i]
        if t.time() == dt.time():
            return t.date().isoformat()
        return t.isoformat(sep=" ", timespec="minutes" if t.second == 0 else "seconds")

    def data(self) -> str:
        xs = [(t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() for t in self.times]
        body = {
            "timezone": "UTC" if self.as_written else "Asia/Hong_Kong",
            "times": xs,
            "series": [{"label": x.label, "values": x.values} for x in self.series],
        }
        return _script_json(body)


def _script_json(value: Any) -> str:
    # A data block, never run (the CSP allows no inline script). "<" only occurs inside JSON
    # strings, where \u003c means the same: no "</script>" or "<!--" can reach the parser.
    return orjson.dumps(value).decode().replace("<", "\\u003c")


def fields_of(found: Registered) -> list[tuple[str, str]]:
    return [(f.id, f.type) for f in found.fields]


def live_type(package: Mapping[str, Any]) -> exports.EntityType | None:
    extras = {e.get("key"): e.get("value") for e in package.get("extras") or []}
    if not extras.get(TYPE_EXTRA):
        return None
    return exports.EntityType(str(extras[TYPE_EXTRA]), str(extras.get(TENANT_EXTRA) or ""))


# -- maps -------------------------------------------------------------------------------------


def datastore_map(od: OpenData, found: Registered, plan: visuals.Plan) -> MapPreview:
    assert plan.lat and plan.lon
    label = plan.labels[0] if plan.labels else None
    names = [plan.lat, plan.lon, *([label] if label else [])]
    params = s.SearchParams(
        fields=names, limit=MAX_FEATURES, include_total=True, records_format="lists"
    )
    try:
        with od.datastore.db.snapshot(budget=od.settings.datastore_search_timeout_s) as conn:
            page = s.search(conn, found, params)
    except (OpenDataError, QueryTimeout) as exc:
        return MapPreview(error=getattr(exc, "message", SLOW))
    shown = MapPreview(capped=(page.total or 0) > MAX_FEATURES, limit=MAX_FEATURES)
    for n, record in enumerate(page.records, 1):
        lat = visuals.coordinate(record[0], "lat")
        lon = visuals.coordinate(record[1], "lon")
        if lat is None or lon is None:
            shown.skipped += 1
            continue
        name = record[2] if label and record[2] not in (None, "") else f"#{n}"
        shown.places.append(Place(str(name), lat, lon))
    return shown


def features_map(features: Iterable[Any], lang: str) -> MapPreview:
    """The first MAX_FEATURES features with a position."""
    shown = MapPreview(limit=MAX_FEATURES)
    vertices = 0
    for n, feature in enumerate(features, 1):
        if len(shown.places) + shown.skipped >= MAX_FEATURES:
            shown.capped = True
            break
        if not isinstance(feature, dict):
            shown.skipped += 1
            continue
        geometry = feature.get("geometry")
        centre = _centre(geometry)
        if centre is None:
            shown.skipped += 1
            continue
        drawn = None
        if isinstance(geometry, dict) and geometry.get("type") != "Point":
            count = sum(1 for _ in _positions(geometry.get("coordinates")))
            if vertices + count <= MAX_VERTICES:
                drawn, vertices = geometry, vertices + count
        name = _feature_name(feature, lang) or f"#{n}"
        shown.places.append(Place(name, centre[0], centre[1], drawn))
    return shown


def _file_features(path: Path) -> Iterator[Any]:
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise _TooLarge
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise _NotGeoJSON from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        yield from doc.get("features") or []
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        yield doc
    elif isinstance(doc, dict) and "coordinates" in doc:
        yield {"type": "Feature", "geometry": doc, "properties": {}}
    else:
        raise _NotGeoJSON


class _TooLarge(Exception):
    pass


class _NotGeoJSON(Exception):
    pass


def upload_map(od: OpenData, package: Mapping[str, Any], resource_id: str, lang: str) -> MapPreview:
    try:
        path, _mime = od.catalogue.upload_path(ANONYMOUS, str(package["id"]), resource_id)
        return features_map(_file_features(path), lang)
    except OpenDataError as exc:
        return MapPreview(error=exc.message)
    except FileNotFoundError:
        return MapPreview(error=MISSING)
    except _TooLarge:
        return MapPreview(error=TOO_LARGE)
    except _NotGeoJSON:
        return MapPreview(error=NOT_GEOJSON)


def live_map(od: OpenData, package: Mapping[str, Any], lang: str) -> MapPreview | None:
    etype = live_type(package)
    if etype is None or od.city_datasets is None:
        return None
    return features_map(exports.current_features(od.city.hub, etype), lang)


def _feature_name(feature: Mapping[str, Any], lang: str) -> str | None:
    props = feature.get("properties")
    if isinstance(props, dict):
        for key in NAME_KEYS:
            value = props.get(key)
            if isinstance(value, dict):  # a language map (an NGSI-LD LanguageProperty)
                texts = value.get("languageMap", value)
                value = texts.get(lang) or texts.get("en") or next(iter(texts.values()), None)
            if isinstance(value, str | int | float) and str(value).strip():
                return str(value)[:200]
    ident = feature.get("id")
    return str(ident)[:200] if ident not in (None, "") else None


def _positions(coordinates: Any) -> Iterator[tuple[float, float]]:
    """Every (lon, lat) inside nested GeoJSON coordinates."""
    if isinstance(coordinates, list | tuple):
        if len(coordinates) >= 2 and all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates[:2]
        ):
            yield float(coordinates[0]), float(coordinates[1])
        else:
            for inner in coordinates:
                yield from _positions(inner)


def _centre(geometry: Any) -> tuple[float, float] | None:
    """(lat, lon) of a point, or of the middle of a shape's bounding box."""
    if not isinstance(geometry, dict):
        return None
    if geometry.get("type") == "GeometryCollection":
        parts = geometry.get("geometries") or []
        return next((c for c in map(_centre, parts) if c is not None), None)
    lons, lats = [], []
    for lon, lat in itertools.islice(_positions(geometry.get("coordinates")), MAX_VERTICES):
        lons.append(lon)
        lats.append(lat)
    if not lons:
        return None
    mid_lat = visuals.coordinate((min(lats) + max(lats)) / 2, "lat")
    mid_lon = visuals.coordinate((min(lons) + max(lons)) / 2, "lon")
    return (mid_lat, mid_lon) if mid_lat is not None and mid_lon is not None else None


# -- charts -----------------------------------------------------------------------------------


def datastore_chart(od: OpenData, found: Registered, plan: visuals.Plan) -> ChartPreview:
    assert plan.time and plan.values
    labels = {f.id: (f.info or {}).get("label") for f in found.fields}
    params = s.SearchParams(
        fields=[plan.time, *plan.values],
        sort=[(plan.time, True)],  # the latest rows
        limit=MAX_POINTS,
        include_total=True,
        records_format="lists",
    )
    try:
        with od.datastore.db.snapshot(budget=od.settings.datastore_search_timeout_s) as conn:
            page = s.search(conn, found, params)
    except (OpenDataError, QueryTimeout) as exc:
        return ChartPreview(error=getattr(exc, "message", SLOW))
    rows = []
    for record in page.records:
        when = visuals.moment(record[0])
        if when is not None:
            rows.append((when.replace(tzinfo=None) if when.tzinfo else when, record[1:]))
    rows.sort(key=lambda r: r[0])
    chart = ChartPreview(
        times=[r[0] for r in rows], capped=(page.total or 0) > MAX_POINTS, limit=MAX_POINTS
    )
    for k, name in enumerate(plan.values):
        label = labels.get(name)
        chart.series.append(
            Series(
                label if isinstance(label, str) and label else name,
                [visuals.number(r[1][k]) for r in rows],
            )
        )
    return chart


def live_chart(od: OpenData, package: Mapping[str, Any], today: dt.date) -> ChartPreview | None:
    """Hourly means of the type's numeric attributes over its entities, on the latest day
    (Hong Kong time) of the history files that has any: today's, else yesterday's."""
    etype = live_type(package)
    if etype is None or od.city_datasets is None:
        return None
    chart = ChartPreview(hourly=True)
    for day in (today, today - dt.timedelta(days=1)):
        chart = _hourly(exports.history_rows(od.city.hub, etype, day))
        chart.day = day
        if chart.series:
            break
    return chart


def _hourly(rows: Iterator[list[Any]]) -> ChartPreview:
    sums: dict[str, dict[dt.datetime, list[float]]] = defaultdict(lambda: defaultdict(list))
    read = 0
    for read, row in enumerate(itertools.islice(rows, MAX_READINGS + 1), 1):
        if read > MAX_READINGS:
            break
        _entity, attr, _dataset, value, _unit, observed, modified = row
        amount = visuals.number(value)
        when = visuals.moment(observed) or visuals.moment(modified)
        if amount is None or when is None or when.tzinfo is None:
            continue
        hour = when.astimezone(exports.HKT).replace(minute=0, second=0, microsecond=0)
        sums[attr][hour].append(amount)
    busiest = sorted(sums, key=lambda a: (-sum(len(v) for v in sums[a].values()), a))
    chosen = busiest[: visuals.MAX_SERIES]
    hours = sorted({h for a in chosen for h in sums[a]})
    chart = ChartPreview(times=hours, hourly=True, capped=read > MAX_READINGS, limit=MAX_READINGS)
    for attr in chosen:
        means = [sum(v) / len(v) if (v := sums[attr].get(h)) else None for h in hours]
        chart.series.append(Series(attr, [round(m, 3) if m is not None else None for m in means]))
    return chart
