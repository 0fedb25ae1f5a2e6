"""The simulated city's devices: where they are, which entity each feeds, what it measures.

Places come from the data shipped in ``data/`` (real Transport Department car parks, EPD
station sites, authored roads, district centres and Kai Tak Sports Park zones). The fleet for
N devices is split between kinds by fixed shares; kinds with a limited number of real places
(car parks, air stations, crowd zones) fill up with extra sensors near the real ones, so any N
from 100 to 100,000 works and the same (N, seed) always gives the same fleet.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from smartcity.live.connectors.air_quality import STATIONS
from smartcity.live.simulator.noise import unit

MIN_DEVICES = 100
MAX_DEVICES = 100_000

# Share of the fleet per kind (sums to 1).
SHARES: dict[str, float] = {
    "carpark": 0.12,
    "traffic": 0.15,
    "air": 0.04,
    "lamppost": 0.21,
    "bin": 0.24,
    "rodent": 0.08,
    "toilet": 0.04,
    "crowd": 0.07,
    "bus": 0.04,
    "water": 0.01,
}
PREFIX = {
    "carpark": "cp",
    "traffic": "td",
    "air": "aq",
    "lamppost": "slp",
    "bin": "bin",
    "rodent": "rod",
    "toilet": "wc",
    "crowd": "crowd",
    "bus": "bus",
    "water": "dma",
}


@dataclass(frozen=True)
class Measure:
    """One payload key of a device and the attribute it becomes."""

    key: str
    unit: str | None = None


@dataclass(frozen=True)
class SimDevice:
    index: int  # position in the fleet (also the noise key)
    kind: str
    device_id: str
    entity_type: str
    entity_id: str
    name: str
    lon: float
    lat: float
    measures: tuple[Measure, ...]
    params: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] | None = None  # a zone's polygon; None: the point

    @property
    def location(self) -> dict[str, Any]:
        return self.geometry or {"type": "Point", "coordinates": [self.lon, self.lat]}


def _data(name: str) -> Any:
    raw = resources.files("smartcity.live.simulator") / "data" / name
    return json.loads(raw.read_text(encoding="utf-8"))


@cache
def carparks() -> list[dict[str, Any]]:
    return list(_data("carparks.json"))


@cache
def city() -> dict[str, Any]:
    return dict(_data("city.json"))


def counts(n: int) -> dict[str, int]:
    """How many devices of each kind a fleet of n has (largest remainder, at least one each)."""
    if not MIN_DEVICES <= n <= MAX_DEVICES:
        raise ValueError(f"devices must be between {MIN_DEVICES} and {MAX_DEVICES}, got {n}")
    raw = {k: n * s for k, s in SHARES.items()}
    out = {k: max(1, int(v)) for k, v in raw.items()}
    rest = sorted(raw, key=lambda k: raw[k] - int(raw[k]), reverse=True)
    i = 0
    while sum(out.values()) < n:
        out[rest[i % len(rest)]] += 1
        i += 1
    while sum(out.values()) > n:
        biggest = max(out, key=lambda k: out[k])
        out[biggest] -= 1
    return out


def _jitter(seed: int, key: int, lon: float, lat: float, metres: float) -> tuple[float, float]:
    """A point within ``metres`` of (lon, lat), fixed by (seed, key)."""
    r = metres * math.sqrt(unit(seed, key, 1))
    a = 2 * math.pi * unit(seed, key, 2)
    dlat = r * math.cos(a) / 111_320
    dlon = r * math.sin(a) / (111_320 * math.cos(math.radians(lat)))
    return round(lon + dlon, 6), round(lat + dlat, 6)


def _along(points: list[list[float]], fraction: float) -> tuple[float, float]:
    """The point at ``fraction`` (0..1) of a polyline's length (degrees are fine at this scale)."""
    legs = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    goal = fraction * sum(legs)
    for (a, b), leg in zip(itertools.pairwise(points), legs, strict=True):
        if goal <= leg or leg == 0:
            f = goal / leg if leg else 0.0
            return round(a[0] + (b[0] - a[0]) * f, 6), round(a[1] + (b[1] - a[1]) * f, 6)
        goal -= leg
    return points[-1][0], points[-1][1]


def _square(lon: float, lat: float, metres: float) -> dict[str, Any]:
    dlat = metres / 111_320
    dlon = metres / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [round(lon - dlon, 6), round(lat - dlat, 6)],
        [round(lon + dlon, 6), round(lat - dlat, 6)],
        [round(lon + dlon, 6), round(lat + dlat, 6)],
        [round(lon - dlon, 6), round(lat + dlat, 6)],
        [round(lon - dlon, 6), round(lat - dlat, 6)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _order(seed: int, salt: int, size: int) -> list[int]:
    """A seeded permutation of range(size)."""
    return sorted(range(size), key=lambda i: unit(seed, salt, i))


def _entity(kind: str, type_name: str, key: str) -> tuple[str, str]:
    return f"sim-{PREFIX[kind]}-{key}", f"urn:ngsi-ld:{type_name}:SIM-{key}"


def build_fleet(n: int, seed: int) -> list[SimDevice]:
    """The devices of a city with n of them (deterministic in n and seed)."""
    want = counts(n)
    data = city()
    fleet: list[SimDevice] = []

    def add(
        kind: str,
        type_name: str,
        key: str,
        name: str,
        lon: float,
        lat: float,
        measures: tuple[Measure, ...],
        geometry: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        device_id, entity_id = _entity(kind, type_name, key)
        fleet.append(
            SimDevice(
                len(fleet),
                kind,
                device_id,
                type_name,
                entity_id,
                name,
                lon,
                lat,
                measures,
                params,
                geometry,
            )
        )

    # Car parks: the real ones in a seeded order, then extra levels/annexes near them.
    parks = carparks()
    order = _order(seed, 11, len(parks))
    for i in range(want["carpark"]):
        park = parks[order[i % len(parks)]]
        lap = i // len(parks)
        key = park["id"] if lap == 0 else f"{park['id']}-{lap + 1}"
        lon, lat = (
            (park["lon"], park["lat"])
            if lap == 0
            else _jitter(seed, 1_000_000 + i, park["lon"], park["lat"], 300)
        )
        names = dict(park["name"])
        if lap:
            names = {k: f"{v} ({lap + 1})" for k, v in names.items()}
        add(
            "carpark",
            "OffStreetParking",
            key,
            names["en"],
            lon,
            lat,
            (Measure("availableSpotNumber"), Measure("occupiedSpotNumber"), Measure("status")),
            names=names,
            district=park["district"],
            spaces=park["spaces"],
            usage=park["kind"],
        )
    # Traffic detectors: spread along the roads, evenly per road, each at its own position.
    roads = data["roads"]
    for i in range(want["traffic"]):
        r = i % len(roads)
        road = roads[r]
        slot = i // len(roads)
        per_road = -(-want["traffic"] // len(roads))
        fraction = (slot + 0.5) / per_road
        lon, lat = _along(road["points"], fraction)
        bound = "A" if slot % 2 == 0 else "B"
        key = f"{road['id']}-{slot + 1:04d}"
        add(
            "traffic",
            "TrafficFlowObserved",
            key,
            f"{road['name']} detector {slot + 1} ({'outbound' if bound == 'A' else 'inbound'})",
            lon,
            lat,
            (
                Measure("averageVehicleSpeed", "KMH"),
                Measure("intensity"),
                Measure("occupancy", "C62"),
                Measure("congested"),
            ),
            road=r,
            road_id=road["id"],
            road_name=road["name"],
            fraction=fraction,
            limit=road["limit"],
            bound=bound,
        )
    # Air quality: EPD station sites, then roadside micro-sensors along the roads.
    stations = list(STATIONS.items())
    for i in range(want["air"]):
        pollutants = tuple(Measure(p, "GQ") for p in ("no2", "o3", "so2", "co", "pm10", "pm25"))
        extra = (Measure("aqhi"), Measure("airQualityLevel"), Measure("addedHealthRisk"))
        if i < len(stations):
            label, (lon, lat, site) = stations[i]
            add(
                "air",
                "AirQualityObserved",
                f"EPD-{_slug(label)}",
                f"{label} (simulated)",
                lon,
                lat,
                pollutants + extra,
                site=site,
            )
        else:
            road = roads[i % len(roads)]
            lon, lat = _along(road["points"], unit(seed, 21, i))
            add(
                "air",
                "AirQualityObserved",
                f"MICRO-{i:05d}",
                f"Roadside sensor {i} ({road['name']})",
                lon,
                lat,
                pollutants + extra,
                site="roadside",
            )
    # Smart lampposts: along roads, a little off the carriageway.
    for i in range(want["lamppost"]):
        road = roads[i % len(roads)]
        lon, lat = _jitter(seed, 31_000_000 + i, *_along(road["points"], unit(seed, 31, i)), 60)
        add(
            "lamppost",
            "WeatherObserved",
            f"SLP-{i:05d}",
            f"Smart lamppost {i + 1:05d}",
            lon,
            lat,
            (
                Measure("temperature", "CEL"),
                Measure("relativeHumidity", "C62"),
                Measure("windSpeed", "MTS"),
                Measure("windDirection", "DD"),
            ),
        )
    districts = data["districts"]

    def near_district(kind: str, i: int, metres: float) -> tuple[dict[str, Any], float, float]:
        d = districts[int(unit(seed, name_salt(kind), i) * len(districts))]
        lon, lat = _jitter(seed, name_salt(kind) * 1_000_003 + i, d["lon"], d["lat"], metres)
        return d, lon, lat

    for i in range(want["bin"]):
        d, lon, lat = near_district("bin", i, 900)
        add(
            "bin",
            "WasteContainer",
            f"BIN-{i:05d}",
            f"Recycling bin {i + 1:05d} ({d['name']})",
            lon,
            lat,
            (Measure("fillingLevel", "C62"), Measure("dateLastEmptying")),
            district=d["name"],
            activity=d["activity"],
            waste=("paper", "plastic", "metal")[i % 3],
        )
    for i in range(want["rodent"]):
        d, lon, lat = near_district("rodent", i, 700)
        add(
            "rodent",
            "RodentActivityObserved",
            f"ROD-{i:05d}",
            f"Rodent sensor {i + 1:05d} ({d['name']})",
            lon,
            lat,
            (Measure("detections"), Measure("activityLevel")),
            district=d["name"],
            activity=d["activity"],
        )
    for i in range(want["toilet"]):
        d, lon, lat = near_district("toilet", i, 800)
        add(
            "toilet",
            "PublicToiletObserved",
            f"WC-{i:05d}",
            f"Public toilet {i + 1:05d} ({d['name']})",
            lon,
            lat,
            (
                Measure("visitorCount"),
                Measure("occupiedCubicles"),
                Measure("ammoniaLevel", "59"),
                Measure("cleaningRequired"),
            ),
            district=d["name"],
            activity=d["activity"],
            cubicles=4 + int(unit(seed, 41, i) * 9),
        )
    zones = data["kai_tak"]["zones"]
    for i in range(want["crowd"]):
        zone = zones[i % len(zones)]
        lap = i // len(zones)
        key = f"KT-{zone['id']}" + (f"-{lap + 1}" if lap else "")
        lon, lat = (
            (zone["lon"], zone["lat"])
            if not lap
            else _jitter(seed, 51_000_000 + i, zone["lon"], zone["lat"], 120)
        )
        add(
            "crowd",
            "CrowdFlowObserved",
            key,
            zone["name"] + (f" sensor {lap + 1}" if lap else ""),
            lon,
            lat,
            (
                Measure("peopleCount"),
                Measure("occupancy", "C62"),
                Measure("congested"),
                Measure("averageCrowdSpeed", "MTS"),
            ),
            geometry=_square(lon, lat, 40),
            role=zone["role"],
            capacity=zone["capacity"] // (lap + 1),
        )
    # Bus stop panels showing the next bus: stops near the district centres, each served by
    # its district's route (one route per district, to a district across the city).
    for i in range(want["bus"]):
        d, lon, lat = near_district("bus", i, 600)
        n = districts.index(d)
        destination = districts[(n + len(districts) // 2) % len(districts)]["name"]
        route = f"S{n + 1}"
        add(
            "bus",
            "ArrivalEstimation",
            f"BUS-{i:05d}",
            f"Bus stop panel {i + 1:05d} ({d['name']})",
            lon,
            lat,
            (Measure("remainingTime"), Measure("estimatedArrivalTime")),
            district=d["name"],
            route=route,
            route_id=f"urn:ngsi-ld:GtfsRoute:SIM-{route}",
            route_name=f"{d['name']} - {destination}",
            head_sign=destination,
            headway_min=6 + round(9 * unit(seed, 61, n)),
            stop_id=f"urn:ngsi-ld:GtfsStop:SIM-BUS-{i:05d}",
            stop_code=f"SIM{i + 1:05d}",
            stop_name=f"Bus stop {i + 1:05d} ({d['name']})",
        )
    # Water district metered areas (DMAs): each inlet meter reports the area's inflow and the
    # sum of its customers' smart meters. A quarter of them develop a burst, a quarter a
    # slowly rising leak, the rest stay clean (models.water_leak says when).
    for i in range(want["water"]):
        d, lon, lat = near_district("water", i, 1500)
        add(
            "water",
            "WaterConsumptionObserved",
            f"DMA-{i:03d}",
            f"DMA {i + 1:03d} ({d['name']})",
            lon,
            lat,
            (Measure("inflow", "MQH"), Measure("customerConsumption", "MQH")),
            district=d["name"],
            connections=1500 + int(unit(seed, 71, i) * 4500),
            leak=WATER_ROLES[i % len(WATER_ROLES)],
        )
    return fleet


# What happens to each water DMA, by its position among them (see models.water_leak).
WATER_ROLES = ("clean", "burst", "clean", "rising")


def name_salt(kind: str) -> int:
    return 100 + list(SHARES).index(kind)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def sending_order(n: int, seed: int) -> list[int]:
    """The order devices report in (a seeded shuffle, so kinds interleave)."""
    return _order(seed, 7, n)
