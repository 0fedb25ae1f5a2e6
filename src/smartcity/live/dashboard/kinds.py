"""What the dashboard shows: the kinds of entity (one map layer and one tile each), the
attribute each is read from, colour bands, and the alert thresholds.

Types and attributes are short names of the platform's city @context (hub/contexts.py) and
are matched by the IRIs it gives them, as the portal's live figures and API clients sending
that context do: the Smart Data Models IRIs the connectors and the simulator write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from smartcity.hub.contexts import city_context
from smartcity.web.nav import N_

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
# Kai Tak Sports Park (main stadium), for the crowd tile; 2 km takes in the approaches.
KAI_TAK = (114.1985, 22.3225)
KAI_TAK_RADIUS_M = 2000.0


def local_name(iri: str) -> str:
    """The IRI after its last ``/`` or ``#``: how an attribute is labelled on the page."""
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def iri(name: str) -> str:
    """The IRI of a short name in the city @context."""
    return city_context().expand(name)


@dataclass(frozen=True)
class Band:
    """A colour band: values up to ``upto`` (inclusive) get ``colour`` and ``label``."""

    upto: float
    colour: str
    label: str  # msgid


@dataclass(frozen=True)
class Kind:
    key: str
    type_name: str  # the entity type's short name in the city @context
    attr: str  # short name of the attribute the tile and the chart read
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
    def type_iris(self) -> tuple[str, ...]:
        return (iri(self.type_name),)

    @property
    def attr_iris(self) -> tuple[str, ...]:
        return (iri(self.attr),)

    @property
    def colour_iri(self) -> str | None:
        return iri(self.colour_attr) if self.colour_attr else None

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
        "carparks", "OffStreetParking", "availableSpotNumber",
        N_("spaces"), N_("Car parks"), N_("Car park spaces free"), "sum",
        (Band(0, RED, N_("Full")), Band(20, ORANGE, N_("Few spaces")),
         Band(float("inf"), GREEN, N_("Spaces available"))),
        higher_is_worse=False,
    ),
    Kind(
        "traffic", "TrafficFlowObserved", "averageVehicleSpeed",
        N_("km/h"), N_("Traffic detectors"), N_("Average road speed"), "mean",
        (Band(20, RED, N_("Congested")), Band(50, ORANGE, N_("Slow")),
         Band(float("inf"), GREEN, N_("Free flow"))),
        higher_is_worse=False,
    ),
    Kind(
        "air", "AirQualityObserved", "aqhi",
        N_("AQHI"), N_("Air quality stations"), N_("Worst AQHI"), "max", AQHI_BANDS,
    ),
    Kind(
        "weather", "WeatherObserved", "temperature",
        N_("°C"), N_("Smart lampposts"), N_("Lamppost temperature"), "mean",
        (Band(12, "#1565c0", N_("Cold")), Band(27, GREEN, N_("Mild")),
         Band(32, ORANGE, N_("Hot")), Band(float("inf"), RED, N_("Very hot"))),
    ),
    Kind(
        "bins", "WasteContainer", "fillingLevel",
        N_("bins"), N_("Recycling bins"), N_("Bins over 80 % full"), "count_over",
        (Band(50, GREEN, N_("Room left")), Band(80, YELLOW, N_("Filling up")),
         Band(90, ORANGE, N_("Nearly full")), Band(float("inf"), RED, N_("Full"))),
        percent=True, count_over=80.0,
    ),
    Kind(
        "crowd", "CrowdFlowObserved", "peopleCount",
        N_("people"), N_("Crowd zones"), N_("People near Kai Tak Sports Park"), "sum",
        (Band(50, GREEN, N_("Quiet")), Band(80, YELLOW, N_("Busy")),
         Band(90, ORANGE, N_("Crowded")), Band(float("inf"), RED, N_("Very crowded"))),
        colour_attr="occupancy", near=KAI_TAK,
    ),
)  # fmt: skip
BY_KEY: dict[str, Kind] = {k.key: k for k in KINDS}
BY_TYPE_NAME: dict[str, Kind] = {k.type_name: k for k in KINDS}
BY_TYPE_IRI: dict[str, Kind] = {t: k for k in KINDS for t in k.type_iris}


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
