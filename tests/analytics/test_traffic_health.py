"""PeMS's daily health cascade on synthetic detectors with each kind of fault injected."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from smartcity.analytics.engine import Engine
from smartcity.analytics.traffic import health, synthetic
from smartcity.analytics.traffic.config import HealthConfig

DAY = date(2026, 3, 2)
FAULTS = {
    "SYN0001": "card_off",
    "SYN0002": "high_val",
    "SYN0003": "intermittent",
    "SYN0004": "constant",
    "SYN0101": "insufficient_data",
}


# ``engine``: tests/analytics/conftest.py, DuckDB and Spark (the same verdicts on both).


def report(
    engine: Engine, samples: pa.Table, config: HealthConfig | None = None
) -> dict[str, dict]:  # type: ignore[type-arg]
    cfg = config or HealthConfig()
    engine.register_arrow("samples", samples)
    lanes = health.lane_health(engine, cfg, "samples", health.day_number(DAY))
    return health.health_report(lanes, cfg, health.day_number(DAY))["detectors"]


def test_each_injected_fault_gets_its_status(engine: Engine) -> None:
    samples = synthetic.generate(DAY, synthetic.Layout(), faults=FAULTS)
    detectors = report(engine, samples)
    assert len(detectors) == 10
    for detector, entry in detectors.items():
        assert entry["status"] == FAULTS.get(detector, "good"), (detector, entry)
        assert entry["expected"] == 2040  # 05:00-22:00 in 30-second samples
    assert detectors["SYN0005"]["samples"] == 2040
    assert detectors["SYN0101"]["samples"] < 0.6 * 2040
    assert detectors["SYN0001"]["lanes"]["Slow Lane"]["zero_samples"] == 2040
    assert detectors["SYN0004"]["lanes"]["Fast Lane"]["entropy_bits"] == 0.0


def test_the_cascade_order_and_thresholds_are_configurable(engine: Engine) -> None:
    samples = synthetic.generate(DAY, synthetic.Layout(), faults=FAULTS)
    # A card that is off also has constant occupancy: the earlier test names it.
    assert report(engine, samples)["SYN0001"]["status"] == "card_off"
    relaxed = replace(
        HealthConfig(), card_off_samples=5000, high_val_samples=5000, intermittent_samples=5000
    )
    detectors = report(engine, samples, relaxed)
    assert detectors["SYN0001"]["status"] == "constant"  # next in the cascade
    assert detectors["SYN0002"]["status"] == "good"
    assert detectors["SYN0003"]["status"] == "good"
    strict = replace(HealthConfig(), min_fraction=0.2)
    assert report(engine, samples, strict)["SYN0101"]["status"] == "good"


def test_only_the_daytime_window_counts(engine: Engine) -> None:
    samples = synthetic.generate(DAY, synthetic.Layout(roads=1, per_road=1))
    # Break the detector at night only (22:00-05:00 Hong Kong time): still good.
    seconds = pc.add(pc.divide(samples["period_start"].cast(pa.int64()), 1_000_000), 8 * 3600)
    sod = pc.divide(pc.subtract(seconds, pc.multiply(pc.divide(seconds, 86400), 86400)), 1)
    night = pc.or_(pc.less(sod, 5 * 3600), pc.greater_equal(sod, 22 * 3600))
    broken = samples.set_column(
        samples.column_names.index("occupancy"),
        "occupancy",
        pc.if_else(night, 90.0, samples["occupancy"]),
    )
    assert report(engine, broken)["SYN0001"]["status"] == "good"
    # The same fault in the day is a high value.
    day = pc.invert(night)
    broken = samples.set_column(
        samples.column_names.index("occupancy"),
        "occupancy",
        pc.if_else(day, 90.0, samples["occupancy"]),
    )
    assert report(engine, broken)["SYN0001"]["status"] == "high_val"


def test_invalid_samples_do_not_count(engine: Engine) -> None:
    samples = synthetic.generate(DAY, synthetic.Layout(roads=1, per_road=1))
    flagged = samples.set_column(
        samples.column_names.index("valid"), "valid", pa.array([False] * samples.num_rows)
    )
    entry = report(engine, flagged)["SYN0001"]
    assert (entry["status"], entry["samples"]) == ("insufficient_data", 0)


def test_a_listed_detector_silent_all_day_is_insufficient_data(engine: Engine) -> None:
    samples = synthetic.generate(DAY, synthetic.Layout(roads=1, per_road=1))
    engine.register_arrow("samples", samples)
    cfg = HealthConfig()
    lanes = health.lane_health(engine, cfg, "samples", health.day_number(DAY))
    out = health.health_report(lanes, cfg, health.day_number(DAY), known=["SYN0001", "AID99999"])
    assert out["detectors"]["AID99999"] == {
        "status": "insufficient_data",
        "samples": 0,
        "expected": 2040,
        "lanes": {},
    }
    assert out["detectors"]["SYN0001"]["status"] == "good"
