"""The simulator's city: determinism, fleet sizes, daily/weekly cycles, incidents, events,
and the token-bucket pacer (no network, no database)."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from smartcity.live.simulator.models import HKT, CityModel, parking_occupancy, traffic_demand
from smartcity.live.simulator.places import MAX_DEVICES, SHARES, build_fleet, counts
from smartcity.live.simulator.provision import static_entity, terms
from smartcity.live.simulator.publishers import Credentials, Stats
from smartcity.live.simulator.runner import Schedule, TokenBucket, readings, run

WEDNESDAY = datetime(2026, 11, 25, tzinfo=HKT)  # a weekday
SATURDAY = datetime(2026, 11, 28, tzinfo=HKT)


def at(day: datetime, hour: float) -> int:
    return int((day.timestamp() + hour * 3600) * 1_000_000)


def first_readings(seed: int, n: int = 1500) -> list[tuple[str, dict[str, Any]]]:
    fleet = build_fleet(300, seed)
    schedule = Schedule(fleet, seed, rate=50, speed=1, start_us=at(WEDNESDAY, 7))
    return [(d.device_id, p) for d, p in readings(schedule, CityModel(seed), 0, n)]


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    a, b = first_readings(7), first_readings(7)
    assert a == b
    c = first_readings(8)
    assert c != a
    # Not just the order: the values themselves depend on the seed.
    assert {d: p for d, p in a}.get(c[0][0]) != c[0][1]
    # Every reading carries its time; a device's times never repeat (the ledger's key).
    times = [(d, p["t"]) for d, p in a]
    assert len(set(times)) == len(times)


def test_fleet_sizes_and_kinds() -> None:
    for n in (100, 1234, 20_000):
        fleet = build_fleet(n, 1)
        assert len(fleet) == n
        assert {d.kind for d in fleet} == set(SHARES)
        assert len({d.device_id for d in fleet}) == n  # unique ids, so unique topics
        assert len({d.entity_id for d in fleet}) == n
    assert sum(counts(MAX_DEVICES).values()) == MAX_DEVICES
    with pytest.raises(ValueError):
        counts(99)
    with pytest.raises(ValueError):
        counts(MAX_DEVICES + 1)
    # Real car parks first: a small fleet's car parks are real Transport Department ones.
    parks = [d for d in build_fleet(100, 1) if d.kind == "carpark"]
    assert all(22.1 < d.lat < 22.6 and 113.8 < d.lon < 114.5 for d in parks)
    assert all("-" not in d.entity_id.split("SIM-")[1] for d in parks)


def test_every_name_has_an_iri_and_entities_are_valid() -> None:
    from smartcity.hub.contexts import ContextStore
    from smartcity.hub.entity import parse_entity

    names = terms()
    ctx = ContextStore(None).active(names)
    for device in build_fleet(100, 2):
        assert device.entity_type in names
        for m in device.measures:
            assert m.key in names, m.key
        parse_entity(static_entity(device), ctx)  # the hub accepts it
    assert names["fillingLevel"].startswith("https://smartdatamodels.org/dataModel.Waste")
    assert names["peopleCount"].endswith("dataModel.Transportation/peopleCount")


def test_car_park_cycles() -> None:
    # Office car parks: empty at 3 am, full at 6 pm on a weekday, quiet at the weekend.
    assert parking_occupancy("office", 2, 3) < 0.2
    assert parking_occupancy("office", 2, 18) > 0.85
    assert parking_occupancy("office", 5, 15) < 0.35
    # Malls peak at weekend afternoons; housing estates are full at night.
    assert parking_occupancy("mall", 5, 15) > parking_occupancy("mall", 2, 15) + 0.2
    assert parking_occupancy("residential", 2, 3) > parking_occupancy("residential", 2, 14) + 0.3
    # The same through the devices' readings (noise included).
    model = CityModel(3)
    fleet = build_fleet(5000, 3)
    offices = [d for d in fleet if d.kind == "carpark" and d.params["usage"] == "office"]
    malls = [d for d in fleet if d.kind == "carpark" and d.params["usage"] == "mall"]
    assert offices and malls

    def share(d: Any, t: int) -> float:
        r = model.reading(d, t)
        return float(r["occupiedSpotNumber"]) / d.params["spaces"]

    for d in offices:
        assert share(d, at(WEDNESDAY, 3)) + 0.5 < share(d, at(WEDNESDAY, 18))
    night = statistics.mean(share(d, at(WEDNESDAY, 3)) for d in offices)
    evening = statistics.mean(share(d, at(WEDNESDAY, 18)) for d in offices)
    assert night < 0.25 < 0.8 < evening
    weekday = statistics.mean(share(d, at(WEDNESDAY, 15)) for d in malls)
    weekend = statistics.mean(share(d, at(SATURDAY, 15)) for d in malls)
    assert weekend > weekday + 0.2
    full = [model.reading(d, at(WEDNESDAY, 18)) for d in offices]
    assert all(r["availableSpotNumber"] + r["occupiedSpotNumber"] > 0 for r in full)


def test_traffic_peaks_and_incidents() -> None:
    assert traffic_demand(2, 8.6) > traffic_demand(2, 12) > traffic_demand(2, 3)
    assert traffic_demand(2, 18.3) > traffic_demand(2, 12)
    assert traffic_demand(5, 8.6) < traffic_demand(2, 8.6)  # no rush hour on Saturday
    model = CityModel(4)
    detectors = [d for d in build_fleet(2000, 4) if d.kind == "traffic"]

    def mean(field: str, day: datetime, hour: float) -> float:
        return statistics.mean(float(model.reading(d, at(day, hour))[field]) for d in detectors)

    assert mean("averageVehicleSpeed", WEDNESDAY, 8.6) < mean("averageVehicleSpeed", WEDNESDAY, 3)
    assert mean("averageVehicleSpeed", WEDNESDAY, 18.3) < mean("averageVehicleSpeed", WEDNESDAY, 12)
    assert mean("intensity", WEDNESDAY, 8.6) > 2 * mean("intensity", WEDNESDAY, 3)
    assert mean("averageVehicleSpeed", SATURDAY, 8.6) > mean("averageVehicleSpeed", WEDNESDAY, 8.6)
    # Incidents: over a week each road has a few; while one lasts, speed collapses on its
    # segment and the detectors say "congested".
    week = range(0, 7 * 24 * 60, 10)  # every 10 minutes
    roads = {int(d.params["road"]) for d in detectors}
    found = 0
    for road in sorted(roads):
        starts = {
            hit[1] for m in week if (hit := model.incident(road, WEDNESDAY.timestamp() + m * 60))
        }
        found += len(starts)
        for start in list(starts)[:2]:
            hit = model.incident(road, start + 60)
            assert hit is not None
            hit_at = at(WEDNESDAY, 0) + int((start + 60 - WEDNESDAY.timestamp()) * 1e6)
            on_segment = [
                d
                for d in detectors
                if int(d.params["road"]) == road
                and -0.05 <= hit[0] - float(d.params["fraction"]) <= 0.15
            ]
            for d in on_segment:
                r = model.reading(d, hit_at)
                assert r["averageVehicleSpeed"] < 20 and r["congested"] is True
    assert 10 <= found <= 150, found


def test_air_quality_follows_the_day_and_the_aqhi_moves() -> None:
    model = CityModel(5)
    stations = [d for d in build_fleet(1000, 5) if d.kind == "air"]
    rush = [model.reading(d, at(WEDNESDAY, 8.6)) for d in stations]
    night = [model.reading(d, at(WEDNESDAY, 3)) for d in stations]
    afternoon = [model.reading(d, at(WEDNESDAY, 15)) for d in stations]
    assert statistics.mean(r["no2"] for r in rush) > statistics.mean(r["no2"] for r in night)
    assert statistics.mean(r["o3"] for r in afternoon) > statistics.mean(r["o3"] for r in night)
    week = [model.reading(stations[0], at(WEDNESDAY, h))["aqhi"] for h in range(0, 24 * 14, 3)]
    assert all(1 <= v <= 11 for v in week)
    assert len(set(week)) >= 3  # haze episodes and rush hours move the index
    levels = {model.reading(stations[0], at(WEDNESDAY, h))["airQualityLevel"] for h in range(48)}
    assert levels <= {"Low", "Moderate", "High", "Very High", "Serious"}


def test_bins_fill_up_and_are_emptied() -> None:
    model = CityModel(6)
    bins = [d for d in build_fleet(400, 6) if d.kind == "bin"]
    emptied = 0
    for d in bins:
        series = [model.reading(d, at(WEDNESDAY, h / 4)) for h in range(0, 4 * 72)]
        levels = [r["fillingLevel"] for r in series]
        drops = [i for i in range(1, len(levels)) if levels[i] < levels[i - 1] - 0.2]
        emptied += len(drops)
        for i in drops:  # a big drop is a collection: the emptying date moves on
            assert series[i]["dateLastEmptying"] != series[i - 1]["dateLastEmptying"]
        assert max(levels) > 0.3 and min(levels) < 0.15
    assert emptied >= len(bins)  # at least one collection per bin in three days


def test_crowds_surge_before_and_after_an_event() -> None:
    start = at(SATURDAY, 19.5)  # the Saturday concert fixture, 19:30 for 3 hours
    model = CityModel(7)
    zones = {d.params["role"]: d for d in build_fleet(2000, 7) if d.kind == "crowd"}

    def occ(role: str, t: int) -> float:
        return float(model.reading(zones[role], t)["occupancy"])

    hour = 3_600_000_000
    quiet = occ("station", start - 4 * hour)
    before = max(occ("station", start - k * hour // 6) for k in range(1, 12))
    after = max(occ("station", start + 3 * hour + k * hour // 12) for k in range(1, 15))
    assert quiet < 0.45 and before > quiet + 0.4 and after > 0.85
    assert occ("venue", start + hour) > 0.85  # full during the event
    assert occ("venue", start - 4 * hour) < 0.3
    egress = model.reading(zones["station"], start + 3 * hour + hour // 3)
    assert egress["congested"] is True and egress["averageCrowdSpeed"] < 0.6
    # A run's own first event (the demo's): a surge right after the simulator starts.
    kickoff = CityModel(7, first_event_us=at(WEDNESDAY, 11))
    assert kickoff.reading(zones["venue"], at(WEDNESDAY, 10.9))["occupancy"] > 0.6
    assert CityModel(7).reading(zones["venue"], at(WEDNESDAY, 10.9))["occupancy"] < 0.4


def test_token_bucket_counts() -> None:
    now = [0.0]
    bucket = TokenBucket(100, burst=5, clock=lambda: now[0])
    taken = 0
    for _ in range(1000):  # 10 simulated seconds, asking for as much as possible
        now[0] += 0.01
        taken += bucket.take(1000)
    assert 995 <= taken <= 1000 + 5
    now[0] += 60  # idle for a minute: at most one burst saved up
    assert bucket.take(10_000) == 5


class CountingPublisher:
    description = "memory"

    def __init__(self) -> None:
        self.stats = Stats()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.times: list[float] = []

    def send(self, device: Credentials, payload: dict[str, Any]) -> None:
        self.sent.append((device.device_id, payload))
        self.times.append(time.monotonic())
        self.stats.add(sent=1, acked=1)

    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        pass


def test_run_sends_rate_times_duration_and_never_faster() -> None:
    fleet = build_fleet(100, 9)
    creds = {d.index: Credentials(d.device_id, "s", "t") for d in fleet}
    start_us = at(WEDNESDAY, 12)
    rate = 400.0
    publisher = CountingPublisher()
    final = run(
        Schedule(fleet, 9, rate, 1.0, start_us),
        CityModel(9),
        creds,
        publisher,
        stop=threading.Event(),
        duration_s=1.5,
    )
    assert final.produced == len(publisher.sent) == 600  # rate x duration, exactly
    assert final.finished == "duration reached"
    # The pacer's promise, checked on counts: in any window from the start, at most
    # burst + rate x elapsed readings went out.
    began = publisher.times[0]
    burst = rate * 0.05
    for i, sent_at in enumerate(publisher.times):
        assert i + 1 <= burst + rate * (sent_at - began) + 1
    # Same schedule, same readings, however fast they were sent.
    again = [
        (d.device_id, p)
        for d, p in readings(Schedule(fleet, 9, rate, 1.0, start_us), CityModel(9), 0, 600)
    ]
    assert again == publisher.sent
    # A stop request ends the run promptly.
    stop = threading.Event()
    stop.set()
    assert (
        run(
            Schedule(fleet, 9, rate, 1.0, start_us),
            CityModel(9),
            creds,
            CountingPublisher(),
            stop=stop,
        ).finished
        == "stopped"
    )
