"""``Database.refresh_statistics`` (run by ``smartcity serve`` at start and after ``db
upgrade``) gives SQLite's planner statistics, and is harmless on PostgreSQL."""

from __future__ import annotations

from smartcity.storage.engine import Database


def test_sqlite_gets_statistics_for_its_indexes(db: Database) -> None:
    with db.write() as conn:  # a table with rows (ANALYZE leaves empty ones out)
        conn.exec_driver_sql(
            "INSERT INTO opendata_search_facet_counts (field, value, n) VALUES ('tags', 'bus', 1)"
        )
    db.refresh_statistics()
    db.refresh_statistics()  # again: it replaces them, it does not fail
    if not db.is_sqlite:
        return
    with db.read() as conn:
        tables = {row[0] for row in conn.exec_driver_sql("SELECT DISTINCT tbl FROM sqlite_stat1")}
    assert "opendata_search_facet_counts" in tables
