"""``smartcity bench engines``: one realistic analysis query, written once in DuckDB's SQL, timed
on DuckDB and on local Spark (the figures behind docs/analytics.md's choice of engines).

The data is shaped like the Transport Department's detector feed: 30-second samples per
detector lane (speed, volume, occupancy), a few missing; the query is the 5-minute step every
traffic analysis starts with (per detector and 5 minutes: samples, mean and 85th-percentile
speed, volume, the change from the previous 5 minutes).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FIVE_MINUTES = """
SELECT detector,
       time_bucket(INTERVAL '5 minutes', observed_at) AS bucket,
       count(*) AS samples,
       avg(speed) AS mean_speed,
       quantile_cont(speed, 0.85) AS p85_speed,
       sum(volume) AS volume,
       avg(speed) - lag(avg(speed)) OVER (
           PARTITION BY detector ORDER BY time_bucket(INTERVAL '5 minutes', observed_at)
       ) AS speed_change
FROM samples
GROUP BY detector, bucket
"""
PLAIN = "SELECT detector, count(*) AS n, sum(volume) AS v FROM samples GROUP BY detector"


def synthetic_samples(rows: int, seed: int = 1) -> pa.Table:
    """About ``rows`` 30-second lane samples (3 lanes per detector, one day per lane)."""
    rng = np.random.default_rng(seed)
    per_lane = 2880
    lanes = max(1, rows // per_lane)
    n = lanes * per_lane
    t0 = 1_772_323_200_000_000  # 2026-03-01 00:00 UTC, microseconds
    lane = np.repeat(np.arange(lanes), per_lane)
    times = t0 + np.tile(np.arange(per_lane, dtype=np.int64) * 30_000_000, lanes)
    keep = rng.random(n) > 0.02  # about 2% of periods missing
    detector = np.char.add("AID", (lane[keep] // 3).astype(str))
    return pa.table(
        {
            "detector": pa.array(detector.tolist(), pa.string()),
            "lane": pa.array((lane[keep] % 3).astype(np.int32)),
            "observed_at": pa.array(times[keep], pa.timestamp("us", tz="UTC")),
            "speed": pa.array(np.round(rng.normal(60, 15, n)[keep].clip(3, 120), 1)),
            "volume": pa.array(rng.poisson(4, n)[keep].astype(np.int64)),
            "occupancy": pa.array(rng.uniform(0, 40, n)[keep].round(1)),
        }
    )


def _time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(rows: int, *, spark: bool = True, spark_master: str = "local[2]") -> dict[str, Any]:
    """Seconds for the 5-minute query (best of 3) and a plain GROUP BY on each engine."""
    from smartcity.analytics.engine import DuckDBEngine, Engine
    from smartcity.analytics.spark import translate

    data = synthetic_samples(rows)
    out: dict[str, Any] = {"rows": data.num_rows}
    start = time.perf_counter()
    for _ in range(100):
        translate.__wrapped__(FIVE_MINUTES)
    out["translate_ms"] = (time.perf_counter() - start) * 10
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.parquet"
        pq.write_table(data, path, row_group_size=500_000)
        engines: list[tuple[str, Callable[[], Engine]]] = [("duckdb", DuckDBEngine)]
        if spark:
            from smartcity.analytics.spark import SparkEngine

            engines.append(
                (
                    "spark",
                    lambda: SparkEngine(
                        master=spark_master, config={"spark.sql.shuffle.partitions": "4"}
                    ),
                )
            )
        for name, make in engines:
            started = time.perf_counter()
            engine = make()
            out[f"{name}_start_s"] = time.perf_counter() - started
            try:
                engine.register_parquet("samples", path)
                # The first run warms up (Spark compiles), the best of the next ones is kept.
                engine.query(FIVE_MINUTES)
                seconds, result = _time(partial(engine.query, FIVE_MINUTES), 3)
                out[f"{name}_five_minutes_s"] = seconds
                out[f"{name}_result_rows"] = result.num_rows
                out[f"{name}_plain_group_by_s"] = _time(partial(engine.query, PLAIN), 3)[0]
            finally:
                engine.close()
    return out
