"""PeMS performance measures, bottlenecks and journey-time reliability, as SQL.

Performance measures (PeMS "Performance Measures" definitions) from 5-minute station values
(flow ``volume`` vehicles per slot, ``speed`` km/h) and the road length ``length_km`` each
station stands for:

* VKT = volume x length (vehicle-kilometres travelled);
* VHT = volume x length / speed (vehicle-hours travelled);
* delay at threshold T = volume x length x max(0, 1/speed - 1/T) (vehicle-hours lost against
  travelling at T; several thresholds at once);
* average speed = VKT / VHT; travel time index = VHT / (VKT / free-flow speed);
* congested minutes: 5-minute slots whose speed (the group's VKT/VHT) is below the
  congestion threshold.

Rolled up per detector, road and district, and per 5 minutes, hour and (Hong Kong) day.
"""

from __future__ import annotations

import pyarrow as pa

from smartcity.analytics.engine import Engine
from smartcity.analytics.traffic.config import (
    HKT_OFFSET_S,
    BottleneckConfig,
    MeasuresConfig,
)

LEVELS = {"detector": "detector_id", "road": "road", "district": "district"}
PERIODS = {"5min": 300, "hour": 3600, "day": 86400}


def delay_column(threshold: float) -> str:
    return f"delay_vh_{int(threshold) if float(threshold).is_integer() else threshold}".replace(
        ".", "_"
    )


def measures_sql(
    config: MeasuresConfig,
    level: str,
    period: str,
    clean: str = "clean5",
    locations: str = "locations",
) -> str:
    key = LEVELS[level]
    size = PERIODS[period]
    # Hong Kong days start at 16:00 UTC: shift before truncating.
    bucket = f"t5 - (t5 + {HKT_OFFSET_S}) % 86400" if period == "day" else f"t5 - t5 % {size}"
    delays = ",\n    ".join(
        f"CASE WHEN c.speed > 0 AND c.speed < {t} THEN c.volume * l.length_km * "
        f"(1.0 / c.speed - 1.0 / {t}) ELSE 0 END AS {delay_column(t)}"
        for t in config.delay_thresholds_kmh
    )
    delay_sums = ", ".join(
        f"SUM({delay_column(t)}) AS {delay_column(t)}" for t in config.delay_thresholds_kmh
    )
    return f"""
WITH m AS (
  SELECT c.detector_id, l.road, l.district, c.t5, c.imputed,
    c.volume * l.length_km AS vkt,
    CASE WHEN c.speed > 0 THEN c.volume * l.length_km / c.speed ELSE 0 END AS vht,
    c.volume * l.length_km / l.free_flow_kmh AS vht_free,
    {delays}
  FROM {clean} c JOIN {locations} l ON l.detector_id = c.detector_id
  WHERE c.volume IS NOT NULL
),
g5 AS (
  SELECT {key} AS key, t5, SUM(vkt) AS vkt, SUM(vht) AS vht, SUM(vht_free) AS vht_free,
    {delay_sums},
    SUM(CASE WHEN imputed THEN 1 ELSE 0 END) AS imputed_slots, COUNT(*) AS slots
  FROM m GROUP BY {key}, t5
)
SELECT '{level}' AS level, key, '{period}' AS period, {bucket} AS t,
  to_timestamp({bucket}) AS period_start,
  SUM(vkt) AS vkt, SUM(vht) AS vht,
  {", ".join(f"SUM({delay_column(t)}) AS {delay_column(t)}" for t in config.delay_thresholds_kmh)},
  SUM(vkt) / NULLIF(SUM(vht), 0) AS speed,
  SUM(vht) / NULLIF(SUM(vht_free), 0) AS tti,
  CAST(SUM(CASE WHEN vht > 0 AND vkt / vht < {config.congested_below_kmh} THEN 5 ELSE 0 END)
    AS BIGINT) AS congested_minutes,
  SUM(imputed_slots) * 1.0 / SUM(slots) AS imputed_fraction
FROM g5 GROUP BY key, {bucket}
"""


def measures(
    engine: Engine, config: MeasuresConfig, clean: str = "clean5", locations: str = "locations"
) -> pa.Table:
    """Every level and period, one table (``level``, ``key``, ``period`` say which)."""
    parts = [
        engine.query(measures_sql(config, level, period, clean, locations) + " ORDER BY key, t")
        for level in LEVELS
        for period in PERIODS
    ]
    return pa.concat_tables(parts)


def bottleneck_pairs_sql(clean: str = "clean5", pairs: str = "pairs") -> str:
    """Step 1: each adjacent pair with the upstream station's 5-minute speeds. Run apart from
    step 2 because, without table statistics, a planner may join the two stations on time
    first (every station with every station)."""
    return f"""
SELECT pr.upstream, pr.downstream, pr.road, pr.distance_km, c.t5, c.speed AS upstream_speed
FROM {pairs} pr JOIN {clean} c ON c.detector_id = pr.upstream
"""


def bottlenecks_sql(
    config: BottleneckConfig, clean: str = "clean5", upstream: str = "bottleneck_upstream"
) -> str:
    span = config.window - 1  # a slot counts when some window of `window` slots holding it
    # has at least `min_hits` hits (PeMS: 5 of 7)
    return f"""
WITH p AS (
  SELECT u.upstream, u.downstream, u.road, u.distance_km, u.t5,
    u.upstream_speed, d.speed AS downstream_speed,
    CASE WHEN u.upstream_speed < {config.max_upstream_kmh}
          AND d.speed - u.upstream_speed > {config.min_drop_kmh}
          AND u.distance_km <= {config.max_distance_km} THEN 1 ELSE 0 END AS hit
  FROM {upstream} u
  JOIN {clean} d ON d.detector_id = u.downstream AND d.t5 = u.t5
),
w AS (
  SELECT *, CASE WHEN SUM(hit) OVER (PARTITION BY upstream, downstream ORDER BY t5
    ROWS BETWEEN {span} PRECEDING AND CURRENT ROW) >= {config.min_hits} THEN 1 ELSE 0 END
    AS ends_run
  FROM p
),
a AS (
  SELECT *, MAX(ends_run) OVER (PARTITION BY upstream, downstream ORDER BY t5
    ROWS BETWEEN CURRENT ROW AND {span} FOLLOWING) AS in_run
  FROM w
)
SELECT upstream, downstream, road, distance_km, t5, to_timestamp(t5) AS period_start,
  upstream_speed, downstream_speed
FROM a WHERE hit = 1 AND in_run = 1
"""


def bottlenecks(
    engine: Engine, config: BottleneckConfig, clean: str = "clean5", pairs: str = "pairs"
) -> tuple[pa.Table, pa.Table]:
    """Active bottleneck slots, and per location and day: first, last, active minutes."""
    engine.register_arrow("bottleneck_upstream", engine.query(bottleneck_pairs_sql(clean, pairs)))
    slots = engine.query(bottlenecks_sql(config, clean) + " ORDER BY upstream, downstream, t5")
    engine.register_arrow("bottleneck_slots", slots)
    daily = engine.query(
        f"""
SELECT upstream, downstream, road, (t5 + {HKT_OFFSET_S}) // 86400 AS dayn,
  MIN(period_start) AS first_active, MAX(period_start) AS last_active,
  CAST(COUNT(*) * 5 AS BIGINT) AS active_minutes,
  AVG(downstream_speed - upstream_speed) AS mean_drop_kmh
FROM bottleneck_slots GROUP BY upstream, downstream, road, (t5 + {HKT_OFFSET_S}) // 86400
ORDER BY dayn, active_minutes DESC, upstream
"""
    )
    return slots, daily


def segment_hours_sql(config: MeasuresConfig, segments: str = "segments") -> str:
    """TD's processed segment speeds (``irnAvgSpeed-all.xml``) per segment and hour: mean,
    lowest, readings, and the minutes spent below the congestion speed (each reading stands
    for the interval to the next, TD publishes every 2 minutes or so: counted as readings
    below x 60 / readings in the hour)."""
    return f"""
WITH s AS (
  SELECT segment_id, CAST(epoch(observed_at) AS BIGINT) AS t, speed
  FROM {segments} WHERE valid AND speed IS NOT NULL
)
SELECT segment_id, t - t % 3600 AS t, to_timestamp(t - t % 3600) AS period_start,
  CAST(COUNT(*) AS BIGINT) AS readings, AVG(speed) AS mean_speed, MIN(speed) AS min_speed,
  SUM(CASE WHEN speed < {config.congested_below_kmh} THEN 1 ELSE 0 END) * 60.0 / COUNT(*)
    AS congested_minutes
FROM s GROUP BY segment_id, t - t % 3600
"""


def reliability_sql(journeys: str = "journeys", by_day: bool = True) -> str:
    """FHWA's reliability indices per route: buffer index = (95th percentile - mean) / mean;
    planning time index = 95th percentile / free-flow time (the route's 5th percentile over
    all the data given, as no free-flow time is published)."""
    day = f"(CAST(epoch(captured_at) AS BIGINT) + {HKT_OFFSET_S}) // 86400"
    group = f", {day}" if by_day else ""
    return f"""
WITH j AS (SELECT location_id, destination_id, captured_at, minutes FROM {journeys}
           WHERE minutes IS NOT NULL AND minutes > 0),
ff AS (SELECT location_id, destination_id, quantile_cont(minutes, 0.05) AS free_flow_minutes
       FROM j GROUP BY location_id, destination_id)
SELECT j.location_id, j.destination_id{", " + day + " AS dayn" if by_day else ""},
  CAST(COUNT(*) AS BIGINT) AS samples, AVG(j.minutes) AS mean_minutes,
  quantile_cont(j.minutes, 0.95) AS p95_minutes, MIN(ff.free_flow_minutes) AS free_flow_minutes,
  (quantile_cont(j.minutes, 0.95) - AVG(j.minutes)) / AVG(j.minutes) AS buffer_index,
  quantile_cont(j.minutes, 0.95) / MIN(ff.free_flow_minutes) AS planning_time_index
FROM j JOIN ff ON ff.location_id = j.location_id AND ff.destination_id = j.destination_id
GROUP BY j.location_id, j.destination_id{group}
"""


def reliability(engine: Engine, journeys: str = "journeys", by_day: bool = True) -> pa.Table:
    order = "location_id, destination_id" + (", dayn" if by_day else "")
    return engine.query(reliability_sql(journeys, by_day) + f" ORDER BY {order}")
