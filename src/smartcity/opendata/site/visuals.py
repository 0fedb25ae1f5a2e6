"""Which previews a resource gets besides its table: a map when it holds places, a chart when
it holds a time series. Pure functions over a resource's description and its DataStore fields
(names and types), so the rules are tested apart from any page.

* **Map**: a GeoJSON resource (an upload, or a live city dataset's ``current.geojson``), or a
  DataStore table with a latitude and a longitude column, by the names Hong Kong's files use
  (``latitude``/``lat``, ``longitude``/``lon``/``lng``/``long``, ``緯度``/``纬度``,
  ``經度``/``经度``), whatever their case and decoration (``Latitude (WGS84)``, ``site_lat``).
* **Chart**: a DataStore table with a date or time column (typed ``date``/``timestamp``, or a
  text column named like one: ``date``, ``time``, ``日期``, ``時間``...) and numeric columns,
  or a live city dataset's history files.

Values are parsed leniently (a coordinate written as text, a date with slashes) and never
raise: a cell that is not a coordinate or a moment is left out of the figure, not an error.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["lat", "lon"]
NUMERIC_TYPES = frozenset({"int", "float"})
TIME_TYPES = frozenset({"date", "timestamp"})
GEOJSON_FORMATS = frozenset({"geojson", "geo+json", "application/geo+json"})
MAX_SERIES = 4  # numeric columns charted (one small chart each)

_LAT_WORDS = frozenset({"lat", "latitude"})
_LON_WORDS = frozenset({"lon", "lng", "long", "longitude"})
_LAT_CJK = ("緯度", "纬度")
_LON_CJK = ("經度", "经度")
_TIME_WORDS = frozenset({"date", "time", "datetime", "timestamp", "day", "observed", "period"})
_TIME_CJK = ("日期", "時間", "时间", "時段", "时段")
_NOT_MEASURES = frozenset({"id", "code", "no"})  # numeric columns that name things, not amounts
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def words(name: str) -> set[str]:
    """A column name's Latin words: ``siteLatitude (WGS84)`` → {site, latitude, wgs84}."""
    return set(_WORD.findall(_CAMEL.sub(" ", name).casefold()))


def coordinate_role(name: str) -> Role | None:
    """Whether a column's name says it holds latitudes or longitudes."""
    found = words(name)
    lat = bool(found & _LAT_WORDS) or any(w in name for w in _LAT_CJK)
    lon = bool(found & _LON_WORDS) or any(w in name for w in _LON_CJK)
    if lat == lon:  # neither, or both ("lat/lon" in one column): not one coordinate
        return None
    return "lat" if lat else "lon"


def is_time_name(name: str) -> bool:
    return bool(words(name) & _TIME_WORDS) or any(w in name for w in _TIME_CJK)


@dataclass(frozen=True)
class Plan:
    """What a resource shows besides its table; the columns each figure reads."""

    map: Literal["geojson", "live-geojson", "datastore"] | None = None
    chart: Literal["datastore", "live-history"] | None = None
    lat: str | None = None
    lon: str | None = None
    time: str | None = None
    values: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # text columns naming a row, best first


def coordinate_columns(fields: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The first latitude and longitude columns (numbers, or text holding numbers)."""
    lat = lon = None
    for name, type_name in fields:
        if type_name not in NUMERIC_TYPES and type_name != "text":
            continue
        role = coordinate_role(name)
        if type_name == "text" and words(name) & _LON_WORDS == {"long"}:
            continue  # "long_description" is text, not a longitude
        if role == "lat" and lat is None:
            lat = name
        elif role == "lon" and lon is None:
            lon = name
    return (lat, lon) if lat and lon else None


def time_column(fields: Sequence[tuple[str, str]]) -> str | None:
    """A ``date``/``timestamp`` column; else a text column named like a date or time."""
    typed = next((n for n, t in fields if t in TIME_TYPES), None)
    return typed or next((n for n, t in fields if t == "text" and is_time_name(n)), None)


def measure_columns(fields: Sequence[tuple[str, str]], skip: set[str]) -> list[str]:
    return [
        n
        for n, t in fields
        if t in NUMERIC_TYPES
        and n not in skip
        and not n.startswith("_")
        and coordinate_role(n) is None
        and not (words(n) & _NOT_MEASURES)
    ][:MAX_SERIES]


def label_columns(fields: Sequence[tuple[str, str]], skip: set[str]) -> list[str]:
    """Text columns that may name a row, those called a name first."""
    texts = [n for n, t in fields if t == "text" and n not in skip and not n.startswith("_")]
    named = [n for n in texts if words(n) & {"name", "title"} or "名稱" in n or "名称" in n]
    return named + [n for n in texts if n not in named]


def plan(
    resource: Mapping[str, Any], fields: Sequence[tuple[str, str]] | None, *, live: bool
) -> Plan:
    """The previews of ``resource`` (a ``resource_show`` dict); ``fields``: its DataStore
    table's (name, type), None without one; ``live``: its dataset is a live city dataset."""
    url = str(resource.get("url") or "").split("?", 1)[0]
    fmt = str(resource.get("format") or "").strip().casefold()
    if live and resource.get("kind") == "live":
        if url.endswith("/live/current.geojson"):
            return Plan(map="live-geojson")
        if url.endswith("/live/history"):
            return Plan(chart="live-history")
    is_geojson = fmt in GEOJSON_FORMATS or url.casefold().endswith(".geojson")
    if is_geojson and resource.get("url_type") == "upload":
        return Plan(map="geojson")  # a link's file is another host's: never fetched here
    if fields is None:
        return Plan()
    coords = coordinate_columns(fields)
    when = time_column(fields)
    used = {*(coords or ()), *([when] if when else [])}
    values = measure_columns(fields, used) if when else []
    return Plan(
        map="datastore" if coords else None,
        chart="datastore" if when and values else None,
        lat=coords[0] if coords else None,
        lon=coords[1] if coords else None,
        time=when if values else None,
        values=values,
        labels=label_columns(fields, used),
    )


def number(value: Any) -> float | None:
    """A finite number from a cell (a number, or text holding one), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def coordinate(value: Any, role: Role) -> float | None:
    """A latitude (-90..90) or longitude (-180..180) in decimal degrees, else None."""
    found = number(value)
    limit = 90.0 if role == "lat" else 180.0
    return found if found is not None and -limit <= found <= limit else None


_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?$")


def moment(value: Any) -> dt.datetime | None:
    """A date or time cell as a datetime (naive: as written; with an offset: aware), else
    None. ISO dates and times, ``2024/1/5``, and a month ``2024-01`` (its first day)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    text = value.strip()
    short = _DATE.match(text)
    try:
        if short:
            year, month, day = short.groups()
            return dt.datetime(int(year), int(month), int(day or 1))
        if len(text) < 10 or not text[:4].isdigit():
            return None
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
