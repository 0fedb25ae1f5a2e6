"""History that stays fast for years: on PostgreSQL ``attr_history`` and the hourly rollup become
partitioned by month (storage/partitions.py), keeping every row; ``history_archives`` records
the months ``smartcity history retain`` moved to Parquet (both backends).

The conversion, per table: rename the table away, create the partitioned table like it, a
default partition, one partition per month that has rows and for this month and the next
three, copy the rows in (routed to their partitions), hand the id sequence over, drop the old
table, then add the keys and indexes on the partitioned table (every partition gets them).
A partitioned table's primary key must include the partition key: ``attr_history``'s becomes
``(iid, observed_at)``. SQLite is left as it is.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

AHEAD_MONTHS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# table: (partition key, primary key, indexes (name, columns)); as 0001/0002 made them.
TABLES: dict[str, tuple[str, list[str], list[tuple[str, list[str]]]]] = {
    "attr_history": (
        "observed_at",
        ["iid"],
        [
            ("ix_attr_history_series", ["hid", "attr", "observed_at"]),
            ("ix_attr_history_instance", ["instance_id"]),
        ],
    ),
    "attr_history_hourly": ("hour", ["hid", "attr", "hour", "dataset_id"], []),
}


def _month_start(month: int) -> int:
    year, m = divmod(month, 12)
    return (datetime(year, m + 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def _partition(table: str, month: int) -> str:
    year, m = divmod(month, 12)
    return f"{table}_p{year:04d}_{m + 1:02d}"


def upgrade() -> None:
    op.create_table(
        "history_archives",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("batch", sa.Integer, primary_key=True),
        sa.Column("lo_us", sa.BigInteger, nullable=False),
        sa.Column("hi_us", sa.BigInteger, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=True),
        sa.Column("upto_key", sa.BigInteger, nullable=True),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    now = datetime.now(tz=UTC)
    current = now.year * 12 + now.month - 1
    for table, (key, pk, indexes) in TABLES.items():
        _partition_table(table, key, pk, indexes, current)


def _partition_table(
    table: str, key: str, pk: list[str], indexes: list[tuple[str, list[str]]], current: int
) -> None:
    conn = op.get_bind()
    old = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    sequence = None
    if "iid" in pk:
        sequence = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('{old}', 'iid')")).scalar()
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE ({key})")
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    # The months that have rows (only those: a reading dated year 1 must not make 24,000
    # partitions; rows of months without one stay in the default partition).
    months = set(
        conn.execute(
            sa.text(
                "SELECT DISTINCT (extract(year FROM ts) * 12 + extract(month FROM ts) - 1)::bigint"
                f" FROM (SELECT to_timestamp({key} / 1000000.0) AT TIME ZONE 'UTC' AS ts"
                f" FROM {old}) t"
            )
        ).scalars()
    )
    months = {int(m) for m in months if 12 <= m < 10_000 * 12}
    months |= set(range(current, current + AHEAD_MONTHS + 1))
    for month in sorted(months):
        op.execute(
            f"CREATE TABLE {_partition(table, month)} PARTITION OF {table} "
            f"FOR VALUES FROM ({_month_start(month)}) TO ({_month_start(month + 1)})"
        )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    if sequence:  # the ids go on from where they were
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.iid")
    op.execute(f"DROP TABLE {old}")
    columns = pk + ([key] if key not in pk else [])
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(columns)})"
    )
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_hid_fkey FOREIGN KEY (hid) "
        "REFERENCES history_entities (hid) ON DELETE CASCADE"
    )
    for name, cols in indexes:
        op.execute(f"CREATE INDEX {name} ON {table} ({', '.join(cols)})")


def _unpartition_table(
    table: str, key: str, pk: list[str], indexes: list[tuple[str, list[str]]]
) -> None:
    conn = op.get_bind()
    old = f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name, _cols in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_partitioned")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {table}_pkey_partitioned")
    sequence = None
    if "iid" in pk:
        sequence = conn.execute(sa.text(f"SELECT pg_get_serial_sequence('{old}', 'iid')")).scalar()
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.iid")
    op.execute(f"DROP TABLE {old} CASCADE")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(pk)})")
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_hid_fkey FOREIGN KEY (hid) "
        "REFERENCES history_entities (hid) ON DELETE CASCADE"
    )
    for name, cols in indexes:
        op.execute(f"CREATE INDEX {name} ON {table} ({', '.join(cols)})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, (key, pk, indexes) in TABLES.items():
            _unpartition_table(table, key, pk, indexes)
    op.drop_table("history_archives")
