"""``smartcity bench analytics`` runs end to end at a small size (its figures mean something
only at the default 800 stations on a quiet machine: docs/performance.md, "Analytics")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smartcity.bench import analytics
from smartcity.cli.main import app


def test_the_analytics_benchmark_runs() -> None:
    results = analytics.run(detectors=40, lanes=2)
    by_name = {r.name: r.figures for r in results}
    assert by_name["synthetic day"]["rows"] == 40 * 2 * 2880
    job = by_name["duckdb traffic job"]
    assert job["rows/s"] > 0 and job["x ceiling"] > 0
    assert job["health rows"] == 40 and job["station5 rows"] == 40 * 288
    assert job["bottlenecks rows"] == 2  # one recurrent bottleneck on each synthetic road


def test_the_command_has_a_small_size() -> None:
    result = CliRunner().invoke(app, ["bench", "analytics", "--small", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "duckdb traffic job" in result.output
    bad = CliRunner().invoke(app, ["bench", "analytics", "--detectors", "33"])
    assert bad.exit_code == 1 and "multiple of 20" in bad.output


@pytest.mark.spark
def test_the_same_job_on_spark_is_reported_beside() -> None:
    """``--spark``: the job and the ceiling on a local Spark too, with its start time; the run
    fails if Spark's tables differ in size from DuckDB's."""
    from tests.analytics.conftest import _spark_missing

    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    results = analytics.run(detectors=20, lanes=1, spark=True, spark_master="local[1]")
    by_name = {r.name: r.figures for r in results}
    ceiling = by_name["spark (local[1]) plain GROUP BY"]
    job = by_name["spark (local[1]) traffic job"]
    assert ceiling["start s"] > 0 and ceiling["s"] > 0
    assert job["rows/s"] > 0 and job["x duckdb job"] > 0
