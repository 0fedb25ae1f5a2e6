"""Leakage in district metered areas (DMAs) from their inlet meters and customers' meters.

Minimum night flow (MNF): at night nearly nobody uses water, so what still flows into a DMA
is mostly leakage. Per night (02:00-04:00 Hong Kong time, the usual MNF window: UK Water
Industry Research, *Managing Leakage* report E, 1994; IWA Water Loss Task Force) the inflow is
averaged in 15-minute periods and the lowest period is the MNF; the legitimate night use is the
customers' metered consumption in that same period (their smart meters, summed by the DMA's
sensor), and leakage = MNF - legitimate night use. The nightly leakage then goes through
``detect.examine`` (bursts by CUSUM, rising leaks by Theil-Sen/Mann-Kendall), and the DMAs are
ranked by their current leakage. The night figures are SQL (any engine); the detection is
numpy. Hong Kong keeps no daylight saving time, so local time is UTC + 8 h throughout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from smartcity.analytics.alerts import AlertSpec, Outcome, active_alerts, reconcile
from smartcity.analytics.engine import Engine, default_engine
from smartcity.analytics.readings import from_hub, with_micros
from smartcity.analytics.water.detect import Finding, examine
from smartcity.hub.querying import EntityQuery
from smartcity.hub.runtime import Hub
from smartcity.hub.temporal.service import TemporalService
from smartcity.hub.timeutil import iso_from_us

ANALYSIS = "water"
ENTITY_TYPE = "WaterConsumptionObserved"
ATTRS = ("inflow", "customerConsumption")
DAY_US = 86_400_000_000
HKT_US = 8 * 3_600_000_000
NIGHT_FROM_H, NIGHT_TO_H = 2, 4
BIN_US = 15 * 60_000_000
MIN_BINS = 4  # a night with fewer 15-minute periods of inflow (of 8) is left out
NIGHTS = 21

_NIGHTS_SQL = """
WITH r AS (
    SELECT entity_id, attr, value, t_us + {hkt} AS local_us FROM readings
    WHERE attr IN ('inflow', 'customerConsumption')
), night AS (
    SELECT entity_id, attr, value, local_us // {day} AS day, local_us // {bin} AS bin
    FROM r
    WHERE local_us % {day} >= {lo} AND local_us % {day} < {hi}
), bins AS (
    SELECT entity_id, day, bin,
           avg(value) FILTER (WHERE attr = 'inflow') AS inflow,
           avg(value) FILTER (WHERE attr = 'customerConsumption') AS customer
    FROM night GROUP BY entity_id, day, bin
),
-- the lowest period of each night (the earlier one on a tie: the same answer every run)
ranked AS (
    SELECT entity_id, day, inflow, customer,
           row_number() OVER (PARTITION BY entity_id, day ORDER BY inflow, bin) AS n,
           count(*) OVER (PARTITION BY entity_id, day) AS periods
    FROM bins WHERE inflow IS NOT NULL
)
SELECT entity_id, day, inflow AS mnf, customer AS legitimate, periods
FROM ranked
WHERE n = 1 AND periods >= {min_bins}
ORDER BY entity_id, day
"""


@dataclass
class Night:
    night: str  # the date the night ends on (02:00-04:00 of that day)
    mnf: float  # m³/h
    legitimate: float | None  # m³/h; None: no customer meters reported
    leakage: float  # m³/h


@dataclass
class DmaStatus:
    dma: str
    rank: int
    leakage: float  # m³/h, the latest nights' median
    finding: str  # none, burst, rising
    baseline: float
    sigma: float
    since: str | None  # the night the burst or rising leak started (or was found)
    step: float | None
    slope_per_night: float | None
    trend_z: float | None
    nights: list[Night] = field(default_factory=list)


@dataclass
class WaterStatus:
    at: str
    nights: int
    dmas: list[DmaStatus]
    skipped: dict[str, str]  # DMA -> why it was not examined
    alerts: list[AlertSpec] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["alerts"] = [
            {"id": a.id, "subject": a.subject, "severity": a.severity, "description": a.description}
            for a in self.alerts
        ]
        return out


def night_figures(readings: pa.Table, *, engine: Engine | None = None) -> dict[str, list[Night]]:
    """Each DMA's nights (oldest first) from ``readings`` (entity_id, attr, t, value)."""
    eng = engine or default_engine()
    try:
        eng.register_arrow("readings", with_micros(readings))
        sql = _NIGHTS_SQL.format(
            hkt=HKT_US,
            day=DAY_US,
            bin=BIN_US,
            lo=NIGHT_FROM_H * 3_600_000_000,
            hi=NIGHT_TO_H * 3_600_000_000,
            min_bins=MIN_BINS,
        )
        rows = eng.query(sql).to_pylist()
    finally:
        if engine is None:
            eng.close()
    out: dict[str, list[Night]] = {}
    for r in rows:
        legit = r["legitimate"]
        out.setdefault(r["entity_id"], []).append(
            Night(
                night=(date(1970, 1, 1) + timedelta(days=int(r["day"]))).isoformat(),
                mnf=round(r["mnf"], 3),
                legitimate=None if legit is None else round(legit, 3),
                leakage=round(max(r["mnf"] - (legit or 0.0), 0.0), 3),
            )
        )
    return out


def assess(
    readings: pa.Table,
    at_us: int,
    *,
    engine: Engine | None = None,
    locations: dict[str, dict[str, Any]] | None = None,
) -> WaterStatus:
    by_dma = night_figures(readings, engine=engine)
    statuses: list[DmaStatus] = []
    skipped: dict[str, str] = {}
    for dma, nights in by_dma.items():
        try:
            f = examine(np.array([n.leakage for n in nights]))
        except ValueError as exc:
            skipped[dma] = str(exc)
            continue
        statuses.append(_status(dma, nights, f))
    statuses.sort(key=lambda s: -s.leakage)
    for i, s in enumerate(statuses, 1):
        s.rank = i
    status = WaterStatus(
        at=iso_from_us(at_us),
        nights=max((len(n) for n in by_dma.values()), default=0),
        dmas=statuses,
        skipped=skipped,
    )
    status.alerts = [
        _alert(s, (locations or {}).get(s.dma)) for s in statuses if s.finding != "none"
    ]
    return status


def _status(dma: str, nights: list[Night], f: Finding) -> DmaStatus:
    at = f.change_night if f.change_night is not None else f.alarm_night
    return DmaStatus(
        dma=dma,
        rank=0,
        leakage=f.current,
        finding=f.kind,
        baseline=f.baseline,
        sigma=f.sigma,
        since=nights[at].night if at is not None and f.kind != "none" else None,
        step=f.step,
        slope_per_night=f.slope,
        trend_z=f.trend_z,
        nights=nights,
    )


def _alert(s: DmaStatus, location: dict[str, Any] | None) -> AlertSpec:
    if s.finding == "burst":
        text = (
            f"burst: night leakage up {s.step:.1f} m³/h since the night of {s.since} "
            f"(now {s.leakage:.1f} m³/h against a baseline of {s.baseline:.1f})"
        )
    else:
        text = (
            f"rising leakage: {s.slope_per_night:+.2f} m³/h a night (now {s.leakage:.1f} "
            f"m³/h against a baseline of {s.baseline:.1f})"
        )
    return AlertSpec(
        analysis=ANALYSIS,
        subject=s.dma.rsplit(":", 1)[-1],
        category="environment",
        sub_category="waterBurst" if s.finding == "burst" else "waterLeakage",
        severity="high" if s.finding == "burst" else "medium",
        description=f"DMA {s.dma.rsplit(':', 1)[-1]}: {text}",
        location=location,
        source=s.dma,
        data={"leakage": s.leakage, "baseline": s.baseline, "rank": s.rank, "since": s.since},
    )


def night_windows(start_us: int, end_us: int) -> list[tuple[int, int]]:
    """The MNF windows (02:00-04:00 Hong Kong time) of the nights in [start, end)."""
    day = (start_us + HKT_US) // DAY_US
    out: list[tuple[int, int]] = []
    while True:
        lo = day * DAY_US - HKT_US + NIGHT_FROM_H * 3_600_000_000
        if lo >= end_us:
            return out
        out.append((lo, lo + (NIGHT_TO_H - NIGHT_FROM_H) * 3_600_000_000))
        day += 1


def night_readings(
    temporal: TemporalService, at_us: int, nights: int, *, tenant: str = ""
) -> pa.Table:
    """The DMAs' readings of the last ``nights`` nights' MNF windows, from the hub's history
    (only the windows are read: a twelfth of the readings)."""
    start = window_start(at_us, nights)
    windows = night_windows(start, at_us)
    return from_hub(temporal, ENTITY_TYPE, ATTRS, start, at_us, tenant=tenant, windows=windows)


def window_start(at_us: int, nights: int) -> int:
    """Local midnight ``nights`` days before ``at_us``'s day: the range the last nights are in."""
    return (at_us + HKT_US) // DAY_US * DAY_US - HKT_US - nights * DAY_US


def within(readings: pa.Table, start_us: int, end_us: int) -> pa.Table:
    """The readings observed in [start, end)."""
    import pyarrow.compute as pc

    t = readings.column("t").cast(pa.int64())
    return readings.filter(pc.and_(pc.greater_equal(t, start_us), pc.less(t, end_us)))


def run(
    hub: Hub,
    at_us: int,
    *,
    nights: int = NIGHTS,
    tenant: str = "",
    engine: Engine | None = None,
    readings: pa.Table | None = None,
) -> tuple[WaterStatus, Outcome]:
    """Examine the last ``nights`` nights of every DMA in the hub's history (or in
    ``readings``, e.g. from Parquet) and make the hub's water alerts match."""
    start = window_start(at_us, nights)
    if readings is None:
        readings = night_readings(hub.temporal, at_us, nights, tenant=tenant)
    else:
        readings = within(readings, start, at_us)
    ids = sorted(set(readings.column("entity_id").to_pylist()))
    docs, _ = (
        hub.entities.find(tenant, EntityQuery(ids=ids), limit=max(len(ids), 1))
        if ids
        else ([], None)
    )
    loc = "https://uri.etsi.org/ngsi-ld/location"
    locations = {d["id"]: d["attrs"][loc][0]["value"] for d in docs if loc in d["attrs"]}
    status = assess(readings, at_us, engine=engine, locations=locations)
    # A DMA not examined this time (its meters fell silent) keeps its alert as it was.
    examined = {s.dma for s in status.dmas}
    silent = [
        a["id"]
        for a in active_alerts(hub.entities, ANALYSIS, tenant=tenant)
        if a.get("alertSource") not in examined
    ]
    outcome = reconcile(
        hub.entities, ANALYSIS, status.alerts, at_us=at_us, tenant=tenant, keep=silent
    )
    return status, outcome
