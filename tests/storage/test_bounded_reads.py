"""Bounded reads: a read given a budget is stopped when it runs past it (SQLite: a progress
handler deadline; PostgreSQL: statement_timeout), and the connection it used goes back to the
pool without the bound."""

from __future__ import annotations

import time

import pytest

from smartcity.storage.engine import Database, QueryTimeout

# Counts to a billion: many seconds of work on either database.
ENDLESS = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000) "
    "SELECT count(*) FROM n"
)
# A second's worth of work or less, but more than the budget below.
SHORT = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000) "
    "SELECT count(*) FROM n"
)


@pytest.mark.parametrize("kind", ["read", "snapshot"])
def test_a_read_past_its_budget_is_stopped(bare_db: Database, kind: str) -> None:
    reader = bare_db.read if kind == "read" else bare_db.snapshot
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as caught, reader(budget=0.2) as conn:
        conn.exec_driver_sql(ENDLESS).scalar()
    assert caught.value.budget == 0.2
    assert time.monotonic() - started < 2


def test_the_bound_ends_with_the_read(bare_db: Database) -> None:
    """The pooled connection that was bounded runs unbounded statements afterwards."""
    with pytest.raises(QueryTimeout), bare_db.read(budget=0.01) as conn:
        conn.exec_driver_sql(ENDLESS).scalar()
    for _ in range(3):  # whichever pooled connection comes back
        with bare_db.read() as conn:
            assert conn.exec_driver_sql(SHORT).scalar() == 300000
        with bare_db.snapshot() as conn:
            assert conn.exec_driver_sql(SHORT).scalar() == 300000


def test_a_read_within_its_budget_answers(bare_db: Database) -> None:
    with bare_db.read(budget=30) as conn:
        assert conn.exec_driver_sql(SHORT).scalar() == 300000
