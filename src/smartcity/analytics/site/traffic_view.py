"""What the traffic page shows, read from the stored traffic results (``pipeline.Store``):
the latest 5-minute speeds per detector with their speed band, detector health for one day,
performance measures per road or district and the day's bottlenecks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smartcity.analytics.traffic.locations import Location, read_csv
from smartcity.analytics.traffic.pipeline import Store
from smartcity.web.nav import N_

API = "/api/v1/analytics/traffic"


@dataclass(frozen=True)
class Band:
    key: str
    label: str  # msgid
    below: float  # km/h, upper bound (exclusive)
    colour: str  # map colour; the band's name is always written beside it


# Speed bands of the congestion map (TD's own journey-time colours use the same three ideas:
# congested, slow, free flowing), km/h.
BANDS = (
    Band("congested", N_("Congested (under 20 km/h)"), 20, "#b2182b"),
    Band("slow", N_("Slow (20 to 40 km/h)"), 40, "#e08214"),
    Band("moderate", N_("Moderate (40 to 60 km/h)"), 60, "#8c8c2c"),
    Band("free", N_("Free flowing (60 km/h or more)"), float("inf"), "#1a9850"),
)

STATUSES = (
    ("good", N_("Good")),
    ("insufficient_data", N_("Insufficient data")),
    ("card_off", N_("Card off")),
    ("high_val", N_("High values")),
    ("intermittent", N_("Intermittent")),
    ("constant", N_("Constant")),
)
LEVELS = (("road", N_("Road")), ("district", N_("District")))


def band_of(speed: float | None) -> Band | None:
    if speed is None:
        return None
    return next(b for b in BANDS if speed < b.below)


@dataclass
class TrafficView:
    days: list[dt.date]
    day: dt.date | None
    error: str | None = None  # a date the visitor typed that is not a day with results
    latest: list[dict[str, Any]] = field(default_factory=list)
    latest_at: dt.datetime | None = None
    health: list[dict[str, Any]] = field(default_factory=list)
    health_counts: list[tuple[str, str, int]] = field(default_factory=list)
    measures_day: list[dict[str, Any]] = field(default_factory=list)
    measures_hours: dict[str, list[tuple[dt.datetime, float | None]]] = field(default_factory=dict)
    bottlenecks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hours(self) -> list[dt.datetime]:
        """The hours of the hourly chart's table (the union over roads, in order)."""
        return sorted({t for rows in self.measures_hours.values() for t, _ in rows})

    def hourly(self, key: str) -> dict[dt.datetime, float | None]:
        return dict(self.measures_hours.get(key, []))

    def chart(self) -> dict[str, Any]:
        """The hourly speed chart's data for the script (the table says the same)."""
        return {
            "series": [
                {"label": key, "points": [[t.isoformat(), v] for t, v in rows]}
                for key, rows in self.measures_hours.items()
            ]
        }

    def map_points(self) -> list[dict[str, Any]]:
        return [r for r in self.latest if r["lat"] is not None and r["lon"] is not None]


def _locations(store: Store) -> dict[str, Location]:
    path = store.root / "locations.csv"
    if not path.exists():
        return {}
    try:
        return {loc.detector_id: loc for loc in read_csv(path)}
    except (OSError, ValueError):  # a broken list must not break the page: no map then
        return {}


def _rows(table: pa.Table | None) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


def load(store: Store, asked: str | None, level: str) -> TrafficView:
    days = store.days("health")
    view = TrafficView(days=days, day=days[-1] if days else None)
    if asked:
        try:
            wanted = dt.date.fromisoformat(asked)
        except ValueError:
            view.error = "format"
        else:
            if wanted in days:
                view.day = wanted
            else:
                view.error = "missing"
    if view.day is None:
        return view
    day = view.day
    locs = _locations(store)

    health = _rows(store.read("health", day))
    health.sort(key=lambda r: (r["status"] == "good", r["detector_id"]))
    view.health = health
    counts = {key: 0 for key, _ in STATUSES}
    for row in health:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    view.health_counts = [(key, label, counts.get(key, 0)) for key, label in STATUSES]

    clean = store.read("clean5", day)
    if clean is not None and clean.num_rows:
        last = pc.max(clean["period_start"]).as_py()
        view.latest_at = last
        now = clean.filter(
            pc.equal(clean["period_start"], pa.scalar(last, clean["period_start"].type))
        )
        for row in sorted(now.to_pylist(), key=lambda r: r["detector_id"]):
            loc = locs.get(row["detector_id"])
            band = band_of(row["speed"])
            view.latest.append(
                {
                    **row,
                    "band": band,
                    "road": loc.road if loc else None,
                    "district": loc.district if loc else None,
                    "lat": loc.latitude if loc else None,
                    "lon": loc.longitude if loc else None,
                }
            )

    measures = store.read("measures", day)
    if measures is not None:
        mine = measures.filter(pc.equal(measures["level"], level))
        per_day = mine.filter(pc.equal(mine["period"], "day"))
        view.measures_day = sorted(per_day.to_pylist(), key=lambda r: r["key"])
        hours = mine.filter(pc.equal(mine["period"], "hour")).to_pylist()
        by_key: dict[str, list[tuple[dt.datetime, float | None]]] = {}
        for row in sorted(hours, key=lambda r: (r["key"], r["period_start"])):
            speed = row["speed"]
            by_key.setdefault(row["key"], []).append(
                (row["period_start"], None if speed is None else round(speed, 1))
            )
        view.measures_hours = by_key

    bottlenecks = _rows(store.read("bottlenecks", day))
    view.bottlenecks = sorted(bottlenecks, key=lambda r: -r["active_minutes"])
    return view
