"""``smartcity bench analytics`` runs end to end at a small size (its figures mean something
only at the default 800 stations on a quiet machine: docs/performance.md, "Analytics")."""

from __future__ import annotations

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
