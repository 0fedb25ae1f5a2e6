"""A venue: its zones (areas a crowd occupies, with their area and width) and its gates, and
the egress time of its crowd through the gates against the Green Guide.

Egress: the Guide to Safety at Sports Grounds ("Green Guide", Sports Grounds Safety Authority,
6th edition 2018, chapter 10) sizes exits by a rate of passage of 82 people per metre of width
per minute on level routes and 66 on stairways, and sets 8 minutes as the longest normal egress
time from the viewing accommodation. So a crowd of N leaving through gates of widths w_i takes
N / Σ(w_i × rate_i) minutes, and a venue whose gates cannot pass its capacity in 8 minutes is
undersized.

Venues ship as JSON in ``venues/`` (Kai Tak Sports Park: illustrative figures, see its
``_note``); ``load_venue`` also reads a file of the same shape from anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

# Green Guide rates of passage, people per metre of exit width per minute.
RATE = {"level": 82.0, "stairs": 66.0}
EGRESS_TARGET_MIN = 8.0
DEFAULT_VENUE = "kai-tak-sports-park"
KINDS = ("walkway", "holding")


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    kind: str  # walkway (people moving: walkway LOS) or holding (standing: queueing LOS)
    area_m2: float
    width_m: float  # the clear width people move through (flow per metre)
    sensors: tuple[str, ...]  # CrowdFlowObserved entity ids counting this zone
    inside: bool = False  # inside the venue: its people leave through the gates
    location: dict[str, Any] | None = None


@dataclass(frozen=True)
class Gate:
    id: str
    name: str
    width_m: float
    route: str = "level"  # or stairs

    @property
    def rate(self) -> float:
        """People a minute through this gate at the Green Guide's rate."""
        return self.width_m * RATE[self.route]


@dataclass(frozen=True)
class Venue:
    id: str
    name: str
    capacity: int
    zones: tuple[Zone, ...]
    gates: tuple[Gate, ...]
    egress_target_min: float = EGRESS_TARGET_MIN
    note: str = field(default="", compare=False)

    @property
    def gate_rate(self) -> float:
        """People a minute all gates pass together."""
        return sum(g.rate for g in self.gates)

    def egress_minutes(self, people: float) -> float:
        """Minutes for ``people`` to pass the gates at the Green Guide's rates."""
        if self.gate_rate <= 0:
            raise ValueError(f"venue {self.id} has no gate width: egress time is unbounded")
        return people / self.gate_rate

    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)


def venues() -> list[str]:
    """The venues shipped with the platform."""
    folder = resources.files("smartcity.analytics.crowds") / "venues"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_venue(name_or_path: str | Path = DEFAULT_VENUE) -> Venue:
    """A shipped venue by name, or a venue JSON file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        raw = path.read_text(encoding="utf-8")
        where = str(path)
    else:
        shipped = resources.files("smartcity.analytics.crowds") / "venues" / f"{name_or_path}.json"
        if not shipped.is_file():
            raise ValueError(
                f"no venue {str(name_or_path)!r}: give a JSON file or one of {', '.join(venues())}"
            )
        raw = shipped.read_text(encoding="utf-8")
        where = f"venue {name_or_path}"
    try:
        return parse_venue(json.loads(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def parse_venue(data: dict[str, Any]) -> Venue:
    zones = []
    for z in data["zones"]:
        if z["kind"] not in KINDS:
            raise ValueError(f"zone {z['id']}: kind must be one of {', '.join(KINDS)}")
        if float(z["area_m2"]) <= 0 or float(z["width_m"]) <= 0:
            raise ValueError(f"zone {z['id']}: area_m2 and width_m must be positive")
        zones.append(
            Zone(
                id=z["id"],
                name=z["name"],
                kind=z["kind"],
                area_m2=float(z["area_m2"]),
                width_m=float(z["width_m"]),
                sensors=tuple(z["sensors"]),
                inside=bool(z.get("inside", False)),
                location=z.get("location"),
            )
        )
    gates = []
    for g in data.get("gates", []):
        if g.get("route", "level") not in RATE:
            raise ValueError(f"gate {g['id']}: route must be one of {', '.join(RATE)}")
        gates.append(Gate(g["id"], g["name"], float(g["width_m"]), g.get("route", "level")))
    return Venue(
        id=data["id"],
        name=data["name"],
        capacity=int(data["capacity"]),
        zones=tuple(zones),
        gates=tuple(gates),
        egress_target_min=float(data.get("egress_target_min", EGRESS_TARGET_MIN)),
        note=data.get("_note", ""),
    )
