"""``smartcity bench history``: what monthly partitions and ``history retain`` cost and save
on PostgreSQL (docs/performance.md, "History: partitions and archiving").

On a scratch database at the schema before partitioning (0022): ``months`` months of
``month_rows`` readings each (100 detectors' speeds, evenly spread), temporal queries timed;
then migration 0023 (timed), the same queries again, the bytes per row of one month in the
database, and ``history retain`` of the oldest month (timed, with the Parquet bytes per row).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from smartcity.analytics.retain import retain
from smartcity.hub.changes import ChangeFeed
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.temporal.service import TemporalQuery, TemporalService
from smartcity.storage import migrate, partitions
from smartcity.storage.engine import Database, normalise_url
from smartcity.storage.schema import history_archives

ENTITIES = 100
TYPE = "https://smartdatamodels.org/dataModel.Transportation/TrafficFlowObserved"
ATTR = "https://smartdatamodels.org/dataModel.Transportation/averageVehicleSpeed"
FIRST = 2025 * 12  # January 2025
DAY = 86_400_000_000
_LOAD = (
    "INSERT INTO attr_history (hid, attr, dataset_id, instance_id, observed_at, created_at,"
    " modified_at, num, value) SELECT h.hid, :attr, '', 'urn:ngsi-ld:attribute:instance:' ||"
    " gen_random_uuid(), t, t, t, 40 + (k % 30), jsonb_build_object('type', 'Property', 'value',"
    " 40 + (k % 30), 'unitCode', 'KMH', 'observedAt', to_char(to_timestamp(t / 1e6) AT TIME ZONE"
    " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) FROM history_entities h,"
    " generate_series(0::bigint, :per - 1) k,"
    " LATERAL (SELECT CAST(:lo AS bigint) + k * :step AS t) x"
)
_ROLLUP = (
    "INSERT INTO attr_history_hourly SELECT hid, attr, observed_at - observed_at % 3600000000,"
    " dataset_id, count(*), count(num), sum(num), sum(num * num), min(num), max(num),"
    " min(observed_at), max(observed_at), 'Property' FROM attr_history"
    " WHERE observed_at >= :lo AND observed_at < :hi GROUP BY 1, 2, 3, 4"
)


def run(
    url: str, *, month_rows: int, months: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    if not normalise_url(url).startswith("postgresql"):
        raise RuntimeError("partitions are PostgreSQL's: give --database postgresql://...")
    name = f"smartcity_bench_history_{os.getpid()}"
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(url.rsplit("/", 1)[0] + "/" + name)
    archive = Path(tempfile.mkdtemp(prefix="smartcity-bench-archive-"))
    try:
        return _measure(db, archive, month_rows, months, progress)
    finally:
        db.dispose()
        shutil.rmtree(archive, ignore_errors=True)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _measure(
    db: Database, archive: Path, month_rows: int, months: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    figures: dict[str, Any] = {"rows": months * month_rows, "months": months}
    with db.write() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    migrate.upgrade(db, "0022")
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO history_entities (tenant, entity_id, types, created_at, modified_at)"
                " SELECT '', 'urn:ngsi-ld:TrafficFlowObserved:d' || g, :types, 0, 0"
                " FROM generate_series(1, :n) g"
            ),
            {"types": f'["{TYPE}"]', "n": ENTITIES},
        )
    per = month_rows // ENTITIES
    for month in range(FIRST, FIRST + months):
        progress(f"loading {partitions.month_label(month)}")
        lo, hi = partitions.month_bounds(month)
        with db.write() as conn:
            params = {"attr": ATTR, "lo": lo, "step": (hi - lo) // per, "per": per}
            conn.execute(text(_LOAD), params)
            conn.execute(text(_ROLLUP), {"lo": lo, "hi": hi})
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    # The Temporal API reads history_archives, which 0023 makes: lend it for the first round.
    history_archives.create(db.engine)
    progress("queries, unpartitioned")
    figures["unpartitioned_ms"] = _queries(db)
    history_archives.drop(db.engine)
    figures["unpartitioned_bytes_per_row"] = _bytes_per_row(db, "attr_history")
    progress("migration 0023")
    started = time.perf_counter()
    migrate.upgrade(db)
    figures["migration_s"] = round(time.perf_counter() - started, 1)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    progress("queries, partitioned")
    figures["partitioned_ms"] = _queries(db)
    figures["partition_bytes_per_row"] = _bytes_per_row(
        db, partitions.partition_name("attr_history", FIRST)
    )
    figures["rollup_bytes_per_row"] = _bytes_per_row(
        db,
        partitions.partition_name("attr_history_hourly", FIRST),
        rows_of=partitions.partition_name("attr_history", FIRST),
    )
    progress("history retain of one month")
    keep = time.time_ns() // 1000 - partitions.month_start(FIRST + 1)
    started = time.perf_counter()
    result = retain(db, archive, keep_us=keep)
    figures["retain_s"] = round(time.perf_counter() - started, 1)
    done = result.archived[0]
    figures["retain_rows"] = done.rows
    figures["parquet_bytes_per_row"] = round(done.bytes / done.rows, 1)
    return figures


def _bytes_per_row(db: Database, relation: str, rows_of: str | None = None) -> int:
    with db.read() as conn:
        size = conn.execute(text(f"SELECT pg_total_relation_size('{relation}')")).scalar_one()
        n = conn.execute(text(f"SELECT count(*) FROM {rows_of or relation}")).scalar_one()
    return round(size / n)


def _queries(db: Database, repeat: int = 15) -> dict[str, float]:
    """Median milliseconds of four temporal reads through the hub's service (in process)."""
    temporal = TemporalService(db, EntityService(db, ChangeFeed()))
    july = partitions.month_start(FIRST + 6)
    day = TemporalQuery(timerel="between", time_at=july + 10 * DAY, end_time_at=july + 11 * DAY)
    month = TemporalQuery(
        timerel="between",
        time_at=july,
        end_time_at=partitions.month_start(FIRST + 7),
        aggr_methods=["avg", "max"],
        aggr_period=DAY,
    )
    one = "urn:ngsi-ld:TrafficFlowObserved:d7"
    reads: dict[str, Callable[[], object]] = {
        "one entity, one day of instances": lambda: temporal.retrieve("", one, day),
        "one entity, a month by day (avg, max)": lambda: temporal.retrieve("", one, month),
        "one entity, lastN=10": lambda: temporal.retrieve("", one, TemporalQuery(last_n=10)),
        "100 entities by type, one day": lambda: temporal.query(
            "", EntityQuery(types=[frozenset({TYPE})]), day, limit=ENTITIES
        ),
    }
    out: dict[str, float] = {}
    for label, read in reads.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
        out[label] = round(statistics.median(times) * 1000, 1)
    return out
