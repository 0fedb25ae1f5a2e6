"""The detector location list: where each detector is, which road and district, and in what
order detectors follow each other along a road (for imputation, road measures and
bottlenecks).

CSV, one row per detector station, header required (docs/analytics.md "Detector locations"):

    detector_id,road,district,direction,chainage_km,length_km,free_flow_kmh,latitude,longitude

Only ``detector_id`` is required. TD's own column names are accepted too (``AID_ID_Number``,
``Road_EN``, ``District``, ``Direction``, ``Latitude``, ``Longitude``). ``chainage_km`` is the
position along the road *in the direction of travel*; without it, stations of one road and
direction are ordered by the digits of their ids (TD numbers them along the road). Without a
list at all, the road is taken from the id (its prefix before the last two digits).
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from smartcity.analytics.traffic.config import MeasuresConfig

ALIASES = {
    "aid_id_number": "detector_id",
    "detector": "detector_id",
    "road_en": "road",
    "road_name": "road",
}


@dataclass
class Location:
    detector_id: str
    road: str
    district: str = "unknown"
    direction: str = ""
    chainage_km: float | None = None
    length_km: float | None = None
    free_flow_kmh: float | None = None
    latitude: float | None = None
    longitude: float | None = None


def _float(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    return float(text)


def read_csv(path: str | Path) -> list[Location]:
    out: list[Location] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"{path}: empty; expected a header row with detector_id")
        for n, raw in enumerate(reader, start=2):
            row = {
                ALIASES.get(k.strip().lower(), k.strip().lower()): (v or "")
                for k, v in raw.items()
                if k
            }
            detector = row.get("detector_id", "").strip()
            if not detector:
                raise ValueError(f"{path}:{n}: no detector_id (the first column to give)")
            try:
                out.append(
                    Location(
                        detector_id=detector,
                        road=row.get("road", "").strip() or road_of(detector),
                        district=row.get("district", "").strip() or "unknown",
                        direction=row.get("direction", "").strip(),
                        chainage_km=_float(row.get("chainage_km")),
                        length_km=_float(row.get("length_km")),
                        free_flow_kmh=_float(row.get("free_flow_kmh")),
                        latitude=_float(row.get("latitude")),
                        longitude=_float(row.get("longitude")),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: not a number ({exc})") from None
    return out


def road_of(detector_id: str) -> str:
    """Fallback road: the id without its last two digits (AID01107 -> AID011)."""
    m = re.match(r"^(.*?)(\d{2})$", detector_id)
    return m.group(1) if m and m.group(1) else detector_id


def _id_number(detector_id: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", detector_id)
    return (int(digits[-1]) if digits else 0, detector_id)


class Network:
    """Locations plus the order of stations along each road and direction."""

    def __init__(self, locations: list[Location], config: MeasuresConfig | None = None) -> None:
        self.config = config or MeasuresConfig()
        self.by_id = {loc.detector_id: loc for loc in locations}
        groups: dict[tuple[str, str], list[Location]] = defaultdict(list)
        for loc in locations:
            groups[(loc.road, loc.direction)].append(loc)
        self.routes: dict[tuple[str, str], list[str]] = {}
        for key, locs in groups.items():
            if all(loc.chainage_km is not None for loc in locs):
                locs.sort(key=lambda loc: (loc.chainage_km or 0.0, loc.detector_id))
            else:
                locs.sort(key=lambda loc: _id_number(loc.detector_id))
            self.routes[key] = [loc.detector_id for loc in locs]

    @classmethod
    def for_detectors(
        cls,
        detectors: list[str],
        locations: list[Location] | None = None,
        config: MeasuresConfig | None = None,
    ) -> Network:
        """The given list plus a fallback entry for every detector it does not name."""
        known = {loc.detector_id for loc in locations or []}
        extra = [Location(d, road_of(d)) for d in sorted(set(detectors) - known)]
        return cls([*(locations or []), *extra], config)

    def position(self, detector_id: str) -> tuple[tuple[str, str], int]:
        loc = self.by_id[detector_id]
        key = (loc.road, loc.direction)
        return key, self.routes[key].index(detector_id)

    def neighbours(self, detector_id: str, hops: int) -> list[str]:
        """Stations within ``hops`` positions along the same road and direction, nearest first."""
        key, i = self.position(detector_id)
        route = self.routes[key]
        out: list[str] = []
        for h in range(1, hops + 1):
            for j in (i - h, i + h):
                if 0 <= j < len(route):
                    out.append(route[j])
        return out

    def distance_km(self, a: str, b: str) -> float:
        ca, cb = self.by_id[a].chainage_km, self.by_id[b].chainage_km
        if ca is not None and cb is not None:
            return abs(cb - ca)
        return self.config.default_length_km  # unknown spacing: one default length

    def length_km(self, detector_id: str) -> float:
        """Road length a station stands for: given, else half-way to each neighbour (PeMS)."""
        loc = self.by_id[detector_id]
        if loc.length_km is not None:
            return loc.length_km
        key, i = self.position(detector_id)
        route = self.routes[key]
        if loc.chainage_km is None or len(route) < 2:
            return self.config.default_length_km
        halves = [
            self.distance_km(detector_id, route[j]) / 2
            for j in (i - 1, i + 1)
            if 0 <= j < len(route)
        ]
        if len(halves) == 2:
            return sum(halves)
        # An end station: as far beyond it as half-way to its one neighbour (symmetric).
        return 2 * halves[0]

    def table(self) -> pa.Table:
        """The locations as an Arrow table for the SQL analyses."""
        ids = sorted(self.by_id)
        return pa.table(
            {
                "detector_id": ids,
                "road": [self.by_id[d].road for d in ids],
                "district": [self.by_id[d].district for d in ids],
                "direction": [self.by_id[d].direction for d in ids],
                "length_km": pa.array([self.length_km(d) for d in ids], pa.float64()),
                "free_flow_kmh": pa.array(
                    [self.by_id[d].free_flow_kmh or self.config.free_flow_kmh for d in ids],
                    pa.float64(),
                ),
            }
        )

    def pairs(self) -> pa.Table:
        """Adjacent (upstream, downstream) stations with the distance between them."""
        up: list[str] = []
        down: list[str] = []
        dist: list[float] = []
        road: list[str] = []
        for (name, _direction), route in sorted(self.routes.items()):
            for a, b in itertools.pairwise(route):
                up.append(a)
                down.append(b)
                dist.append(self.distance_km(a, b))
                road.append(name)
        return pa.table(
            {
                "upstream": pa.array(up, pa.string()),
                "downstream": pa.array(down, pa.string()),
                "road": pa.array(road, pa.string()),
                "distance_km": pa.array(dist, pa.float64()),
            }
        )
