"""30-second samples -> 5-minute values per lane and per detector station (PeMS aggregation).

Plain SQL in DuckDB's dialect (integer epoch arithmetic, no engine-specific time functions),
so the Spark engine runs the same text. Times are carried as ``t5``, the epoch second at which
the 5-minute slot starts, beside ``period_start``.

Per lane: ``volume`` is the vehicles counted in the slot scaled up for absent or invalid
30-second samples (count x 10 / good samples, as PeMS does), ``occupancy`` the mean of the
good samples, ``speed`` the volume-weighted harmonic mean of the samples' speeds (a space-mean
speed: samples with no vehicles carry no speed).
"""

from __future__ import annotations

import pyarrow as pa

from smartcity.analytics.engine import Engine

SLOT_S = 300


def epoch_sql(samples: str) -> str:
    """The samples with the period start as an integer epoch second ``t``."""
    return (
        "SELECT detector_id, lane, CAST(epoch(period_start) AS BIGINT) AS t, speed, volume, "
        f"occupancy, valid FROM {samples}"
    )


def lane_5min_sql(samples: str = "samples", where: str = "TRUE") -> str:
    return f"""
WITH s AS ({epoch_sql(samples)}),
g AS (
  SELECT detector_id, lane, t - t % {SLOT_S} AS t5,
    COUNT(*) AS samples,
    CAST(SUM(CASE WHEN valid THEN 1 ELSE 0 END) AS BIGINT) AS good_samples,
    CAST(SUM(CASE WHEN valid THEN volume ELSE 0 END) AS BIGINT) AS volume_observed,
    AVG(CASE WHEN valid THEN occupancy END) AS occupancy,
    SUM(CASE WHEN valid AND speed > 0 THEN volume END) AS v_speed,
    SUM(CASE WHEN valid AND speed > 0 THEN volume / speed END) AS v_per_speed
  FROM s WHERE {where}
  GROUP BY detector_id, lane, t - t % {SLOT_S}
)
SELECT detector_id, lane, t5, to_timestamp(t5) AS period_start, samples, good_samples,
  volume_observed,
  CASE WHEN good_samples > 0 THEN volume_observed * {SLOT_S // 30}.0 / good_samples END AS volume,
  occupancy,
  CASE WHEN v_per_speed > 0 THEN v_speed / v_per_speed END AS speed
FROM g
"""


def station_5min_sql(lanes: str = "lane5") -> str:
    return f"""
SELECT detector_id, t5, MIN(period_start) AS period_start, CAST(COUNT(*) AS BIGINT) AS lanes,
  CAST(SUM(samples) AS BIGINT) AS samples,
  CAST(SUM(good_samples) AS BIGINT) AS good_samples,
  SUM(volume) AS volume, AVG(occupancy) AS occupancy,
  SUM(CASE WHEN speed > 0 THEN volume END)
    / NULLIF(SUM(CASE WHEN speed > 0 THEN volume / speed END), 0) AS speed
FROM {lanes}
GROUP BY detector_id, t5
"""


def lane_5min(engine: Engine, samples: str = "samples", where: str = "TRUE") -> pa.Table:
    return engine.query(lane_5min_sql(samples, where) + " ORDER BY detector_id, lane, t5")


def station_5min(engine: Engine, lanes: str = "lane5") -> pa.Table:
    return engine.query(station_5min_sql(lanes) + " ORDER BY detector_id, t5")


def day_bounds(day_number: int) -> tuple[int, int]:
    """Epoch seconds of a Hong Kong day (days since 1970-01-01 in Hong Kong time)."""
    start = day_number * 86400 - 8 * 3600
    return start, start + 86400
