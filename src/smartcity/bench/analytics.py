"""``smartcity bench analytics``: the traffic analyses on one day of synthetic detector data
shaped like TD's raw feed (issue #13, item 9).

Default size: 800 detector stations x 3 lanes x 2,880 30-second samples (about 6.9 million
rows) in one Parquet file. Timed on DuckDB: 5-minute aggregation per lane and station, the
day's health cascade, and the performance measures (detector, road and district x 5 minutes,
hour and day) with bottlenecks; reported as rows/s and as a ratio to DuckDB's own time for a
plain GROUP BY (detector, lane, 5-minute slot) over the same Parquet, the ceiling for any
analysis that must read every sample once.

With ``spark``, the same job (the same SQL, translated by sqlglot) and the same ceiling run
on a local Spark too, reported beside DuckDB's with the time Spark took to start (the JVM
and the session), which a one-off job pays and a long-running cluster does not.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow as pa

from smartcity.analytics.engine import DuckDBEngine, Engine
from smartcity.analytics.traffic import aggregate, health, measures, synthetic
from smartcity.analytics.traffic.config import TrafficConfig
from smartcity.analytics.traffic.locations import Network
from smartcity.bench.harness import Result

DAY = date(2026, 3, 2)


def ceiling_sql(samples: str = "samples") -> str:
    return f"""
SELECT detector_id, lane, CAST(epoch(period_start) AS BIGINT) // 300 AS slot,
  COUNT(*) AS n, SUM(volume) AS volume, AVG(occupancy) AS occupancy, AVG(speed) AS speed
FROM {samples} GROUP BY 1, 2, 3
"""


def analyse(engine: Engine, config: TrafficConfig, network: Network) -> dict[str, int]:
    """The timed job: the tables it produced and their row counts."""
    lane5 = aggregate.lane_5min(engine, "samples")
    engine.register_arrow("lane5", lane5)
    station5 = aggregate.station_5min(engine, "lane5")
    lanes = health.lane_health(engine, config.health, "samples", health.day_number(DAY))
    stations = health.station_health(lanes, config.health)
    clean = station5.select(["detector_id", "t5", "volume", "occupancy", "speed"]).append_column(
        "imputed", pa.array([False] * station5.num_rows)
    )
    engine.register_arrow("clean5", clean)
    engine.register_arrow("locations", network.table())
    engine.register_arrow("pairs", network.pairs())
    perf = measures.measures(engine, config.measures)
    _slots, daily = measures.bottlenecks(engine, config.bottleneck)
    return {
        "lane5": lane5.num_rows,
        "station5": station5.num_rows,
        "health": stations.num_rows,
        "measures": perf.num_rows,
        "bottlenecks": daily.num_rows,
    }


def run(
    *,
    detectors: int = 800,
    lanes: int = 3,
    per_road: int = 20,
    threads: int | None = None,
    spark: bool = False,
    spark_master: str = "local[*]",
    progress: Callable[[str], None] = lambda _s: None,
) -> list[Result]:
    if detectors % per_road:
        raise RuntimeError(f"--detectors must be a multiple of {per_road} (stations per road)")
    layout = synthetic.Layout(roads=detectors // per_road, per_road=per_road, lanes=lanes)
    config = TrafficConfig()
    network = Network(layout.locations(), config.measures)
    with tempfile.TemporaryDirectory(prefix="smartcity-bench-analytics-") as tmp:
        path = Path(tmp) / "samples.parquet"
        progress("writing synthetic samples")
        t0 = time.perf_counter()
        rows = synthetic.write_day(DAY, layout, path)
        generate_s = time.perf_counter() - t0

        progress("DuckDB: plain GROUP BY (the ceiling)")
        duck = _timed_job(DuckDBEngine(threads=threads), path, config, network, progress)
        spark_figures = None
        if spark:
            from smartcity.analytics.spark import SparkEngine

            progress("Spark: starting")
            t0 = time.perf_counter()
            # The job hands Spark tables of a few hundred thousand rows from the driver
            # (register_arrow): more driver memory than the 1 GB default.
            engine = SparkEngine(master=spark_master, config={"spark.driver.memory": "4g"})
            start_s = time.perf_counter() - t0
            spark_figures = (start_s, _timed_job(engine, path, config, network, progress))
    ceiling_s, job_s, counts = duck
    results = [
        Result(
            "synthetic day",
            {"rows": rows, "detectors": detectors, "lanes": lanes, "write s": round(generate_s, 2)},
        ),
        Result(
            "duckdb plain GROUP BY", {"s": round(ceiling_s, 2), "rows/s": round(rows / ceiling_s)}
        ),
        Result(
            "duckdb traffic job",
            {
                "s": round(job_s, 2),
                "rows/s": round(rows / job_s),
                "x ceiling": round(job_s / ceiling_s, 1),
                **{f"{k} rows": v for k, v in counts.items()},
            },
        ),
    ]
    if spark_figures is not None:
        start_s, (s_ceiling, s_job, s_counts) = spark_figures
        if s_counts != counts:  # the engines must agree; a benchmark of a wrong answer is none
            raise RuntimeError(f"Spark's row counts differ from DuckDB's: {s_counts} != {counts}")
        results += [
            Result(
                f"spark ({spark_master}) plain GROUP BY",
                {
                    "start s": round(start_s, 2),
                    "s": round(s_ceiling, 2),
                    "rows/s": round(rows / s_ceiling),
                },
            ),
            Result(
                f"spark ({spark_master}) traffic job",
                {
                    "s": round(s_job, 2),
                    "rows/s": round(rows / s_job),
                    "x ceiling": round(s_job / s_ceiling, 1),
                    "x duckdb job": round(s_job / job_s, 1),
                },
            ),
        ]
    return results


def _timed_job(
    engine: Engine,
    path: Path,
    config: TrafficConfig,
    network: Network,
    progress: Callable[[str], None],
) -> tuple[float, float, dict[str, int]]:
    """Seconds for the ceiling and for the job on ``engine`` (closed after), and the job's
    row counts."""
    try:
        engine.register_parquet("samples", path)
        t0 = time.perf_counter()
        engine.query(ceiling_sql())
        ceiling_s = time.perf_counter() - t0
        progress(f"{engine.name}: 5-minute aggregation, health, performance measures")
        t0 = time.perf_counter()
        counts = analyse(engine, config, network)
        job_s = time.perf_counter() - t0
    finally:
        engine.close()
    return ceiling_s, job_s, counts
