"""Monthly partitions of the history on PostgreSQL (migration 0023), and the months archived.

Why: ``attr_history`` grows by billions of rows a year. Partitioned by month of the
observation time (declarative ``PARTITION BY RANGE``), a temporal query over a few days reads
the indexes of one or two partitions, however many years are kept, and an old month leaves the
database as one ``DETACH PARTITION`` and ``DROP TABLE`` (``smartcity history retain``: no
``DELETE`` of millions of rows, no vacuum, no bloat). The hourly rollup is partitioned the
same way by its hour.

* Partitions are named ``<table>_pYYYY_MM`` and cover one UTC calendar month in microseconds;
  ``<table>_default`` catches any row outside them (a reading from years ago, a clock far off).
* Partitions are made ahead of time, the current month and ``AHEAD_MONTHS`` more, by the
  migration and then by the periodic job ``history.partitions`` (hub/runtime.py), once per
  cluster. A month made while the default partition holds rows of it takes those rows over,
  in the same transaction (``ensure_month``), so no row is ever in two places or in none.
* Primary keys of a partitioned table must include the partition key: ``attr_history``'s is
  ``(iid, observed_at)`` on PostgreSQL (``iid`` still comes from one sequence, so it stays
  unique); the rollup's key already holds its ``hour``.

SQLite is left unpartitioned: a one-file install has no use for it, and ``history retain``
deletes an archived month's rows there in batches instead.

``history_archives`` (schema.py) records the months archived, and where, on both backends:
the Temporal API refuses queries reaching into them (hub/temporal/service.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select, text

from smartcity.storage.engine import Database
from smartcity.storage.schema import history_archives

# Each partitioned table and its partition key.
PARTITIONED: dict[str, str] = {"attr_history": "observed_at", "attr_history_hourly": "hour"}
AHEAD_MONTHS = 3
JOB = "history.partitions"
JOB_PERIOD_S = 6 * 3600.0
_NAME = re.compile(r"_p(\d{4})_(\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- months ----------------------------------------------------------------------------------
def month_of(t_us: int) -> int:
    """The UTC calendar month of a time in microseconds: year * 12 + month - 1."""
    d = _EPOCH + timedelta(microseconds=t_us)
    return d.year * 12 + d.month - 1


def month_start(month: int) -> int:
    """The first microsecond of a month (numbered as ``month_of``)."""
    year, m = divmod(month, 12)
    return (datetime(year, m + 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def month_bounds(month: int) -> tuple[int, int]:
    return month_start(month), month_start(month + 1)


def month_label(month: int) -> str:
    year, m = divmod(month, 12)
    return f"{year:04d}-{m + 1:02d}"


def parse_month(label: str) -> int:
    year, m = label.split("-")
    return int(year) * 12 + int(m) - 1


def partition_name(table: str, month: int) -> str:
    year, m = divmod(month, 12)
    return f"{table}_p{year:04d}_{m + 1:02d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def current_month() -> int:
    now = datetime.now(tz=UTC)
    return now.year * 12 + now.month - 1


# -- the catalogue ---------------------------------------------------------------------------
def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return kind == "p"


def exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": name}).scalar() is True


def attached(conn: Connection, table: str) -> dict[int, str]:
    """The monthly partitions attached to ``table``: month -> partition name."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).scalars()
    out: dict[int, str] = {}
    for name in names:
        match = _NAME.search(name)
        if match and name == partition_name(table, _month(match)):
            out[_month(match)] = name
    return out


def detached(conn: Connection, table: str) -> dict[int, str]:
    """Tables named like ``table``'s monthly partitions that are not attached (a retain run
    detached them and stopped before dropping them)."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
            "AND c.relnamespace = current_schema()::regnamespace "
            "AND c.relname LIKE :pattern AND NOT c.relispartition"
        ),
        {"pattern": f"{table}\\_p%"},
    ).scalars()
    out: dict[int, str] = {}
    for name in names:
        match = _NAME.search(name)
        if match and name == partition_name(table, _month(match)):
            out[_month(match)] = name
    return out


def _month(match: re.Match[str]) -> int:
    return int(match[1]) * 12 + int(match[2]) - 1


def months_in_default(conn: Connection, table: str, before: int | None = None) -> list[int]:
    """The months of the rows in ``table``'s default partition (older than ``before``)."""
    key = PARTITIONED[table]
    where = "" if before is None else f" WHERE {key} < {int(before)}"
    rows = conn.execute(
        text(
            "SELECT DISTINCT (extract(year FROM ts) * 12 + extract(month FROM ts) - 1)::bigint "
            f"FROM (SELECT to_timestamp({key} / 1000000.0) AT TIME ZONE 'UTC' AS ts "
            f"FROM {default_name(table)}{where}) t"
        )
    ).scalars()
    return sorted(int(m) for m in rows)


# -- making partitions -----------------------------------------------------------------------
def ensure_month(conn: Connection, table: str, month: int) -> bool:
    """Attach ``table``'s partition for ``month`` unless there is a table of that name already;
    rows of that month in the default partition move into it. True if it was made."""
    name = partition_name(table, month)
    if exists(conn, name):
        return False
    key = PARTITIONED[table]
    lo, hi = month_bounds(month)
    default = default_name(table)
    # Inserts of this month wait while the default partition's rows move: ATTACH checks that
    # the default keeps none of them, and a row slipping in between would make it fail.
    conn.execute(text(f"LOCK TABLE {default} IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
    conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE {key} >= {lo} AND {key} < {hi} "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
    )
    conn.execute(
        text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})")
    )
    return True


def ensure_ahead(
    db: Database, *, ahead: int = AHEAD_MONTHS, now_month: int | None = None
) -> list[str]:
    """Make the partitions of this month and ``ahead`` more where missing (PostgreSQL with a
    partitioned history; nothing otherwise). Returns the partitions made. Safe to run twice,
    and on two nodes at once (the second waits for the first's lock, then finds them)."""
    if not db.is_postgres:
        return []
    first = current_month() if now_month is None else now_month
    made: list[str] = []
    for table in PARTITIONED:
        with db.write() as conn:
            if not is_partitioned(conn, table):
                continue
            have = attached(conn, table)
        for month in range(first, first + ahead + 1):
            if month in have:
                continue
            with db.write() as conn:
                # One at a time across nodes: a transaction-scoped advisory lock per table.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": table})
                if ensure_month(conn, table, month):
                    made.append(partition_name(table, month))
    return made


# -- archived months -------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchivedMonth:
    month: int
    lo: int  # microseconds, the month's first
    hi: int  # the next month's first
    location: str
    rows: int | None  # None while it is being archived


def archived_months(conn: Connection) -> list[ArchivedMonth]:
    """Every month that ``smartcity history retain`` archived or is archiving, oldest first
    (one entry per month; a month archived in several batches sums their rows)."""
    A = history_archives.c
    by_month: dict[int, ArchivedMonth] = {}
    for row in conn.execute(select(history_archives).order_by(A.month, A.batch)):
        month = parse_month(row.month)
        before = by_month.get(month)
        rows = None if row.state != "archived" else int(row.rows or 0)
        if before is not None and before.rows is not None and rows is not None:
            rows += before.rows
        by_month[month] = ArchivedMonth(month, row.lo_us, row.hi_us, row.location, rows)
    return [by_month[m] for m in sorted(by_month)]
