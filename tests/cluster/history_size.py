"""What a device reading costs on disk in PostgreSQL: the sizing table of docs/deploy.md.

Writes ``readings`` readings of ``devices`` devices (one numeric value each, every 30 s, as a
traffic detector reports) through the ingestion writer, exactly as a node commits them
(ledger, latest state, history instance, hourly rollup), into a scratch database; then
``VACUUM ANALYZE`` and each table's size with its indexes and TOAST
(``pg_total_relation_size``), per reading; and the same history as Parquet
(`smartcity history export`), per reading.

    PYTHONPATH=src:. python -m tests.cluster.history_size [ADMIN_URL] [--readings 300000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from smartcity.bench.harness import fresh_database
from smartcity.bench.ingest import _register
from smartcity.config import Settings
from smartcity.hub.runtime import build_hub
from smartcity.hub.timeutil import now_us
from smartcity.live.ingest.readings import parse_reading
from smartcity.live.ingest.runtime import IngestConfig, build_ingest
from smartcity.storage.engine import Database, normalise_url

# What grows with every reading (history_entities and entities grow with devices only).
TABLES = ("attr_history", "attr_history_hourly", "live_readings")
PERIOD_MS = 30_000


def _sizes(url: str) -> dict[str, int]:
    """Each table's bytes with its indexes and TOAST, and attr_history's indexes alone."""
    engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
            sizes = {
                t: int(conn.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar_one())
                for t in TABLES
            }
            sizes["attr_history indexes"] = int(
                conn.execute(text("SELECT pg_indexes_size('attr_history')")).scalar_one()
            )
            return sizes
    finally:
        engine.dispose()


def _rollup_row_bytes(url: str) -> float:
    engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM FULL attr_history_hourly"))
            size = conn.execute(text("SELECT pg_total_relation_size('attr_history_hourly')"))
            rows = conn.execute(text("SELECT count(*) FROM attr_history_hourly"))
            return round(int(size.scalar_one()) / int(rows.scalar_one()), 1)
    finally:
        engine.dispose()


def _parquet_bytes(url: str) -> int:
    """The history as `smartcity history export` writes it for the analytics (and as the
    archive keeps it): the files' bytes."""
    with tempfile.TemporaryDirectory(prefix="smartcity-size-") as out:
        subprocess.run(
            [sys.executable, "-m", "smartcity", "history", "export", "--out", out,
             "--settle", "0", "--database", url],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        return sum(f.stat().st_size for f in Path(out).rglob("*.parquet"))


def measure(admin_url: str, readings: int, devices: int) -> dict[str, Any]:
    with fresh_database(admin_url) as db_url:
        db = Database(db_url)
        hub = build_hub(Settings(database_url=db_url), db)
        ingest = build_ingest(hub, IngestConfig())
        sensors = [d for d, _ in _register(ingest, devices)]
        writer = ingest.writer
        start_ms = now_us() // 1000 - readings // devices * PERIOD_MS - 3_600_000

        def batch(first: int, last: int) -> list[Any]:
            return [
                parse_reading(
                    sensors[i % devices],
                    {"t": (start_ms + i // devices * PERIOD_MS) / 1000, "value": (i * 7) % 1000},
                    now_us(),
                )
                for i in range(first, last)
            ]

        writer._commit(batch(0, devices))  # the entities' first state: not counted
        before = _sizes(db_url)
        for first in range(devices, devices + readings, 5_000):
            writer._commit(batch(first, min(first + 5_000, devices + readings)))
        after = _sizes(db_url)
        db.dispose()
        rollup = _rollup_row_bytes(db_url)
        parquet = _parquet_bytes(db_url)
    per_reading = {t: round((after[t] - before[t]) / readings, 1) for t in after}
    return {
        "readings": readings,
        "devices": devices,
        "bytes_per_reading": per_reading,
        "total_bytes_per_reading": round(sum(per_reading[t] for t in TABLES), 1),
        # A rollup row is updated by every reading of its hour: the table above carries the
        # dead versions autovacuum has not reused yet; compacted, one series-hour costs this.
        "bytes_per_rollup_row_compacted": rollup,
        "parquet_bytes_per_reading": round(parquet / (readings + devices), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "admin_url",
        nargs="?",
        default=os.environ.get(
            "SMARTCITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--devices", type=int, default=1_000)
    args = parser.parse_args()
    print(measure(args.admin_url, args.readings, args.devices))


if __name__ == "__main__":
    main()
