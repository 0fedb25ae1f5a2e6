"""What the dashboard shows: the kinds of entity (one map layer and one tile each), the
attribute each is read from, colour bands, and the alert thresholds.

Kinds and attributes are matched by their *local name* (the IRI after its last ``/`` or ``#``),
so entities written by the connectors (Smart Data Models IRIs) and by devices registered with
the core context (NGSI-LD default-context IRIs) land in the same layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from smartcity.web.nav import N_

SDM = "https://smartdatamodels.org/"
DEFAULT_CTX = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
# Kai Tak Sports Park (main stadium), for the crowd tile; 2 km takes in the approaches.
KAI_TAK = (114.1985, 22.3225)
KAI_TAK_RADIUS_M = 2000.0


def local_name(iri: str) -> str:
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


@dataclass(frozen=True)
class Band:
    """A colour band: values up to ``upto`` (inclusive) get ``colour`` and ``label``."""

    upto: float
    colour: str
    label: str  # msgid


@dataclass(frozen=True)
class Kind:
    key: str
    type_name: str  # local name of the entity type
    domain: str  # Smart Data Models domain of the type (for its IRI)
    attr: str  # local name of the attribute the tile and the chart read
    unit: str  # msgid of the unit shown
    label: str  # msgid: the layer's name
    tile_label: str  # msgid: what the tile says
    aggregate: str  # tile and chart: sum | mean | max | count_over
    bands: tuple[Band, ...]
    percent: bool = False  # a 0..1 fraction shown as %
    colour_attr: str | None = None  # colour by this attribute instead (crowd: occupancy)
    count_over: float | None = None  # for aggregate=count_over: the level counted
    near: tuple[float, float] | None = None  # tile/chart over entities near this point only
    higher_is_worse: bool = True

    @property
    def type_iris(self) -> tuple[str, str]:
        return (f"{SDM}{self.domain}/{self.type_name}", DEFAULT_CTX + self.type_name)

    @property
    def attr_iris(self) -> tuple[str, str]:
        return (f"{SDM}{self.domain}/{self.attr}", DEFAULT_CTX + self.attr)

    def band(self, value: float | None) -> Band | None:
        if value is None:
            return None
        for band in self.bands:
            if value <= band.upto:
                return band
        return self.bands[-1]


GREEN, YELLOW, ORANGE, RED, PURPLE = "#1a7f37", "#b08800", "#d4650c", "#c62828", "#6a1b9a"

AQHI_BANDS = (
    Band(3, GREEN, N_("Low")),
    Band(6, YELLOW, N_("Moderate")),
    Band(7, ORANGE, N_("High")),
    Band(10, RED, N_("Very high")),
    Band(float("inf"), PURPLE, N_("Serious")),
)

KINDS: tuple[Kind, ...] = (
    Kind(
        "carparks", "OffStreetParking", "dataModel.Parking", "availableSpotNumber",
        N_("spaces"), N_("Car parks"), N_("Car park spaces free"), "sum",
        (Band(0, RED, N_("Full")), Band(20, ORANGE, N_("Few spaces")),
         Band(float("inf"), GREEN, N_("Spaces available"))),
        higher_is_worse=False,
    ),
    Kind(
        "traffic", "TrafficFlowObserved", "dataModel.Transportation", "averageVehicleSpeed",
        N_("km/h"), N_("Traffic detectors"), N_("Average road speed"), "mean",
        (Band(20, RED, N_("Congested")), Band(50, ORANGE, N_("Slow")),
         Band(float("inf"), GREEN, N_("Free flow"))),
        higher_is_worse=False,
    ),
    Kind(
        "air", "AirQualityObserved", "dataModel.Environment", "aqhi",
        N_("AQHI"), N_("Air quality stations"), N_("Worst AQHI"), "max", AQHI_BANDS,
    ),
    Kind(
        "weather", "WeatherObserved", "dataModel.Weather", "temperature",
        N_("°C"), N_("Smart lampposts"), N_("Lamppost temperature"), "mean",
        (Band(12, "#1565c0", N_("Cold")), Band(27, GREEN, N_("Mild")),
         Band(32, ORANGE, N_("Hot")), Band(float("inf"), RED, N_("Very hot"))),
    ),
    Kind(
        "bins", "WasteContainer", "dataModel.WasteManagement", "fillingLevel",
        N_("bins"), N_("Recycling bins"), N_("Bins over 80 % full"), "count_over",
        (Band(50, GREEN, N_("Room left")), Band(80, YELLOW, N_("Filling up")),
         Band(90, ORANGE, N_("Nearly full")), Band(float("inf"), RED, N_("Full"))),
        percent=True, count_over=80.0,
    ),
    Kind(
        "crowd", "CrowdFlowObserved", "dataModel.Transportation", "peopleCount",
        N_("people"), N_("Crowd zones"), N_("People near Kai Tak Sports Park"), "sum",
        (Band(50, GREEN, N_("Quiet")), Band(80, YELLOW, N_("Busy")),
         Band(90, ORANGE, N_("Crowded")), Band(float("inf"), RED, N_("Very crowded"))),
        colour_attr="occupancy", near=KAI_TAK,
    ),
)  # fmt: skip
BY_KEY: dict[str, Kind] = {k.key: k for k in KINDS}
BY_TYPE_NAME: dict[str, Kind] = {k.type_name: k for k in KINDS}


@dataclass(frozen=True)
class Rule:
    """An alert: the kind's value (or colour value, in %) compared with a threshold."""

    key: str  # the name used in SMARTCITY_DASHBOARD_THRESHOLDS
    kind: str
    op: str  # ">=", "<=", "<", ">"
    message: str  # msgid, formatted with value and threshold
    on_colour: bool = False  # compare the colour attribute (crowd occupancy) instead

    def crossed(self, value: float | None, threshold: float) -> bool:
        if value is None:
            return False
        if self.op == ">=":
            return value >= threshold
        if self.op == ">":
            return value > threshold
        if self.op == "<=":
            return value <= threshold
        return value < threshold


RULES: tuple[Rule, ...] = (
    Rule("aqhi", "air", ">=", N_("AQHI %(value)s (alert at %(threshold)s or more)")),
    Rule("speed", "traffic", "<", N_("Speed %(value)s km/h (alert below %(threshold)s)")),
    Rule("bin", "bins", ">", N_("Fill level %(value)s %% (alert above %(threshold)s %%)")),
    Rule("carpark", "carparks", "<=", N_("%(value)s spaces free: full")),
    Rule("crowd", "crowd", ">=", N_("Occupancy %(value)s %% (alert at %(threshold)s %%)"), True),
    Rule("heat", "weather", ">=", N_("%(value)s °C (alert at %(threshold)s °C)")),
)
DEFAULT_THRESHOLDS: dict[str, float] = {
    "aqhi": 7,
    "speed": 20,
    "bin": 90,
    "carpark": 0,
    "crowd": 90,
    "heat": 33,
}


@dataclass(frozen=True)
class DashboardConfig:
    tenant: str = ""
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    tile_url: str | None = None  # an online raster tile server; None: offline map only
    tile_attribution: str = ""
    resync_s: float = 300.0  # re-read the hub this often (other processes' writes)
    flush_s: float = 0.25  # at most this often an update event per client
    poll_s: float = 0.5  # ask the hub this often for other processes' writes (0: never)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        return cls(
            tenant=env.get("SMARTCITY_DASHBOARD_TENANT", ""),
            thresholds=parse_thresholds(env.get("SMARTCITY_DASHBOARD_THRESHOLDS", "")),
            tile_url=env.get("SMARTCITY_DASHBOARD_TILE_URL") or None,
            tile_attribution=env.get("SMARTCITY_DASHBOARD_TILE_ATTRIBUTION", ""),
            resync_s=float(env.get("SMARTCITY_DASHBOARD_RESYNC_S", "300")),
            poll_s=float(env.get("SMARTCITY_DASHBOARD_POLL_S", "0.5")),
        )


def parse_thresholds(text: str) -> dict[str, float]:
    """``aqhi=8,speed=15`` over the defaults; unknown names and non-numbers are errors."""
    out = dict(DEFAULT_THRESHOLDS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in out:
            raise ValueError(
                f"SMARTCITY_DASHBOARD_THRESHOLDS: {part!r} is not NAME=NUMBER with NAME one of "
                f"{', '.join(sorted(out))}"
            )
        try:
            out[name] = float(raw)
        except ValueError:
            raise ValueError(
                f"SMARTCITY_DASHBOARD_THRESHOLDS: {raw.strip()!r} for {name} is not a number"
            ) from None
    return out
