"""``smartcity bench hub --scenario batch`` measures both batch paths against a real server:
the first pass creates every entity, the second writes the same entities again, and neither
loses a request."""

from __future__ import annotations

from smartcity.bench.harness import fresh_database
from smartcity.bench.hub import batch_upsert
from smartcity.storage.engine import Database


def test_batch_scenario_creates_then_rewrites_every_entity() -> None:
    with fresh_database(None) as url:
        results = {r.name: r.figures for r in batch_upsert(url, batches=2, workers=1)}
        db = Database(url)
        with db.engine.connect() as conn:
            stored = conn.exec_driver_sql(
                "SELECT count(*) FROM entities WHERE tenant = ''"
            ).scalar_one()
        db.dispose()
    created = results["batch upsert (1,000/request)"]
    again = results["batch upsert of existing entities (1,000/request)"]
    assert created["failed_requests"] == 0 and again["failed_requests"] == 0
    assert created["entities_per_s"] > 0 and again["entities_per_s"] > 0
    assert stored == 2000  # the second pass found each entity: nothing created twice
