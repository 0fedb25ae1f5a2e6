"""Imputation of detectors made bad on purpose: estimates close to the truth, marked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from smartcity.analytics.engine import DuckDBEngine, Engine
from smartcity.analytics.traffic import aggregate, health, impute, synthetic
from smartcity.analytics.traffic.config import HealthConfig
from smartcity.analytics.traffic.locations import Network

FIRST = date(2026, 3, 1)
DAYS = 8
TARGET = FIRST + timedelta(days=DAYS - 1)


@pytest.fixture
def duck() -> Iterator[Engine]:
    """DuckDB only, on purpose: the imputation is numpy over the 5-minute values and health,
    and those are compared on both engines (test_traffic_measures.py, test_traffic_health.py);
    eight days of samples through the tests' one-core Spark take minutes each and more than
    its memory. test_the_same_imputation_on_every_engine below runs the whole pipeline on both
    engines, on a network small enough for Spark, and finds the same answers."""
    eng = DuckDBEngine()
    yield eng
    eng.close()


def station5_and_health(engine: Engine, samples: pa.Table) -> tuple[pa.Table, pa.Table]:
    engine.register_arrow("samples", samples)
    engine.register_arrow("lane5", aggregate.lane_5min(engine, "samples"))
    s5 = aggregate.station_5min(engine, "lane5")
    h = health.station_health(health.lane_health(engine, HealthConfig(), "samples"), HealthConfig())
    return s5, h


def history(
    engine: Engine, layout: synthetic.Layout, faults: dict[str, str]
) -> tuple[pa.Table, pa.Table]:
    days = [
        synthetic.generate(
            FIRST + timedelta(days=k), layout, faults=faults if k == DAYS - 1 else {}
        )
        for k in range(DAYS)
    ]
    return station5_and_health(engine, pa.concat_tables(days))


def truth(engine: Engine, layout: synthetic.Layout, detector: str) -> pa.Table:
    s5, _ = station5_and_health(engine, synthetic.generate(TARGET, layout))
    return s5.filter(pc.equal(s5["detector_id"], detector))


def only(table: pa.Table, detector: str) -> pa.Table:
    return table.filter(pc.equal(table["detector_id"], detector))


def error(estimate: pa.Table, actual: pa.Table, column: str) -> tuple[float, float]:
    e = estimate[column].to_numpy(zero_copy_only=False).astype(float)
    a = actual[column].to_numpy(zero_copy_only=False).astype(float)
    assert len(e) == len(a) == 288
    return float(np.nanmean(np.abs(e - a))), float(np.nanmean(a))


def test_a_card_off_detector_is_imputed_from_its_neighbours(duck: Engine) -> None:
    engine = duck
    layout = synthetic.Layout()
    s5, h = history(engine, layout, {"SYN0004": "card_off"})
    clean = impute.impute_day(s5, h, Network(layout.locations()), health.day_number(TARGET))
    bad = only(clean, "SYN0004")
    assert set(bad["method"].to_pylist()) == {"adjacent"}
    assert all(bad["imputed"].to_pylist())
    actual = truth(engine, layout, "SYN0004")
    vol_err, vol_mean = error(bad, actual, "volume")
    speed_err, _ = error(bad, actual, "speed")
    assert vol_err < 0.15 * vol_mean, (vol_err, vol_mean)  # the observed values were all 0
    assert speed_err < 5.0, speed_err
    # Good detectors keep what they measured.
    good = only(clean, "SYN0005")
    assert not any(good["imputed"].to_pylist())
    assert (
        good["volume"].to_pylist()
        == only(s5, "SYN0005")
        .filter(
            pc.greater_equal(
                only(s5, "SYN0005")["t5"], aggregate.day_bounds(health.day_number(TARGET))[0]
            )
        )["volume"]
        .to_pylist()
    )


def test_wider_neighbours_when_the_adjacent_ones_are_bad_too(duck: Engine) -> None:
    engine = duck
    layout = synthetic.Layout(bottleneck_at=None, per_road=6)
    faults = {"SYN0002": "card_off", "SYN0003": "constant", "SYN0004": "high_val"}
    s5, h = history(engine, layout, faults)
    clean = impute.impute_day(s5, h, Network(layout.locations()), health.day_number(TARGET))
    mid = only(clean, "SYN0003")
    assert set(mid["method"].to_pylist()) == {"wider"}  # SYN0001 / SYN0005, two hops away
    vol_err, vol_mean = error(mid, truth(engine, layout, "SYN0003"), "volume")
    assert vol_err < 0.2 * vol_mean, (vol_err, vol_mean)


def test_the_own_profile_when_no_neighbour_can_help(duck: Engine) -> None:
    engine = duck
    layout = synthetic.Layout(roads=1, per_road=1, bottleneck_at=None)
    s5, h = history(engine, layout, {"SYN0001": "intermittent"})
    clean = impute.impute_day(s5, h, Network(layout.locations()), health.day_number(TARGET))
    assert set(clean["method"].to_pylist()) == {"profile"}
    vol_err, vol_mean = error(clean, truth(engine, layout, "SYN0001"), "volume")
    assert vol_err < 0.25 * vol_mean, (vol_err, vol_mean)


# The same imputation from DuckDB and Spark: the whole pipeline (30-second samples -> 5-minute
# values -> health -> impute_day) on a small network, so the one-core Spark of the tests runs
# it in seconds. One road of five one-lane stations and a single day of history (288 pairs of
# 5-minute values per neighbour, well above ImputeConfig.min_points).
SMALL = synthetic.Layout(roads=1, per_road=5, lanes=1, bottleneck_at=None)
SMALL_FAULTS = {"SYN0002": "card_off", "SYN0003": "constant", "SYN0004": "high_val"}
SMALL_METHODS = {"SYN0002": "adjacent", "SYN0003": "wider", "SYN0004": "adjacent"}


def small_pipeline(engine: Engine) -> tuple[pa.Table, pa.Table]:
    """(health, imputed day) of SMALL, its last of two days with SMALL_FAULTS."""
    first = TARGET - timedelta(days=1)
    samples = pa.concat_tables(
        [synthetic.generate(first, SMALL), synthetic.generate(TARGET, SMALL, faults=SMALL_FAULTS)]
    )
    s5, h = station5_and_health(engine, samples)
    day = health.day_number(TARGET)
    clean = impute.impute_day(s5, h, Network(SMALL.locations()), day)
    return h.filter(pc.equal(h["dayn"], day)), clean.sort_by(
        [("detector_id", "ascending"), ("t5", "ascending")]
    )


@pytest.fixture(scope="module")
def duckdb_small() -> tuple[pa.Table, pa.Table]:
    eng = DuckDBEngine()
    try:
        return small_pipeline(eng)
    finally:
        eng.close()


def test_the_same_imputation_on_every_engine(
    engine: Engine, duckdb_small: tuple[pa.Table, pa.Table]
) -> None:
    h, clean = small_pipeline(engine)
    status = dict(zip(h["detector_id"].to_pylist(), h["status"].to_pylist(), strict=True))
    assert {d: s != "good" for d, s in status.items()} == {
        d.detector_id: d.detector_id in SMALL_FAULTS for d in SMALL.locations()
    }, status
    for detector, method in SMALL_METHODS.items():
        bad = only(clean, detector)
        assert len(bad) == 288, detector
        assert set(bad["method"].to_pylist()) == {method}, detector
        assert all(bad["imputed"].to_pylist()), detector
    good = clean.filter(pc.invert(pc.is_in(clean["detector_id"], pa.array(list(SMALL_FAULTS)))))
    assert set(good["method"].to_pylist()) == {"observed"}
    assert not any(good["imputed"].to_pylist())
    # And exactly what DuckDB gives.
    ref_h, ref = duckdb_small
    assert (
        h.sort_by("detector_id")
        .select(["detector_id", "status"])
        .equals(ref_h.sort_by("detector_id").select(["detector_id", "status"]))
    )
    for column in ("detector_id", "t5", "period_start", "imputed", "method"):
        assert clean[column].to_pylist() == ref[column].to_pylist(), column
    for column in ("volume", "occupancy", "speed"):
        np.testing.assert_allclose(
            clean[column].to_numpy(zero_copy_only=False).astype(float),
            ref[column].to_numpy(zero_copy_only=False).astype(float),
            rtol=1e-9,
            atol=1e-9,
            equal_nan=True,
            err_msg=column,
        )
