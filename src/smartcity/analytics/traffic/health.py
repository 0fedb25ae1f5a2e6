"""Daily detector health, PeMS's diagnostic cascade (Chen, Kwon, Skabardonis and Varaiya,
"Detecting errors and imputing missing data for single-loop surveillance systems", TRB 2003).

For each lane and Hong Kong day, over the window (05:00-22:00 by default) of 30-second
samples: too few good samples -> ``insufficient_data``; too many samples with nothing
detected -> ``card_off``; too many implausibly high occupancies or volumes -> ``high_val``;
too many samples with occupancy but no vehicle counted -> ``intermittent``; occupancy that
(nearly) never changes, measured by its entropy -> ``constant``; else ``good``. The first
test that fails names the status. A station (detector id) takes the worst status of its lanes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from smartcity.analytics.engine import Engine
from smartcity.analytics.traffic.aggregate import epoch_sql
from smartcity.analytics.traffic.config import HKT_OFFSET_S, HealthConfig

STATUSES = ("insufficient_data", "card_off", "high_val", "intermittent", "constant", "good")


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def lane_health_sql(config: HealthConfig, samples: str = "samples", day: int | None = None) -> str:
    c = config
    start_s, end_s = int(c.window_start_h * 3600), int(c.window_end_h * 3600)
    day_filter = f"AND dayn = {int(day)}" if day is not None else ""
    return f"""
WITH s AS (
  SELECT detector_id, lane, volume, occupancy, valid,
    (t + {HKT_OFFSET_S}) // 86400 AS dayn, (t + {HKT_OFFSET_S}) % 86400 AS sod
  FROM ({epoch_sql(samples)}) e
),
w AS (
  SELECT * FROM s WHERE sod >= {start_s} AND sod < {end_s} {day_filter}
),
counts AS (
  SELECT detector_id, lane, dayn,
    CAST(SUM(CASE WHEN valid THEN 1 ELSE 0 END) AS BIGINT) AS samples,
    CAST(SUM(CASE WHEN valid AND occupancy = 0 AND volume = 0 THEN 1 ELSE 0 END) AS BIGINT)
      AS zero_samples,
    CAST(SUM(CASE WHEN valid AND (occupancy > {c.high_occupancy} OR volume > {c.high_volume})
        THEN 1 ELSE 0 END) AS BIGINT) AS high_samples,
    CAST(SUM(CASE WHEN valid AND occupancy > 0 AND volume = 0 THEN 1 ELSE 0 END) AS BIGINT)
      AS intermittent_samples
  FROM w GROUP BY detector_id, lane, dayn
),
hist AS (
  SELECT detector_id, lane, dayn, occupancy, COUNT(*) AS n
  FROM w WHERE valid AND occupancy IS NOT NULL
  GROUP BY detector_id, lane, dayn, occupancy
),
tot AS (
  SELECT detector_id, lane, dayn, occupancy, n,
    SUM(n) OVER (PARTITION BY detector_id, lane, dayn) AS total
  FROM hist
),
ent AS (
  SELECT detector_id, lane, dayn,
    -SUM((n * 1.0 / total) * LN(n * 1.0 / total)) / LN(2) AS entropy_bits
  FROM tot GROUP BY detector_id, lane, dayn
)
SELECT c.detector_id, c.lane, c.dayn, c.samples, c.zero_samples, c.high_samples,
  c.intermittent_samples, COALESCE(e.entropy_bits, 0) AS entropy_bits,
  CASE
    WHEN c.samples < {c.min_fraction} * {c.expected_samples} THEN 'insufficient_data'
    WHEN c.zero_samples > {c.card_off_samples} THEN 'card_off'
    WHEN c.high_samples > {c.high_val_samples} THEN 'high_val'
    WHEN c.intermittent_samples > {c.intermittent_samples} THEN 'intermittent'
    WHEN COALESCE(e.entropy_bits, 0) < {c.constant_entropy_bits} THEN 'constant'
    ELSE 'good'
  END AS status
FROM counts c LEFT JOIN ent e
  ON e.detector_id = c.detector_id AND e.lane = c.lane AND e.dayn = c.dayn
"""


def lane_health(
    engine: Engine, config: HealthConfig, samples: str = "samples", day: int | None = None
) -> pa.Table:
    return engine.query(lane_health_sql(config, samples, day) + " ORDER BY detector_id, lane, dayn")


def station_health(lanes: pa.Table, config: HealthConfig) -> pa.Table:
    """Lane health -> one row per station and day: the worst lane's status."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    by: dict[tuple[str, int], dict[str, Any]] = {}
    for row in lanes.to_pylist():
        key = (row["detector_id"], row["dayn"])
        entry = by.setdefault(
            key, {"detector_id": key[0], "dayn": key[1], "status": "good", "samples": 0, "lanes": 0}
        )
        entry["lanes"] += 1
        entry["samples"] = max(entry["samples"], row["samples"])
        if rank[row["status"]] < rank[entry["status"]]:
            entry["status"] = row["status"]
    rows = sorted(by.values(), key=lambda r: (r["detector_id"], r["dayn"]))
    return pa.table(
        {
            "detector_id": pa.array([r["detector_id"] for r in rows], pa.string()),
            "dayn": pa.array([r["dayn"] for r in rows], pa.int64()),
            "status": pa.array([r["status"] for r in rows], pa.string()),
            "samples": pa.array([r["samples"] for r in rows], pa.int64()),
            "expected": pa.array([config.expected_samples] * len(rows), pa.int64()),
            "lanes": pa.array([r["lanes"] for r in rows], pa.int64()),
        }
    )


def health_report(
    lanes: pa.Table, config: HealthConfig, day: int, known: list[str] | None = None
) -> dict[str, Any]:
    """The ``smartcity analytics traffic health --json`` document for one day."""
    stations = {
        r["detector_id"]: r for r in station_health(lanes, config).to_pylist() if r["dayn"] == day
    }
    out: dict[str, Any] = {}
    for row in lanes.to_pylist():
        if row["dayn"] != day:
            continue
        st = stations[row["detector_id"]]
        entry = out.setdefault(
            row["detector_id"],
            {
                "status": st["status"],
                "samples": st["samples"],
                "expected": st["expected"],
                "lanes": {},
            },
        )
        entry["lanes"][row["lane"]] = {
            "status": row["status"],
            "samples": row["samples"],
            "zero_samples": row["zero_samples"],
            "high_samples": row["high_samples"],
            "intermittent_samples": row["intermittent_samples"],
            "entropy_bits": abs(round(float(row["entropy_bits"]), 3)),
        }
    for detector in known or []:  # in the location list but silent all day
        out.setdefault(
            detector,
            {
                "status": "insufficient_data",
                "samples": 0,
                "expected": config.expected_samples,
                "lanes": {},
            },
        )
    return {"detectors": dict(sorted(out.items()))}
