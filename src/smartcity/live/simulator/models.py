"""What each simulated device measures at a given moment: daily and weekly cycles, incidents,
events. Every value is a pure function of (seed, device, simulated time); see noise.py.

Cycles are in Hong Kong time. The shapes are deliberately simple and documented in
docs/simulator.md: office car parks fill on weekday working hours, malls at weekend
afternoons, housing estates at night; traffic has a morning and an evening peak on
weekdays; NO2 follows traffic, O3 the afternoon sun, particulates regional haze episodes of a
few days; bins fill with the day's activity until their collection round; rodents are
nocturnal; crowds around Kai Tak Sports Park surge before and after each event; buses keep
their route's headway and run late in the traffic peaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from smartcity.live.connectors import aqhi
from smartcity.live.connectors.base import iso
from smartcity.live.connectors.transit import duration
from smartcity.live.simulator.noise import signed, smooth, unit
from smartcity.live.simulator.places import SimDevice, city

HKT = timezone(timedelta(hours=8), "HKT")
HOUR = 3600.0
DAY = 86400.0
# Chance that a road has an incident in a given 2-hour window.
INCIDENT_P = 0.05
INCIDENT_WINDOW = 2 * HOUR
INGRESS = 2 * HOUR  # crowds build up this long before an event
EGRESS = 1.25 * HOUR  # and disperse over this long after it
EVENT_HOURS = 2.0  # the extra event's length (the first one of a run, see first_event)
# Scenarios a run can start with (``smartcity simulate --scenario``): "egress" starts as an
# event at Kai Tak ends, so the run shows a full stadium emptying (the stations, footbridges
# and approaches surge, then calm down).
SCENARIOS = ("egress",)


def first_event(start_us: int, scenario: str | None = None) -> int:
    """When a run's extra event at Kai Tak starts: 30 minutes after the run starts (so a fresh
    run shows the crowd building up), or, for the egress scenario, so that it ends 5 minutes
    after the run starts."""
    if scenario is None:
        return start_us + 30 * 60 * 1_000_000
    if scenario == "egress":
        return start_us - int((EVENT_HOURS * HOUR - 5 * 60) * 1_000_000)
    raise ValueError(f"no scenario {scenario!r}; one of: {', '.join(SCENARIOS)}")


def plateau(h: float, start: float, end: float, ramp: float) -> float:
    """1 between start and end (local hours), with smooth ramps of ``ramp`` hours each side."""
    if h < start - ramp or h > end + ramp:
        return 0.0
    if h < start:
        return 0.5 - 0.5 * math.cos(math.pi * (h - start + ramp) / ramp)
    if h > end:
        return 0.5 + 0.5 * math.cos(math.pi * (h - end) / ramp)
    return 1.0


def bump(h: float, centre: float, width: float) -> float:
    return math.exp(-(((h - centre) / width) ** 2))


def clip(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


@dataclass(frozen=True)
class Moment:
    t_s: float  # epoch seconds
    hour: float  # local (HKT) hour of day, fractional
    weekday: int  # 0 = Monday
    day_of_year: int

    @classmethod
    def at(cls, t_us: int) -> Moment:
        local = datetime.fromtimestamp(t_us / 1e6, HKT)
        hour = local.hour + local.minute / 60 + local.second / 3600
        return cls(t_us / 1e6, hour, local.weekday(), local.timetuple().tm_yday)


# Water DMAs: leaks run on a 28-day cycle counted from the epoch (UTC days). A "burst" DMA's
# main bursts on day 14 of each cycle (at a seeded hour) and is repaired on day 25; a
# "rising" DMA's leakage grows steadily from day 7 until the repair on day 25.
LEAK_CYCLE_DAYS = 28
BURST_DAY = 14
RISE_DAY = 7
REPAIR_DAY = 25


# -- cycles (shared with the tests, which check their shape) --------------------------------
def water_demand(hour: float) -> float:
    """Customers' use relative to the day's mean: lowest around 03:00 (0.15), peaks at
    breakfast and in the evening."""
    return (
        0.15
        + 1.1 * plateau(hour, 6.5, 23, 1.5)
        + 0.45 * bump(hour, 7.5, 1)
        + 0.3 * bump(hour, 20, 1.5)
    )


def parking_occupancy(usage: str, weekday: int, hour: float) -> float:
    """Expected share of spaces taken, by car park usage, day of week and hour."""
    weekend = weekday >= 5
    if usage == "office":
        if weekend:
            return 0.12 + 0.18 * bump(hour, 13, 3)
        return 0.1 + 0.82 * plateau(hour, 8.5, 19, 1.5)
    if usage == "mall":
        if weekend:
            return 0.2 + 0.75 * plateau(hour, 11.5, 21, 2)
        return 0.12 + 0.45 * plateau(hour, 11.5, 21.5, 2) + 0.15 * bump(hour, 19.5, 1.5)
    if usage == "residential":
        away = plateau(hour, 8.5, 18.5, 1.5)  # residents drive out to work
        return (0.92 - 0.4 * away) if not weekend else (0.9 - 0.25 * away)
    if weekend:
        return 0.2 + 0.55 * plateau(hour, 10, 21, 2)
    return 0.15 + 0.5 * plateau(hour, 8, 20, 1.5) + 0.12 * bump(hour, 18.5, 1.5)


def traffic_demand(weekday: int, hour: float, bound: str = "A") -> float:
    """0..1: how loaded a road is; weekdays have a morning and an evening peak."""
    if weekday < 5:
        morning, evening = (0.55, 0.42) if bound == "A" else (0.42, 0.55)
        base = 0.12 + 0.33 * plateau(hour, 7, 22, 1.5)
        return min(1.0, base + morning * bump(hour, 8.6, 0.9) + evening * bump(hour, 18.3, 1.1))
    return min(1.0, 0.1 + 0.4 * plateau(hour, 9.5, 22, 2) + 0.12 * bump(hour, 16, 2.5))


def _seasonal_temperature(day_of_year: int) -> float:
    return 23.5 - 6.5 * math.cos(2 * math.pi * (day_of_year - 20) / 365)


class CityModel:
    """Readings of the simulated city. ``first_event_us``: when the first event at Kai Tak
    starts besides the weekly fixtures (None: fixtures only), so a fresh run shows a surge."""

    def __init__(self, seed: int, *, first_event_us: int | None = None) -> None:
        self.seed = seed
        self.first_event_s = first_event_us / 1e6 if first_event_us is not None else None
        self.fixtures = city()["kai_tak"]["weekly_events"]

    def reading(self, device: SimDevice, t_us: int) -> dict[str, Any]:
        m = Moment.at(t_us)
        return _KINDS[device.kind](self, device, m)

    # -- car parks -------------------------------------------------------------------------
    def carpark(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        p = d.params
        occ = parking_occupancy(p["usage"], m.weekday, m.hour)
        occ += 0.05 * signed(self.seed, d.index, 1) + 0.06 * smooth(m.t_s, HOUR, self.seed, d.index)
        occ = clip(occ, 0.02, 1.0)
        spaces = int(p["spaces"])
        occupied = min(spaces, round(spaces * occ))
        available = spaces - occupied
        return {
            "availableSpotNumber": available,
            "occupiedSpotNumber": occupied,
            "status": "full" if available == 0 else "spacesAvailable",
        }

    # -- traffic ---------------------------------------------------------------------------
    def incident(self, road: int, t_s: float) -> tuple[float, float] | None:
        """(position on the road 0..1, start time) of an incident in progress, if any."""
        w = math.floor(t_s / INCIDENT_WINDOW)
        for window in (w, w - 1):  # one that started in the previous window may still last
            if unit(self.seed, 90, road, window) >= INCIDENT_P:
                continue
            start = window * INCIDENT_WINDOW + unit(self.seed, 91, road, window) * 0.75 * (
                INCIDENT_WINDOW
            )
            duration = 20 * 60 + unit(self.seed, 92, road, window) * 40 * 60
            if start <= t_s < start + duration:
                return unit(self.seed, 93, road, window), start
        return None

    def traffic(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        p = d.params
        limit = float(p["limit"])
        demand = traffic_demand(m.weekday, m.hour, p["bound"])
        demand = clip(demand + 0.05 * smooth(m.t_s, 900, self.seed, d.index), 0.0, 1.0)
        speed = limit * (1.08 - 0.7 * demand**2) + 3 * signed(self.seed, d.index, int(m.t_s))
        intensity = 36 * demand * (0.85 + 0.3 * unit(self.seed, d.index, int(m.t_s), 1))
        occupancy = 0.03 + 0.4 * demand**2
        hit = self.incident(int(p["road"]), m.t_s)
        # The incident blocks its segment and backs traffic up behind it (15% of the road).
        if hit is not None and -0.05 <= hit[0] - float(p["fraction"]) <= 0.15:
            speed = 6 + 10 * unit(self.seed, d.index, int(hit[1]))
            intensity *= 0.35
            occupancy = 0.55 + 0.25 * unit(self.seed, d.index, int(hit[1]), 2)
        speed = clip(speed, 3.0, limit * 1.15)
        return {
            "averageVehicleSpeed": round(speed, 1),
            "intensity": round(intensity),
            "occupancy": round(clip(occupancy, 0.0, 1.0), 3),
            "congested": speed < 0.4 * limit,
        }

    # -- air quality -------------------------------------------------------------------------
    def pollutants(self, d: SimDevice, t_s: float) -> dict[str, float]:
        m = Moment.at(int(t_s * 1e6))
        roadside = d.params.get("site") == "roadside"
        traffic = traffic_demand(m.weekday, m.hour)
        # Regional haze: multi-day episodes that lift particulates everywhere at once.
        haze = 1.0 + 1.1 * max(0.0, smooth(t_s, 2.5 * DAY, self.seed, 77))
        local = 1.0 + 0.15 * signed(self.seed, d.index, 3)
        sun = max(0.0, math.sin(math.pi * (m.hour - 7) / 11)) if 7 <= m.hour <= 18 else 0.0
        no2 = (70 if roadside else 32) * (0.55 + 0.8 * traffic) * local
        o3 = (15 if roadside else 35) + 75 * sun * (1.15 - 0.5 * traffic)
        so2 = 4 + 3 * haze
        pm25 = 13 * haze * (0.85 + 0.35 * traffic) * local
        noise = 1 + 0.08 * smooth(t_s, HOUR, self.seed, d.index, 4)
        return {
            "no2": no2 * noise,
            "o3": o3 * noise,
            "so2": so2,
            "co": 450 + 450 * traffic,
            "pm10": (pm25 * 1.45 + 6) * noise,
            "pm25": pm25 * noise,
        }

    def air(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        now = self.pollutants(d, m.t_s)
        # The AQHI as the platform computes it (connectors/aqhi.py): 3-hour moving averages.
        hours = [now, self.pollutants(d, m.t_s - HOUR), self.pollutants(d, m.t_s - 2 * HOUR)]
        averages: dict[str, float | None] = {
            p: sum(h[p] for h in hours) / 3 for p in aqhi.POLLUTANTS
        }
        day = datetime.fromtimestamp(m.t_s, UTC).astimezone(HKT).date()
        result = aqhi.compute(averages, aqhi.parameters_for(day))
        out: dict[str, Any] = {k: round(v, 1) for k, v in now.items()}
        if result is not None:
            out["aqhi"] = result.aqhi
            out["airQualityLevel"] = result.health_risk
            out["addedHealthRisk"] = round(result.total, 2)
        return out

    # -- smart lampposts -------------------------------------------------------------------
    def lamppost(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        mean = _seasonal_temperature(m.day_of_year)
        diurnal = 3.2 * math.cos(2 * math.pi * (m.hour - 14.5) / 24)
        front = 1.8 * smooth(m.t_s, 0.75 * DAY, self.seed, 5)
        temp = mean + diurnal + front + 0.7 * signed(self.seed, d.index, 6)
        wet_season = 0.5 - 0.5 * math.cos(2 * math.pi * (m.day_of_year - 15) / 365)
        rh = 0.68 + 0.12 * wet_season - 0.03 * diurnal + 0.08 * smooth(m.t_s, DAY, self.seed, 8)
        wind = 2.6 + 1.4 * bump(m.hour, 15, 4) + 2.0 * smooth(m.t_s, 4 * HOUR, self.seed, 9)
        wind += 0.6 * unit(self.seed, d.index, int(m.t_s))
        prevailing = 80 if wet_season < 0.5 else 210  # NE monsoon in winter, SW in summer
        direction = prevailing + 50 * smooth(m.t_s, 6 * HOUR, self.seed, 10)
        return {
            "temperature": round(temp, 1),
            "relativeHumidity": round(clip(rh, 0.3, 0.99), 2),
            "windSpeed": round(max(0.0, wind), 1),
            "windDirection": round(direction % 360),
        }

    # -- recycling bins --------------------------------------------------------------------
    def bin(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        every = 1 if unit(self.seed, d.index, 11) < 0.7 else 2  # days between collections
        phase = int(unit(self.seed, d.index, 12) * every)
        collect_h = 6.0 + 4.0 * unit(self.seed, d.index, 13)
        local_s = m.t_s + 8 * HOUR
        today = math.floor(local_s / DAY)
        last = None
        for day in range(today, today - 4, -1):
            at = day * DAY - 8 * HOUR + collect_h * HOUR
            if day % every == phase and at <= m.t_s:
                last = at
                break
        assert last is not None
        rate = 0.035 * float(d.params["activity"]) * (0.6 + 0.8 * unit(self.seed, d.index, 14))
        filled, t = 0.0, last
        while t < m.t_s:  # the day's activity since the collection round, hour by hour
            step = min(HOUR, m.t_s - t)
            h = ((t + 8 * HOUR) % DAY) / HOUR
            filled += rate * (step / HOUR) * (0.25 + plateau(h, 8, 21, 2))
            t += step
        filled += 0.015 * signed(self.seed, d.index, int(m.t_s))
        emptied = datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"fillingLevel": round(clip(filled, 0.0, 1.0), 3), "dateLastEmptying": emptied}

    # -- rodent sensors ----------------------------------------------------------------------
    def rodent(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        night = (0.5 + 0.5 * math.cos(2 * math.pi * (m.hour - 1.5) / 24)) ** 2
        hotspot = 3.0 if unit(self.seed, d.index, 15) < 0.2 else 1.0
        expected = 4.0 * float(d.params["activity"]) * hotspot * (0.05 + night)
        count = int(expected * (0.4 + 1.2 * unit(self.seed, d.index, int(m.t_s))))
        level = "none" if count == 0 else "low" if count < 3 else "medium" if count < 8 else "high"
        return {"detections": count, "activityLevel": level}

    # -- public toilets ----------------------------------------------------------------------
    def _visitors(self, activity: float, hour: float) -> float:
        use = 0.08 + 0.92 * plateau(hour, 7, 22, 1.5)
        use += 0.4 * bump(hour, 12.5, 1.2) + 0.4 * bump(hour, 18.5, 1.5)
        return 25 * activity * use  # per 15 minutes

    def toilet(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        activity = float(d.params["activity"])
        cubicles = int(d.params["cubicles"])
        visitors = self._visitors(activity, m.hour) * (0.7 + 0.6 * unit(self.seed, d.index, 16))
        # Cleaned at 07:00, 13:00 and 19:00: odour builds up with the visits since.
        since = min((m.hour - c) % 24 for c in (7, 13, 19))
        used = sum(
            self._visitors(activity, (m.hour - h) % 24) * 4 for h in range(int(since) + 1)
        ) * min(1.0, since + 0.25)
        ammonia = 0.4 + 0.006 * used + 0.2 * unit(self.seed, d.index, int(m.t_s))
        share = visitors / (25 * activity * 1.4)
        occupied = min(
            cubicles,
            round(cubicles * clip(share, 0, 1) * 0.8 + unit(self.seed, d.index, int(m.t_s), 17)),
        )
        return {
            "visitorCount": round(visitors),
            "occupiedCubicles": occupied,
            "ammoniaLevel": round(ammonia, 2),
            "cleaningRequired": ammonia > 5.0,
        }

    # -- crowds at Kai Tak -------------------------------------------------------------------
    def events(self, t_s: float) -> list[tuple[float, float]]:
        """(start, end) epoch seconds of the events whose crowds matter at t_s."""
        out: list[tuple[float, float]] = []
        local = datetime.fromtimestamp(t_s, HKT)
        for back in (0, 1):
            day = (local - timedelta(days=back)).date()
            for fixture in self.fixtures:
                if day.weekday() != fixture["weekday"]:
                    continue
                hh, mm = (int(x) for x in fixture["start"].split(":"))
                start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=HKT).timestamp()
                out.append((start, start + float(fixture["hours"]) * HOUR))
        if self.first_event_s is not None:
            out.append((self.first_event_s, self.first_event_s + EVENT_HOURS * HOUR))
        return [(s, e) for s, e in out if s - INGRESS <= t_s < e + EGRESS]

    def crowd_level(self, role: str, hour: float, t_s: float) -> float:
        """Expected occupancy (0..1) of a zone of this role."""
        base = 0.04 + 0.12 * plateau(hour, 8, 22, 2)
        if role in ("station", "transport"):
            base += 0.18 * bump(hour, 8.5, 1) + 0.18 * bump(hour, 18.5, 1.2)
        surge = 0.0
        for start, end in self.events(t_s):
            if t_s < start:  # arriving: venue fills steadily, stations peak ~40 min before
                x = (t_s - (start - INGRESS)) / INGRESS
                level = {
                    "venue": 0.85 * x**1.5,
                    "station": 0.8 * math.sin(math.pi * min(1.0, x * 0.85)),
                    "transport": 0.7 * math.sin(math.pi * min(1.0, x * 0.85)),
                    "approach": 0.75 * math.sin(math.pi * x) ** 0.7,
                    "park": 0.3 * x,
                }.get(role, 0.2)
            elif t_s < end:  # during the event: the venue is full, the streets quiet
                level = {"venue": 0.9, "park": 0.2}.get(role, 0.08)
            else:  # leaving: everyone at once, the stations overflow
                y = (t_s - end) / EGRESS
                level = {
                    "venue": 0.9 * (1 - y) ** 2,
                    "station": 0.95 * math.sin(math.pi * min(1.0, y * 1.4)),
                    "transport": 0.85 * math.sin(math.pi * min(1.0, y * 1.4)),
                    "approach": 0.9 * math.sin(math.pi * min(1.0, y * 1.8)),
                    "park": 0.3 * (1 - y),
                }.get(role, 0.2)
            surge = max(surge, level)
        return base + surge

    def crowd(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        level = self.crowd_level(str(d.params["role"]), m.hour, m.t_s)
        occ = clip(level + 0.03 * smooth(m.t_s, 300, self.seed, d.index), 0.0, 1.0)
        capacity = int(d.params["capacity"])
        return {
            "peopleCount": round(occ * capacity),
            "occupancy": round(occ, 3),
            "congested": occ > 0.75,
            "averageCrowdSpeed": round(1.35 * (1 - 0.85 * occ**1.5), 2),
        }

    # -- water district metered areas --------------------------------------------------------
    def water_leak(self, d: SimDevice, t_s: float) -> float:
        """m³/h of leakage on top of the background: the DMA's burst or rising leak, if any."""
        role = d.params["leak"]
        if role == "clean":
            return 0.0
        cycle, into = divmod(t_s / DAY, LEAK_CYCLE_DAYS)
        background = self.water_background(d)
        if role == "burst":
            onset = BURST_DAY + unit(self.seed, d.index, 72, int(cycle))
            size = background * (0.6 + 0.4 * unit(self.seed, d.index, 73, int(cycle)))
            return size if onset <= into < REPAIR_DAY else 0.0
        # rising: grows to about the background again by the repair
        if RISE_DAY <= into < REPAIR_DAY:
            return background * (into - RISE_DAY) / (REPAIR_DAY - RISE_DAY)
        return 0.0

    def water_background(self, d: SimDevice) -> float:
        """m³/h of background leakage: 3 to 6 litres an hour per connection."""
        return int(d.params["connections"]) * (3 + 3 * unit(self.seed, d.index, 74)) / 1000

    def water(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        connections = int(d.params["connections"])
        mean_use = connections * 0.025  # m³/h: about 0.6 m³ a day per connection
        use = mean_use * water_demand(m.hour)
        use *= (
            1
            + 0.05 * smooth(m.t_s, 1800, self.seed, d.index)
            + 0.02 * signed(self.seed, d.index, int(m.t_s))
        )
        night = math.floor((m.t_s + 8 * HOUR) / DAY)  # leakage moves with the night's pressure
        leakage = self.water_background(d) * (1 + 0.03 * signed(self.seed, d.index, 75, night))
        leakage += self.water_leak(d, m.t_s)
        inflow = (use + leakage) * (1 + 0.005 * signed(self.seed, d.index, int(m.t_s), 76))
        metered = use * (1 + 0.005 * signed(self.seed, d.index, int(m.t_s), 77))
        return {"inflow": round(inflow, 2), "customerConsumption": round(metered, 2)}

    # -- bus stop panels -----------------------------------------------------------------------
    def bus(self, d: SimDevice, m: Moment) -> dict[str, Any]:
        """The next bus at the stop: buses pass every headway (a stop's own phase), each up
        to 4 minutes late in proportion to the traffic."""
        headway = float(d.params["headway_min"]) * 60
        phase = unit(self.seed, d.index, 61) * headway
        lateness = 240 * traffic_demand(m.weekday, m.hour)
        first = math.floor((m.t_s - phase - lateness) / headway)
        for k in range(first, first + 3):
            eta = phase + k * headway + lateness * unit(self.seed, d.index, 62, k)
            if eta >= m.t_s:
                break
        at = datetime.fromtimestamp(eta, UTC)
        return {"remainingTime": duration(eta - m.t_s), "estimatedArrivalTime": iso(at)}


_KINDS = {
    "carpark": CityModel.carpark,
    "traffic": CityModel.traffic,
    "air": CityModel.air,
    "lamppost": CityModel.lamppost,
    "bin": CityModel.bin,
    "rodent": CityModel.rodent,
    "toilet": CityModel.toilet,
    "crowd": CityModel.crowd,
    "bus": CityModel.bus,
    "water": CityModel.water,
}
