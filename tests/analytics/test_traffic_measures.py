"""Performance measures against hand-computed values; the 5-minute aggregation; bottleneck
detection; journey-time reliability."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from smartcity.analytics.engine import Engine
from smartcity.analytics.traffic import aggregate, measures
from smartcity.analytics.traffic.config import BottleneckConfig, MeasuresConfig
from smartcity.analytics.traffic.feed import SAMPLE_SCHEMA
from smartcity.analytics.traffic.health import day_number
from smartcity.analytics.traffic.locations import Location, Network

DAY = date(2026, 3, 2)
T0 = aggregate.day_bounds(day_number(DAY))[0] + 8 * 3600  # 08:00 Hong Kong time


def clean5(rows: list[tuple[str, int, float, float | None]]) -> pa.Table:
    return pa.table(
        {
            "detector_id": [r[0] for r in rows],
            "t5": pa.array([T0 + 300 * r[1] for r in rows], pa.int64()),
            "volume": pa.array([r[2] for r in rows], pa.float64()),
            "occupancy": pa.array([10.0] * len(rows)),
            "speed": pa.array([r[3] for r in rows], pa.float64()),
            "imputed": [False] * len(rows),
        }
    )


def pick(table: pa.Table, level: str, period: str, key: str) -> list[dict[str, Any]]:
    return [
        r for r in table.to_pylist() if (r["level"], r["period"], r["key"]) == (level, period, key)
    ]


def test_performance_measures_by_hand(engine: Engine) -> None:
    network = Network(
        [
            Location("A", "R", "D", length_km=1.0, free_flow_kmh=80),
            Location("B", "R", "D", length_km=0.5, free_flow_kmh=80),
            Location("C", "S", "E", length_km=2.0, free_flow_kmh=60),
        ]
    )
    data = clean5(
        [
            ("A", 0, 100, 50),
            ("A", 1, 120, 30),
            ("B", 0, 80, 80),
            ("B", 1, 60, 20),
            ("C", 0, 10, 60),
            ("C", 1, 0, None),
        ]
    )
    engine.register_arrow("clean5", data)
    engine.register_arrow("locations", network.table())
    out = measures.measures(engine, MeasuresConfig(delay_thresholds_kmh=(40.0, 60.0)))
    a5 = pick(out, "detector", "5min", "A")
    assert [r["vkt"] for r in a5] == [100.0, 120.0]
    assert [r["vht"] for r in a5] == pytest.approx([2.0, 4.0])
    assert [r["delay_vh_40"] for r in a5] == pytest.approx([0.0, 1.0])  # 120 x (1/30 - 1/40)
    assert [r["delay_vh_60"] for r in a5] == pytest.approx([100 * (1 / 50 - 1 / 60), 2.0])
    assert [r["speed"] for r in a5] == pytest.approx([50.0, 30.0])
    assert [r["tti"] for r in a5] == pytest.approx([1.6, 4.0 / 1.5])
    assert [r["congested_minutes"] for r in a5] == [0, 5]
    (a_hour,) = pick(out, "detector", "hour", "A")
    assert a_hour["period_start"] == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 08:00 HKT
    assert (a_hour["vkt"], a_hour["vht"]) == pytest.approx((220.0, 6.0))
    assert a_hour["speed"] == pytest.approx(220 / 6)
    assert a_hour["tti"] == pytest.approx(6 / (220 / 80))
    (road,) = pick(out, "road", "day", "R")
    assert road["period_start"] == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # the Hong Kong day
    assert (road["vkt"], road["vht"]) == pytest.approx((290.0, 8.0))
    assert road["delay_vh_40"] == pytest.approx(1.0 + 30 * (1 / 20 - 1 / 40))
    # Slot 1 on road R: (120 + 30) km / (4 + 1.5) h = 27 km/h -> congested; slot 0: 56 km/h.
    assert road["congested_minutes"] == 5
    (district,) = pick(out, "district", "day", "E")
    assert (district["vkt"], district["vht"], district["speed"]) == pytest.approx(
        (20.0, 1 / 3, 60.0)
    )
    assert district["tti"] == pytest.approx(1.0)


def test_thirty_seconds_to_five_minutes(engine: Engine) -> None:
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    rows = []
    # Lane 1: 10 samples, volumes 1..10 at 50 or 100 km/h; lane 2: 5 samples (half missing).
    for i in range(10):
        rows.append(
            (
                "X",
                "Fast Lane",
                start + timedelta(seconds=30 * i),
                50.0 if i % 2 else 100.0,
                i + 1,
                5.0,
                True,
            )
        )
    for i in range(5):
        rows.append(("X", "Slow Lane", start + timedelta(seconds=30 * i), 40.0, 2, 8.0, True))
    rows.append(
        ("X", "Slow Lane", start + timedelta(seconds=150), 200.0, 50, 90.0, False)
    )  # invalid
    table = pa.table(list(zip(*rows, strict=True)), schema=SAMPLE_SCHEMA)
    engine.register_arrow("samples", table)
    lanes = {r["lane"]: r for r in aggregate.lane_5min(engine).to_pylist()}
    fast, slow = lanes["Fast Lane"], lanes["Slow Lane"]
    assert fast["volume"] == 55.0 and fast["samples"] == 10
    # Space-mean speed: vehicles over the time they took (harmonic, volume-weighted).
    odd = sum(i + 1 for i in range(10) if i % 2)
    even = 55 - odd
    assert fast["speed"] == pytest.approx(55 / (odd / 50 + even / 100))
    assert (slow["samples"], slow["good_samples"], slow["volume_observed"]) == (6, 5, 10)
    assert slow["volume"] == pytest.approx(20.0)  # 10 counted in 5 of 10 samples, scaled
    assert slow["occupancy"] == 8.0 and slow["speed"] == 40.0
    engine.register_arrow("lane5", aggregate.lane_5min(engine))
    (station,) = aggregate.station_5min(engine).to_pylist()
    assert station["volume"] == pytest.approx(75.0)
    assert station["speed"] == pytest.approx(75 / (odd / 50 + even / 100 + 20 / 40))
    assert station["period_start"] == start


def bottleneck_data(up: list[float | None], down: float = 80.0) -> pa.Table:
    rows = [("U", i, 100.0, s) for i, s in enumerate(up)] + [
        ("D", i, 100.0, down) for i in range(len(up))
    ]
    return clean5(rows)


def run_bottlenecks(
    engine: Engine, data: pa.Table, distance_km: float = 1.0
) -> tuple[pa.Table, pa.Table]:
    network = Network(
        [Location("U", "R", chainage_km=0.0), Location("D", "R", chainage_km=distance_km)]
    )
    engine.register_arrow("clean5", data)
    engine.register_arrow("pairs", network.pairs())
    return measures.bottlenecks(engine, BottleneckConfig())


def test_a_sustained_speed_drop_is_a_bottleneck(engine: Engine) -> None:
    speeds: list[float | None] = [70.0] * 30
    for i in range(5, 15):
        speeds[i] = 30.0  # queued upstream for 50 minutes
    speeds[25] = 30.0  # a single slow slot is not a bottleneck
    slots, daily = run_bottlenecks(engine, bottleneck_data(speeds))
    assert [(r["t5"] - T0) // 300 for r in slots.to_pylist()] == list(range(5, 15))
    (day,) = daily.to_pylist()
    assert (day["upstream"], day["downstream"], day["active_minutes"]) == ("U", "D", 50)
    assert day["first_active"] == datetime(2026, 3, 2, 0, 25, tzinfo=UTC)
    assert day["mean_drop_kmh"] == pytest.approx(50.0)
    # 5 of 7 is enough: one fast slot inside the queue does not split it.
    speeds[9] = 70.0
    slots, _ = run_bottlenecks(engine, bottleneck_data(speeds))
    assert len(slots) == 9


def test_no_bottleneck_without_a_big_drop_or_when_too_far_apart(engine: Engine) -> None:
    speeds: list[float | None] = [70.0] * 5 + [30.0] * 10 + [70.0] * 5
    _, daily = run_bottlenecks(engine, bottleneck_data(speeds, down=55.0))  # only 25 km/h faster
    assert daily.num_rows == 0
    _, daily = run_bottlenecks(engine, bottleneck_data(speeds), distance_km=6.0)
    assert daily.num_rows == 0
    _, daily = run_bottlenecks(engine, bottleneck_data(speeds))
    assert daily.num_rows == 1


def test_journey_time_reliability(engine: Engine) -> None:
    at = datetime(2018, 10, 15, 8, 0, tzinfo=UTC)
    minutes = [10.0, 10.0, 10.0, 12.0, 20.0]
    journeys = pa.table(
        {
            "location_id": ["H1"] * 6,
            "destination_id": ["CH"] * 6,
            "captured_at": pa.array(
                [at + timedelta(minutes=2 * i) for i in range(6)], pa.timestamp("us", tz="UTC")
            ),
            "minutes": pa.array([*minutes, None], pa.float64()),  # a message-only record
            "colour": pa.array([1] * 6, pa.int8()),
        }
    )
    engine.register_arrow("journeys", journeys)
    (row,) = measures.reliability(engine).to_pylist()
    p95 = 12 + 0.8 * (20 - 12)  # linear interpolation at rank 0.95 x 4
    assert row["samples"] == 5
    assert row["p95_minutes"] == pytest.approx(p95)
    assert row["buffer_index"] == pytest.approx((p95 - 12.4) / 12.4)
    assert row["planning_time_index"] == pytest.approx(p95 / 10.0)
