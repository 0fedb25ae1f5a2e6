"""``smartcity bench engines``: the timed query answers on the synthetic detector day (DuckDB
here; the Spark side is the same query, covered by tests/analytics/test_engines.py)."""

from __future__ import annotations

from smartcity.bench import engines


def test_the_benchmark_query_gives_one_row_per_detector_and_five_minutes() -> None:
    figures = engines.run(2880 * 6, spark=False)  # 6 lanes: 2 detectors, one day each
    assert figures["duckdb_result_rows"] == 2 * 288
    assert 0 < figures["duckdb_five_minutes_s"] < 30 and figures["translate_ms"] > 0
    assert 0.95 * 2880 * 6 < figures["rows"] < 2880 * 6  # about 2% of periods missing
