"""Long queries keep their driver conversion on PostgreSQL (storage/engine.py): an entity query
with a q compiles to ~5,000 characters, past what psycopg keeps by default."""

from __future__ import annotations

import pytest

from smartcity.storage.engine import PSYCOPG_CACHED_QUERY_CHARS, Database


def test_a_long_query_is_converted_once(bare_db: Database) -> None:
    if not bare_db.is_postgres:
        pytest.skip("psycopg is PostgreSQL's driver")
    from psycopg import _queries

    # If a psycopg upgrade renames the limit, this says the tuning is lost.
    assert _queries.MAX_CACHED_STATEMENT_LENGTH >= PSYCOPG_CACHED_QUERY_CHARS
    padding = " AND ".join(f"%s::int = {n}" for n in range(45))
    sql = f"SELECT 1 WHERE {padding}  -- " + "x" * 5_000
    assert 5_000 < len(sql) < PSYCOPG_CACHED_QUERY_CHARS
    _queries._query2pg.cache_clear()
    for _ in range(3):
        with bare_db.read() as conn:
            assert conn.exec_driver_sql(sql, tuple(range(45))).scalar() == 1
    info = _queries._query2pg.cache_info()
    assert (info.misses, info.hits) == (1, 2)
