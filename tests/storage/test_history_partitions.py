"""Migration 0023 on PostgreSQL: the history tables become partitioned by month with every row
kept, partitions exist ahead of time, and the hub's periodic job makes missing ones (moving
rows of their month out of the default partition). SQLite is left unpartitioned."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text
from tests.conftest import BACKENDS, PG_URL, _drop_pg_database, _pg_database

from smartcity.config import Settings
from smartcity.hub.runtime import build_hub
from smartcity.storage import migrate, partitions
from smartcity.storage.engine import Database

DAY = 86_400_000_000
# Rows in three months long ago, one at the epoch's eve, and the rollup rows they make.
TIMES = [1_700_000_000_000_000, 1_700_000_000_000_000 + DAY, 1_710_000_000_000_000, -5]


@pytest.fixture(params=BACKENDS)
def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('m0023') / 'm.db'}")
        yield db
        db.dispose()
        return
    name = f"smartcity_m0023_{uuid.uuid4().hex[:8]}"
    db = Database(_pg_database(name))
    with db.write() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield db
    finally:
        db.dispose()
        _drop_pg_database(name)


def seed_0022(db: Database) -> None:
    migrate.upgrade(db, "0022")
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO history_entities (tenant, entity_id, types, created_at, modified_at)"
                " VALUES ('', 'urn:ngsi-ld:X:1', '[]', 0, 0)"
            )
        )
        for k, t in enumerate(TIMES):
            conn.execute(
                text(
                    "INSERT INTO attr_history (hid, attr, dataset_id, instance_id, observed_at,"
                    " created_at, modified_at, num, value) VALUES (1, 'a', '', :i, :t, 0, 0, :n,"
                    ' \'{"type": "Property", "value": 1}\')'
                ),
                {"i": f"i{k}", "t": t, "n": float(k)},
            )
            conn.execute(
                text(
                    "INSERT INTO attr_history_hourly VALUES (1, 'a', :h, '', 1, 1, :n, 0, :n, :n,"
                    " :t, :t, 'Property')"
                ),
                {"h": t - t % 3_600_000_000, "t": t, "n": float(k)},
            )


def history(db: Database) -> list[tuple[int, str, int, float]]:
    with db.read() as conn:
        return sorted(
            conn.execute(text("SELECT iid, instance_id, observed_at, num FROM attr_history")).all()
        )


def homes(db: Database, table: str) -> dict[int, str]:
    key = partitions.PARTITIONED[table]
    with db.read() as conn:
        rows = conn.execute(text(f"SELECT {key}, tableoid::regclass::text FROM {table}")).all()
    return dict(rows)


def test_upgrade_keeps_every_row_and_partitions_by_month(fresh: Database) -> None:
    seed_0022(fresh)
    before = history(fresh)
    migrate.upgrade(fresh)
    assert history(fresh) == before
    with fresh.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM history_archives")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM attr_history_hourly")).scalar() == 4
    if not fresh.is_postgres:
        with fresh.read() as conn:
            assert not partitions.is_partitioned(conn, "attr_history")
        return
    for table in partitions.PARTITIONED:
        placed = homes(fresh, table)
        for t, home in placed.items():
            assert home == partitions.partition_name(table, partitions.month_of(t)), (t, home)
        with fresh.read() as conn:
            assert partitions.is_partitioned(conn, table)
            have = partitions.attached(conn, table)
        now = partitions.current_month()
        assert set(range(now, now + partitions.AHEAD_MONTHS + 1)) <= set(have)
    with fresh.write() as conn:
        indexes = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'attr_history'")
            ).scalars()
        )
        assert {"attr_history_pkey", "ix_attr_history_series", "ix_attr_history_instance"} <= (
            indexes
        )
        # The ids go on from the old sequence.
        new = conn.execute(
            text(
                "INSERT INTO attr_history (hid, attr, dataset_id, instance_id, observed_at,"
                " created_at, modified_at, value) VALUES (1, 'a', '', 'new', 7, 0, 0, '{}')"
                " RETURNING iid"
            )
        ).scalar()
        assert new == max(r[0] for r in before) + 1
    command.downgrade(migrate._config(fresh), "0022")
    with fresh.read() as conn:
        assert not partitions.is_partitioned(conn, "attr_history")
    assert [r[1] for r in history(fresh)] == [r[1] for r in before] + ["new"]


@pytest.mark.skipif(not PG_URL, reason="partitions are PostgreSQL's")
def test_the_hub_job_makes_missing_partitions_ahead() -> None:
    name = f"smartcity_m0023_{uuid.uuid4().hex[:8]}"
    db = Database(_pg_database(name))
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        migrate.upgrade(db)
        now = partitions.current_month()
        gone = now + 2
        lo, _hi = partitions.month_bounds(gone)
        with db.write() as conn:
            for table in partitions.PARTITIONED:
                conn.execute(text(f"DROP TABLE {partitions.partition_name(table, gone)}"))
            conn.execute(
                text(
                    "INSERT INTO history_entities (tenant, entity_id, types, created_at,"
                    " modified_at) VALUES ('', 'x', '[]', 0, 0)"
                )
            )
            # A reading of that month meanwhile lands in the default partition.
            conn.execute(
                text(
                    "INSERT INTO attr_history (hid, attr, dataset_id, instance_id, observed_at,"
                    " created_at, modified_at, value) SELECT hid, 'a', '', 'early', :t, 0, 0,"
                    " '{}' FROM history_entities"
                ),
                {"t": lo + 5},
            )
        assert homes(db, "attr_history") == {lo + 5: "attr_history_default"}
        hub = build_hub(Settings(database_url=db.url, auth_required=False), db)
        hub.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with db.read() as conn:
                    if all(gone in partitions.attached(conn, t) for t in partitions.PARTITIONED):
                        break
                time.sleep(0.1)
        finally:
            hub.close()
        with db.read() as conn:
            for table in partitions.PARTITIONED:
                assert gone in partitions.attached(conn, table)
        # The early reading moved into its month's partition; none lost, none doubled.
        assert homes(db, "attr_history") == {
            lo + 5: partitions.partition_name("attr_history", gone)
        }
        # Run again: nothing to make.
        assert partitions.ensure_ahead(db) == []
    finally:
        db.dispose()
        _drop_pg_database(name)
