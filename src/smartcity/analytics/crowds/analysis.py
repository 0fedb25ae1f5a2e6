"""The crowd at a venue now: per zone density (people/m²), speed, flow (people per metre of
width per minute), Fruin level of service and alert rung; the venue's egress time; and the
alerts that follow, written into the hub as ``Alert`` entities.

Readings are ``CrowdFlowObserved`` (Smart Data Models): ``peopleCount`` (people in the zone)
and ``averageCrowdSpeed`` (m/s). Each zone's sensors are averaged over a short window (3
minutes by default: long enough to smooth a counter's jitter, short enough that a surge
shows), summed over the zone's sensors, and divided by its area. Flow follows from the
fundamental relation of pedestrian traffic, q = k × v (people/m² × m/s = people per metre per
second), times 60. The SQL runs on any analytics engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from smartcity.analytics.alerts import (
    AlertSpec,
    Outcome,
    active_alerts,
    alert_id,
    reconcile,
)
from smartcity.analytics.crowds.los import SEVERITY, Ladder, ladder, queue_los, walkway_los
from smartcity.analytics.crowds.venue import Venue
from smartcity.analytics.engine import Engine, default_engine
from smartcity.analytics.readings import from_hub, with_micros
from smartcity.hub.runtime import Hub
from smartcity.hub.timeutil import iso_from_us

ANALYSIS = "crowds"
ATTRS = ("peopleCount", "averageCrowdSpeed")
WINDOW_S = 180
# A rung is left only once density and flow are this far below its threshold (10 %: about
# the counting error of camera-based people counters).
HYSTERESIS = 0.10
_ORDER = list(Ladder)

_ZONE_SQL = """
WITH recent AS (
    SELECT entity_id, attr, value, t_us FROM readings
    WHERE t_us > {lo} AND t_us <= {hi}
), per_sensor AS (
    SELECT entity_id,
           avg(value) FILTER (WHERE attr = 'peopleCount') AS people,
           avg(value) FILTER (WHERE attr = 'averageCrowdSpeed') AS speed,
           max(t_us) AS last_us
    FROM recent GROUP BY entity_id
)
SELECT s.zone_id,
       sum(p.people) AS people,
       -- the zone's speed: its sensors' speeds weighted by their people
       sum(p.people * p.speed) FILTER (WHERE p.speed IS NOT NULL)
         / nullif(sum(p.people) FILTER (WHERE p.speed IS NOT NULL), 0) AS speed,
       count(p.people) AS reporting,
       max(p.last_us) AS last_us
FROM sensors s LEFT JOIN per_sensor p ON p.entity_id = s.entity_id
GROUP BY s.zone_id
ORDER BY s.zone_id
"""


@dataclass
class ZoneStatus:
    zone: str
    name: str
    kind: str
    area_m2: float
    people: float | None  # None: no sensor reported in the window
    density: float | None  # people/m²
    speed: float | None  # m/s
    flow: float | None  # people per metre of width per minute
    los: str | None  # Fruin A-F
    level: str  # the alert ladder's rung
    sensors_reporting: int
    last_observed: str | None


@dataclass
class VenueStatus:
    venue: str
    name: str
    at: str
    zones: list[ZoneStatus]
    people_inside: float  # in the zones inside the venue
    egress_min: float  # their egress time through the gates (Green Guide rates)
    design_egress_min: float  # a full house's
    egress_target_min: float
    gate_rate_per_min: float
    alerts: list[AlertSpec] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["alerts"] = [
            {"id": a.id, "subject": a.subject, "severity": a.severity, "description": a.description}
            for a in self.alerts
        ]
        return out


def assess(
    venue: Venue,
    readings: pa.Table,
    at_us: int,
    *,
    window_s: int = WINDOW_S,
    engine: Engine | None = None,
    previous: dict[str, Ladder] | None = None,
) -> VenueStatus:
    """The venue's state at ``at_us`` from ``readings`` (entity_id, attr, t, value).

    ``previous``: each zone's rung as its active alert has it; a rung is only left once the
    crowd is ``HYSTERESIS`` below its threshold, so a zone hovering at an edge does not raise
    and clear an alert every run."""
    eng = engine or default_engine()
    try:
        eng.register_arrow("readings", with_micros(readings))
        sensors = pa.table(
            {
                "zone_id": [z.id for z in venue.zones for _ in z.sensors],
                "entity_id": [s for z in venue.zones for s in z.sensors],
            }
        )
        eng.register_arrow("sensors", sensors)
        rows = eng.query(_ZONE_SQL.format(lo=at_us - window_s * 1_000_000, hi=at_us)).to_pylist()
    finally:
        if engine is None:
            eng.close()
    found = {r["zone_id"]: r for r in rows}
    zones = [
        _zone_status(z, found.get(z.id), (previous or {}).get(z.id, Ladder.none))
        for z in venue.zones
    ]
    inside = sum(s.people or 0.0 for s, z in zip(zones, venue.zones, strict=True) if z.inside)
    status = VenueStatus(
        venue=venue.id,
        name=venue.name,
        at=iso_from_us(at_us),
        zones=zones,
        people_inside=round(inside, 1),
        egress_min=round(venue.egress_minutes(inside), 2),
        design_egress_min=round(venue.egress_minutes(venue.capacity), 2),
        egress_target_min=venue.egress_target_min,
        gate_rate_per_min=round(venue.gate_rate, 1),
    )
    status.alerts = _alerts(venue, status)
    return status


def _zone_status(zone: Any, row: dict[str, Any] | None, before: Ladder) -> ZoneStatus:
    people = row["people"] if row and row["reporting"] else None
    speed = row["speed"] if row else None
    density = flow = None
    los_: str | None = None
    rung = Ladder.none
    if people is not None:
        density = people / zone.area_m2
        flow = density * speed * 60 if speed is not None else None
        los_ = walkway_los(density, flow) if zone.kind == "walkway" else queue_los(density)
        rung = ladder(los_, density, speed)
        if _ORDER.index(before) > _ORDER.index(rung):  # leaving a rung: only past the deadband
            k, q = density * (1 + HYSTERESIS), flow * (1 + HYSTERESIS) if flow else flow
            held = walkway_los(k, q) if zone.kind == "walkway" else queue_los(k)
            rung = _ORDER[
                max(
                    _ORDER.index(rung),
                    min(_ORDER.index(before), _ORDER.index(ladder(held, k, speed))),
                )
            ]
    return ZoneStatus(
        zone=zone.id,
        name=zone.name,
        kind=zone.kind,
        area_m2=zone.area_m2,
        people=None if people is None else round(people, 1),
        density=None if density is None else round(density, 3),
        speed=None if speed is None else round(speed, 3),
        flow=None if flow is None else round(flow, 1),
        los=los_,
        level=rung.value,
        sensors_reporting=int(row["reporting"]) if row else 0,
        last_observed=iso_from_us(int(row["last_us"])) if row and row["last_us"] else None,
    )


def _alerts(venue: Venue, status: VenueStatus) -> list[AlertSpec]:
    out: list[AlertSpec] = []
    for zs, zone in zip(status.zones, venue.zones, strict=True):
        rung = Ladder(zs.level)
        if rung is Ladder.none:
            continue
        what = "moving" if zone.kind == "walkway" else "standing"
        out.append(
            AlertSpec(
                analysis=ANALYSIS,
                subject=f"{venue.id}.{zone.id}",
                category="security",
                sub_category="overcrowding",
                severity=SEVERITY[rung],
                description=(
                    f"{rung.value}: {zone.name} at Fruin LOS {zs.los} ({zone.kind}, {what}): "
                    f"{zs.density:.2f} people/m², {zs.people:.0f} people in {zone.area_m2:g} m²"
                    + (f", flow {zs.flow:.0f} people/m/min" if zs.flow is not None else "")
                ),
                location=zone.location,
                source=zone.sensors[0] if zone.sensors else None,
                data={
                    "level": rung.value,
                    "los": zs.los,
                    "density": zs.density,
                    "flow": zs.flow,
                    "people": zs.people,
                    "venue": venue.id,
                    "zone": zone.id,
                },
            )
        )
    if status.egress_min > venue.egress_target_min:
        out.append(
            AlertSpec(
                analysis=ANALYSIS,
                subject=f"{venue.id}.egress",
                category="security",
                sub_category="egressTime",
                severity="high",
                description=(
                    f"{venue.name}: the {status.people_inside:.0f} people inside need "
                    f"{status.egress_min:.1f} min to leave through the gates "
                    f"(Green Guide target {venue.egress_target_min:g} min)"
                ),
                data={"egress_min": status.egress_min, "people": status.people_inside},
            )
        )
    return out


def run(
    hub: Hub,
    venue: Venue,
    at_us: int,
    *,
    window_s: int = WINDOW_S,
    tenant: str = "",
    engine: Engine | None = None,
    readings: pa.Table | None = None,
) -> tuple[VenueStatus, Outcome]:
    """Assess the venue from the hub's history (or ``readings``, e.g. from Parquet) at
    ``at_us`` and make the hub's crowd alerts for this venue match."""
    sensors = [s for z in venue.zones for s in z.sensors]
    previous = {
        a["data"]["zone"]: Ladder(a["data"]["level"])
        for a in active_alerts(hub.entities, ANALYSIS, tenant=tenant)
        if isinstance(a.get("data"), dict)
        and a["data"].get("venue") == venue.id
        and a["data"].get("zone")
    }
    if readings is None:
        readings = from_hub(
            hub.temporal,
            "CrowdFlowObserved",
            ATTRS,
            at_us - window_s * 1_000_000,
            at_us + 1,
            ids=sensors,
            tenant=tenant,
        )
    status = assess(venue, readings, at_us, window_s=window_s, engine=engine, previous=previous)
    # A zone whose sensors fell silent keeps its alert as it was: no news is not good news.
    silent = [
        alert_id(ANALYSIS, f"{venue.id}.{z.zone}", "overcrowding")
        for z in status.zones
        if z.people is None
    ]
    outcome = reconcile(
        hub.entities,
        ANALYSIS,
        status.alerts,
        at_us=at_us,
        tenant=tenant,
        prefix=f"{venue.id}.",
        keep=silent,
    )
    return status, outcome
