"""``smartcity bench opendata datastore`` runs end to end on a few rows (its figures are only
meaningful on a quiet machine with the default million rows)."""

from __future__ import annotations

import pytest

from smartcity.bench import datastore

pytestmark = pytest.mark.slow  # a real server process


def test_the_datastore_benchmark_runs() -> None:
    results = datastore.run(None, rows=500, repeat=2, progress=lambda _step: None)
    by_name = {r.name: r.figures for r in results}
    assert by_name["datastore load (CSV)"]["rows"] == 500
    assert by_name["datastore_search filter+sort+100"]["p50 ms"] > 0
    assert any(name.startswith("datasette") for name in by_name)
