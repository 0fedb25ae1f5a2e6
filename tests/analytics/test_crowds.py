"""Crowds: Fruin level of service, the alert ladder, Green Guide egress times, and the
simulator's egress scenario raising and then clearing Alert entities in a real hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from smartcity.analytics.alerts import active_alerts, alerts
from smartcity.analytics.crowds import analysis
from smartcity.analytics.crowds.los import Ladder, ladder, queue_los, walkway_los
from smartcity.analytics.crowds.venue import load_venue, parse_venue
from smartcity.analytics.engine import Engine
from smartcity.analytics.readings import SCHEMA
from smartcity.config import Settings
from smartcity.hub.runtime import Hub, build_hub
from smartcity.live.simulator.backfill import backfill
from smartcity.live.simulator.models import HKT, CityModel, first_event
from smartcity.live.simulator.places import build_fleet
from smartcity.storage.engine import Database

MIN = 60_000_000


@pytest.fixture
def hub(db: Database) -> Iterator[Hub]:
    h = build_hub(Settings(database_url=db.url, auth_required=False), db)
    yield h
    h.close()


@pytest.mark.parametrize(
    ("density", "flow", "los"),
    [
        (0.0, None, "A"),
        (1 / 3.25, None, "A"),  # exactly 3.25 m²/person (35 ft²)
        (1 / 3.2, None, "B"),
        (1 / 2.32, None, "B"),
        (1 / 2.3, None, "C"),
        (1 / 1.39, None, "C"),
        (1 / 1.38, None, "D"),
        (1 / 0.93, None, "D"),
        (1 / 0.92, None, "E"),
        (1 / 0.46, None, "E"),
        (1 / 0.45, None, "F"),
        (0.2, 23, "A"),  # flow at the edge of A
        (0.2, 24, "B"),
        (0.2, 66, "D"),
        (0.2, 82, "E"),  # the Green Guide's level rate is Fruin's E/F boundary
        (0.2, 83, "F"),
        (1 / 0.5, 30, "E"),  # the worse of density and flow
    ],
)
def test_walkway_los_follows_fruin(density: float, flow: float | None, los: str) -> None:
    assert walkway_los(density, flow) == los


@pytest.mark.parametrize(
    ("space", "los"),
    [
        (1.21, "A"),
        (1.2, "B"),
        (0.93, "B"),
        (0.92, "C"),
        (0.65, "C"),
        (0.64, "D"),
        (0.28, "D"),
        (0.27, "E"),
        (0.19, "E"),
        (0.18, "F"),
    ],
)
def test_queueing_los_follows_fruin(space: float, los: str) -> None:
    assert queue_los(1 / space) == los


def test_alert_ladder() -> None:
    assert ladder("C", 0.6, 1.2) is Ladder.none
    assert ladder("D", 1.0, 1.0) is Ladder.advisory
    assert ladder("E", 1.5, 0.7) is Ladder.warning
    assert ladder("F", 2.5, 0.4) is Ladder.critical
    # A holding area at queueing LOS E (4.5 people/m²): critical once that crowd moves...
    assert ladder("E", 4.5, 0.3) is Ladder.critical
    assert ladder("E", 4.0, None) is Ladder.critical  # speed not measured: the safe side
    # ...a warning while it stands still (a queue, not a crowd surging)
    assert ladder("E", 4.5, 0.0) is Ladder.warning
    with pytest.raises(ValueError, match="negative"):
        walkway_los(-1)


def test_egress_time_against_the_green_guide() -> None:
    venue = load_venue()  # Kai Tak Sports Park (illustrative figures)
    # 6 × 8 m + 4 × 6 m level gates at 82 people/m/min, 2 × 7.5 m stairs at 66.
    rate = (6 * 8 + 4 * 6) * 82 + 2 * 7.5 * 66
    assert rate == 6894
    assert venue.gate_rate == pytest.approx(rate)
    assert venue.egress_minutes(50_000) == pytest.approx(50_000 / 6894)  # 7.25 min ≤ 8
    assert venue.egress_minutes(50_000) < venue.egress_target_min
    # A venue with half the gate width misses the 8 minutes with a full house.
    data = json.loads(
        (Path(analysis.__file__).parent / "venues" / "kai-tak-sports-park.json").read_text()
    )
    data["gates"] = data["gates"][:6]  # 6 × 8 m level: 3,936 people/min
    narrow = parse_venue(data)
    assert narrow.egress_minutes(50_000) == pytest.approx(50_000 / 3936)  # 12.7 min


def test_bad_venues_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no venue 'wembley'"):
        load_venue("wembley")
    data = json.loads(
        (Path(analysis.__file__).parent / "venues" / "kai-tak-sports-park.json").read_text()
    )
    data["zones"][0]["kind"] = "corridor"
    bad = tmp_path / "venue.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="kind must be one of walkway, holding"):
        load_venue(bad)


def test_assess_by_hand(engine: Engine) -> None:
    """Density, flow and LOS of two sensors in one zone, computed by hand (DuckDB and Spark)."""
    venue = load_venue()
    at = 1_800_000_000_000_000
    bridge = venue.zone("shing-kai-footbridge")  # walkway, 600 m²
    concourse = venue.zone("stadium-concourse")  # holding, 9,000 m², inside the stadium
    rows = [
        (bridge.sensors[0], "peopleCount", at - MIN, 1400.0),
        (bridge.sensors[0], "peopleCount", at, 1600.0),  # mean 1,500 -> 2.5 people/m²
        (bridge.sensors[0], "averageCrowdSpeed", at, 0.4),  # 2.5 × 0.4 × 60 = 60 p/m/min
        (bridge.sensors[0], "peopleCount", at - 10 * MIN, 99_999.0),  # outside the window
        (concourse.sensors[0], "peopleCount", at, 6894.0),
    ]
    table = pa.table(
        {
            "entity_id": [r[0] for r in rows],
            "attr": [r[1] for r in rows],
            "t": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "value": [r[3] for r in rows],
        },
        schema=SCHEMA,
    )
    status = analysis.assess(venue, table, at, engine=engine)
    zone = next(z for z in status.zones if z.zone == "shing-kai-footbridge")
    assert zone.people == 1500 and zone.density == pytest.approx(2.5)
    assert zone.flow == pytest.approx(60.0) and zone.los == "F" and zone.level == "critical"
    assert status.people_inside == 6894 and status.egress_min == pytest.approx(1.0)
    assert status.design_egress_min == pytest.approx(7.25)
    quiet = next(z for z in status.zones if z.zone == "pti")
    assert quiet.people is None and quiet.level == "none"  # no sensor reported: no guess
    [alert] = status.alerts
    assert alert.severity == "critical" and alert.subject.endswith("shing-kai-footbridge")


def test_egress_scenario_raises_then_clears_alerts_in_the_hub(hub: Hub) -> None:
    """The simulator's egress scenario (a match ends at Kai Tak) written into the hub's
    history; the analysis, run as time passes, raises alerts on the approaches as the crowd
    leaves and clears every one of them once it has gone."""
    start = int(datetime(2026, 11, 23, 21, 0, tzinfo=HKT).timestamp() * 1e6)  # a Monday
    fleet = [d for d in build_fleet(100, 1) if d.kind == "crowd"]
    model = CityModel(1, first_event_us=first_event(start, "egress"))
    backfill(fleet, model, hub.temporal, end_us=start + 90 * MIN, hours=2, step_s=60)
    venue = load_venue()

    status, outcome = analysis.run(hub, venue, start + 2 * MIN)  # the match is ending
    assert outcome.raised == [] and active_alerts(hub.entities) == []
    assert status.people_inside > 9000  # the concourse is full

    status, outcome = analysis.run(hub, venue, start + 25 * MIN)  # the crowd is out
    levels = {z.zone: z.level for z in status.zones}
    assert levels["shing-kai-footbridge"] == "critical"
    assert levels["station-kai-tak"] == "warning"
    active = {a["id"]: a for a in active_alerts(hub.entities, "crowds")}
    bridge = next(a for i, a in active.items() if i.endswith("shing-kai-footbridge:overcrowding"))
    assert bridge["severity"] == "critical" and bridge["type"] == "Alert"
    assert "LOS F" in bridge["description"]
    assert bridge["data"]["zone"] == "shing-kai-footbridge"  # what the next run holds it by
    assert bridge["location"]["type"] == "Point"
    assert status.people_inside < 9000  # and the concourse empties

    status, outcome = analysis.run(hub, venue, start + 26 * MIN)  # again: nothing new
    assert outcome.raised == [] and len(active_alerts(hub.entities, "crowds")) == len(active)

    # The sensors fall silent (no reading in the window): no news is not good news.
    status, outcome = analysis.run(hub, venue, start + 10 * 60 * MIN)
    assert all(z.los is None for z in status.zones) and outcome.cleared == []
    assert len(active_alerts(hub.entities, "crowds")) == len(active)

    status, outcome = analysis.run(hub, venue, start + 85 * MIN)  # gone home
    assert all(z.level == "none" for z in status.zones)
    assert active_alerts(hub.entities, "crowds") == []
    everything = alerts(hub.entities, "crowds")
    assert len(everything) == len(active) and all(a["validTo"] for a in everything)


def test_an_alert_is_left_only_past_a_deadband() -> None:
    """A zone hovering at an edge keeps its rung until the crowd is 10 % below it."""
    venue = load_venue()
    at = 1_800_000_000_000_000
    sensor = venue.zone("shing-kai-footbridge").sensors[0]  # walkway, 600 m²

    def bridge(people: float, previous: Ladder) -> str:
        t = pa.table(
            {
                "entity_id": [sensor],
                "attr": ["peopleCount"],
                "t": pa.array([at], pa.timestamp("us", tz="UTC")),
                "value": [people],
            },
            schema=SCHEMA,
        )
        status = analysis.assess(venue, t, at, previous={"shing-kai-footbridge": previous})
        return next(z.level for z in status.zones if z.zone == "shing-kai-footbridge")

    # LOS D (advisory) starts at 1 / 1.39 = 0.72 people/m²: 432 people on 600 m².
    assert bridge(440, Ladder.none) == "advisory"
    assert bridge(420, Ladder.none) == "none"  # 0.70: C
    assert bridge(420, Ladder.advisory) == "advisory"  # held: 0.70 × 1.1 is still D
    assert bridge(380, Ladder.advisory) == "none"  # 0.63 × 1.1 = 0.70: C, cleared
    assert bridge(1500, Ladder.advisory) == "critical"  # going up is never held back
    assert bridge(700, Ladder.critical) == "warning"  # 1.17 × 1.1 = 1.28: E, not F
