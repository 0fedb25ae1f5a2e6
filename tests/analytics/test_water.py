"""Water leakage: minimum night flow and leakage by hand, CUSUM and trend detection, and the
simulator's DMAs (clean, burst, rising) in a real hub: every leak found, no clean area
flagged, the alerts cleared once the leaks are repaired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartcity.analytics.alerts import active_alerts, alerts
from smartcity.analytics.engine import Engine
from smartcity.analytics.readings import SCHEMA, from_hub, from_parquet
from smartcity.analytics.water import analysis
from smartcity.analytics.water.detect import cusum, examine
from smartcity.config import Settings
from smartcity.hub.runtime import Hub, build_hub
from smartcity.live.simulator.backfill import backfill
from smartcity.live.simulator.models import (
    BURST_DAY,
    DAY,
    HKT,
    LEAK_CYCLE_DAYS,
    CityModel,
)
from smartcity.live.simulator.places import build_fleet
from smartcity.storage.engine import Database

SEED = 3
MIN_US = 60_000_000


@pytest.fixture
def hub(db: Database) -> Iterator[Hub]:
    h = build_hub(Settings(database_url=db.url, auth_required=False), db)
    yield h
    h.close()


def table(rows: list[tuple[str, str, datetime, float]]) -> pa.Table:
    return pa.table(
        {
            "entity_id": [r[0] for r in rows],
            "attr": [r[1] for r in rows],
            "t": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "value": [r[3] for r in rows],
        },
        schema=SCHEMA,
    )


def test_minimum_night_flow_and_leakage_by_hand(engine: Engine) -> None:
    """One night, 02:00-04:00 Hong Kong time (18:00-20:00 UTC the day before): the lowest
    15-minute inflow is the MNF, the customers' use in that period the legitimate use."""
    rows: list[tuple[str, str, datetime, float]] = []
    night = datetime(2026, 11, 24, 2, 0, tzinfo=HKT)
    inflow = [30, 28, 26, 25, 22, 24, 27, 29]  # per 15 minutes; lowest at 03:00
    customer = [9, 8, 7, 7, 6, 7, 8, 9]
    for i, (q, c) in enumerate(zip(inflow, customer, strict=True)):
        for k in (0, 5, 10):  # three readings in each period, averaging to q and c
            t = night + timedelta(minutes=15 * i + k)
            rows += [("dma", "inflow", t, q - 1 + k / 5), ("dma", "customerConsumption", t, c)]
    # Outside the window: lower flows at 01:55 and 04:00 do not count.
    rows += [("dma", "inflow", night - timedelta(minutes=5), 1.0)]
    rows += [("dma", "inflow", night + timedelta(hours=2), 1.0)]
    [n] = analysis.night_figures(table(rows), engine=engine)["dma"]
    assert n.night == "2026-11-24" and n.mnf == pytest.approx(22.0)
    assert n.legitimate == pytest.approx(6.0) and n.leakage == pytest.approx(16.0)
    # Without customer meters the legitimate use is unknown: leakage is the MNF (an upper bound).
    only_inflow = [r for r in rows if r[1] == "inflow"]
    [n] = analysis.night_figures(table(only_inflow), engine=engine)["dma"]
    assert n.legitimate is None and n.leakage == pytest.approx(22.0)
    # A night with fewer than 4 of its 8 periods reported is left out.
    sparse = [r for r in only_inflow if r[2] < night + timedelta(minutes=45)]
    assert analysis.night_figures(table(sparse), engine=engine) == {}


def test_cusum_and_trend_detection() -> None:
    rng = np.random.default_rng(7)
    noise = rng.uniform(-0.3, 0.3, 21)
    flat = 10 + noise
    assert examine(flat).kind == "none"
    burst = flat.copy()
    burst[12:] += 6.0  # a burst on night 12
    found = examine(burst)
    assert found.kind == "burst" and found.change_night == 12
    assert found.step == pytest.approx(6.0, abs=0.7)
    rising = flat + np.clip(np.arange(21) - 7, 0, None) * 0.5  # from night 8, +0.5 a night
    assert examine(rising).kind == "rising"
    repaired = burst.copy()
    repaired[-2:] = flat[-2:]  # fixed: the last two nights are back at the baseline
    assert examine(repaired).kind == "none"
    blip = flat.copy()
    blip[15] += 6.0  # one night's blip (a fire hydrant, a flushing)
    assert examine(blip).kind == "none"
    # Page's CUSUM by hand: k = 0.5, h = 5: z = 3 a night alarms on the 3rd night (7.5 > 5).
    assert cusum(np.array([0, 0, 3, 3, 3, 3.0])) == (4, 2)
    with pytest.raises(ValueError, match="need at least 9"):
        examine(np.ones(5))


def test_a_dma_with_too_few_nights_is_skipped_and_says_why() -> None:
    rows = []
    for night in range(5):
        t = datetime(2026, 11, 20 + night, 2, 30, tzinfo=HKT)
        rows += [("dma-new", "inflow", t + timedelta(minutes=15 * k), 20.0) for k in range(6)]
    status = analysis.assess(table(rows), 0)
    assert status.dmas == [] and status.alerts == []
    assert "5 nights" in status.skipped["dma-new"]


def _night_end(day: int) -> int:
    """04:00 Hong Kong time on ``day`` (days since the epoch, local), in µs."""
    return int((day * DAY - 8 * 3600 + 4 * 3600) * 1e6)


def test_simulated_dmas_leaks_and_bursts_found_without_false_alarms(
    hub: Hub, tmp_path: Path
) -> None:
    fleet = [d for d in build_fleet(800, SEED) if d.kind == "water"]
    roles = {d.entity_id: d.params["leak"] for d in fleet}
    assert sorted(roles.values()) == ["burst"] * 2 + ["clean"] * 4 + ["rising"] * 2
    model = CityModel(SEED)
    cycle = 20_600 // LEAK_CYCLE_DAYS + 1  # a cycle in 2026
    first = cycle * LEAK_CYCLE_DAYS
    # Only the nights matter: write 02:00-04:00 of each night (every 15 minutes).
    for day in range(first, first + 28):
        backfill(fleet, model, hub.temporal, end_us=_night_end(day), hours=2, step_s=900)

    at = _night_end(first + 21) + 4 * 3600 * 1_000_000  # 08:00 on day 21 of the cycle
    status, outcome = analysis.run(hub, at)
    found = {s.dma: s for s in status.dmas}
    assert set(found) == set(roles) and status.skipped == {}
    for dma, role in roles.items():
        assert found[dma].finding == ("none" if role == "clean" else role), (dma, found[dma])
    for d in fleet:
        if d.params["leak"] != "burst":
            continue
        # The burst starts on day 14 (UTC) at a seeded time: the first night after it.
        onset_s = (first + BURST_DAY) * DAY
        while model.water_leak(d, onset_s) == 0:
            onset_s += 60
        onset = datetime.fromtimestamp(onset_s, UTC).astimezone(HKT)
        first_night = onset.date() + timedelta(days=0 if onset.hour < 2 else 1)
        assert found[d.entity_id].since == first_night.isoformat()
        assert found[d.entity_id].step == pytest.approx(model.water_leak(d, onset_s), rel=0.15)
    # The leaky areas rank above the clean ones of their size, and only they have alerts.
    leaky = {dma for dma, role in roles.items() if role != "clean"}
    assert {a["alertSource"] for a in active_alerts(hub.entities, "water")} == leaky
    assert sorted(outcome.raised) == sorted(a.id for a in status.alerts)
    bursts = [a for a in active_alerts(hub.entities, "water") if a["subCategory"] == "waterBurst"]
    assert len(bursts) == 2 and all(a["severity"] == "high" for a in bursts)
    assert [s.rank for s in status.dmas] == list(range(1, 9))
    assert status.dmas[0].leakage == max(s.leakage for s in status.dmas)

    # The same readings from Parquet (the whole month: the run keeps its own nights) give
    # the same answer.
    everything = from_hub(hub.temporal, "WaterConsumptionObserved", analysis.ATTRS, 0, 2**62)
    pq.write_table(everything, tmp_path / "readings.parquet")
    again = analysis.assess(
        analysis.within(
            from_parquet(tmp_path / "readings.parquet"), analysis.window_start(at, 21), at
        ),
        at,
    )
    assert again.to_json()["dmas"] == status.to_json()["dmas"]

    # After the repairs (day 25), the alerts clear themselves.
    status, outcome = analysis.run(hub, _night_end(first + 27) + 3600 * 1_000_000)
    assert all(s.finding == "none" for s in status.dmas)
    assert active_alerts(hub.entities, "water") == []
    assert sorted(outcome.cleared) == sorted(a["id"] for a in alerts(hub.entities, "water"))
