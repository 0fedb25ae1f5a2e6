"""Each analysis is written once in DuckDB's SQL and gives the same answers on DuckDB and
Spark: a realistic 5-minute aggregation (buckets, averages, percentiles, a window over the
previous bucket) is checked on both engines against the same figures computed by hand."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartcity.analytics.engine import Engine, open_engine
from smartcity.analytics.spark import TranslationError, translate

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

FIVE_MINUTES = """
SELECT detector,
       time_bucket(INTERVAL '5 minutes', observed_at) AS bucket,
       count(*) AS samples,
       avg(speed) AS mean_speed,
       quantile_cont(speed, 0.85) AS p85_speed,
       sum(volume) AS volume,
       lag(avg(speed)) OVER (PARTITION BY detector ORDER BY time_bucket(INTERVAL '5 minutes',
           observed_at)) AS previous_mean
FROM samples
WHERE observed_at >= TIMESTAMPTZ '2026-03-02 07:00:00+00'
GROUP BY detector, bucket
ORDER BY detector, bucket
"""


def _samples() -> pa.Table:
    """Two detectors, 30-second samples for 40 minutes, some missing (as on the real feed)."""
    rng = random.Random(7)
    rows: dict[str, list] = {"detector": [], "observed_at": [], "speed": [], "volume": []}
    for detector in ("AID01101", "AID01102"):
        for k in range(80):
            if rng.random() < 0.1:
                continue  # a missing period
            rows["detector"].append(detector)
            rows["observed_at"].append(T0 + timedelta(seconds=30 * k + rng.randint(0, 29)))
            rows["speed"].append(round(rng.uniform(20, 90), 1))
            rows["volume"].append(rng.randint(0, 12))
    return pa.table(
        rows,
        schema=pa.schema(
            [
                ("detector", pa.string()),
                ("observed_at", pa.timestamp("us", tz="UTC")),
                ("speed", pa.float64()),
                ("volume", pa.int64()),
            ]
        ),
    )


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _by_hand(table: pa.Table) -> list[dict]:
    groups: dict[tuple[str, datetime], list[dict]] = {}
    for row in table.to_pylist():
        t = row["observed_at"]
        bucket = t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)
        groups.setdefault((row["detector"], bucket), []).append(row)
    out = []
    previous: dict[str, float] = {}
    for (detector, bucket), rows in sorted(groups.items()):
        speeds = [r["speed"] for r in rows]
        mean = sum(speeds) / len(speeds)
        out.append(
            {
                "detector": detector,
                "bucket": bucket,
                "samples": len(rows),
                "mean_speed": mean,
                "p85_speed": _percentile(speeds, 0.85),
                "volume": sum(r["volume"] for r in rows),
                "previous_mean": previous.get(detector),
            }
        )
        previous[detector] = mean
    return out


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_five_minute_aggregation_is_the_same_on_every_engine(engine: Engine) -> None:
    data = _samples()
    engine.register_arrow("samples", data)
    got = engine.query(FIVE_MINUTES)
    assert got.schema.field("bucket").type == pa.timestamp("us", tz="UTC")
    expected = _by_hand(data)
    rows = got.to_pylist()
    assert len(rows) == len(expected) == 16  # 2 detectors x 8 buckets
    for row, want in zip(rows, expected, strict=True):
        row["volume"] = int(row["volume"])  # DuckDB sums to HUGEINT, Spark to BIGINT
        assert all(_close(row[k], want[k]) for k in want), (row, want)
    assert rows[0]["previous_mean"] is None and rows[1]["previous_mean"] is not None


def test_hive_partitioned_parquet_reads_the_same(engine: Engine, tmp_path: Path) -> None:
    """A folder written like ``history export``'s: the partition keys become columns."""
    for etype, day, value in (
        ("A", "2026-03-01", 1.0),
        ("A", "2026-03-02", 2.0),
        ("B", "2026-03-02", 5.0),
    ):
        folder = tmp_path / f"type={etype}" / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"value_num": [value, value]}), folder / "part-0000000001.parquet")
    (tmp_path / "type=A" / "date=2026-03-01" / ".part-0000000002.parquet.tmp").write_bytes(
        b"partial"
    )
    engine.register_parquet("h", tmp_path)
    got = engine.query(
        "SELECT type, CAST(date AS VARCHAR) AS day, sum(value_num) AS total, count(*) AS n "
        "FROM h GROUP BY ALL ORDER BY ALL"
    ).to_pylist()
    assert got == [
        {"type": "A", "day": "2026-03-01", "total": 2.0, "n": 2},
        {"type": "A", "day": "2026-03-02", "total": 4.0, "n": 2},
        {"type": "B", "day": "2026-03-02", "total": 10.0, "n": 2},
    ]


def test_time_functions_over_operations_keep_their_grouping(engine: Engine) -> None:
    """The mended functions take and make operations: their operands and results keep their
    grouping on Spark (a performance measure's ``to_timestamp(t5 - t5 % 300)`` once lost it)."""
    engine.register_arrow("x", pa.table({"t5": pa.array([1_772_415_123], pa.int64())}))
    (row,) = engine.query(
        "SELECT to_timestamp(t5 - t5 % 300) AS slot, "
        "3600 / epoch(to_timestamp(t5 - t5 + 1800)) AS halves, "
        "epoch(time_bucket(INTERVAL '1 hour', to_timestamp(t5 + 3600))) - t5 AS ahead, "
        "1.0 / 60.0 AS decimals FROM x"
    ).to_pylist()
    assert row["slot"] == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert row["halves"] == 2.0
    assert row["ahead"] == 1_772_416_800 - 1_772_415_123
    assert row["decimals"] == 1 / 60  # a DOUBLE on both, not Spark's DECIMAL 0.016667


def test_translation_mends_what_sqlglot_leaves() -> None:
    spark = translate("SELECT time_bucket(INTERVAL 15 MINUTE, t) AS b, epoch_us(t) AS us FROM x")
    assert "TIMESTAMP_MICROS" in spark and "PMOD" in spark and "UNIX_MICROS(t)" in spark
    assert "900000000" in spark  # 15 minutes in microseconds
    assert "PERCENTILE(x, 0.5)" in translate("SELECT quantile_cont(x, 0.5) FROM y")
    assert "ROUND((t - t % 300) * 1000000)" in translate("SELECT to_timestamp(t - t % 300) FROM x")
    epoch = translate("SELECT 2 / epoch(t) FROM x")
    assert "/ (CAST(UNIX_MICROS(t) AS DOUBLE) / 1000000.0)" in epoch
    assert "CAST(1.0 AS DOUBLE) / 60.0" in translate("SELECT 1.0 / 60.0 FROM x")
    with pytest.raises(TranslationError, match="fixed width"):
        translate("SELECT time_bucket(INTERVAL '1 month', t) FROM x")


def test_unknown_engine_name_says_which_exist() -> None:
    with pytest.raises(ValueError, match="duckdb, spark"):
        open_engine("presto")
