"""The engines an analysis runs on, behind one small interface.

An analysis registers its inputs as named tables (Parquet files or Arrow tables) and asks
questions in SQL, written in DuckDB's dialect; the answers come back as Arrow tables. DuckDB
runs in process and needs nothing installed. Other engines (Spark) implement the same
interface and translate the SQL (see ``spark.py`` when present); the analyses' tests run on
every engine and compare the answers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa


class Engine(Protocol):
    """What an analysis needs from an engine."""

    name: str

    def register_parquet(self, table: str, paths: str | Path | Sequence[str | Path]) -> None:
        """``table`` reads these Parquet files (globs allowed; hive partitions become columns)."""

    def register_arrow(self, table: str, data: pa.Table) -> None:
        """``table`` reads this Arrow table."""

    def query(self, sql: str) -> pa.Table:
        """Run ``sql`` (DuckDB's dialect) over the registered tables."""

    def close(self) -> None: ...


class DuckDBEngine:
    """DuckDB in process: the default engine."""

    name = "duckdb"

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self._con = duckdb.connect(":memory:")
        # Times bucket and print in UTC whatever the machine's zone, as on Spark.
        self._con.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        self._lock = threading.Lock()  # one connection: one statement at a time
        self._arrow: dict[str, pa.Table] = {}

    def register_parquet(self, table: str, paths: str | Path | Sequence[str | Path]) -> None:
        files = parquet_paths(paths, globs=True)
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        with self._lock:
            self._con.execute(
                f'CREATE OR REPLACE VIEW "{_name(table)}" AS SELECT * FROM '
                f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"
            )

    def register_arrow(self, table: str, data: pa.Table) -> None:
        with self._lock:
            self._arrow[table] = data  # DuckDB reads it in place: keep it alive
            self._con.register(_name(table), data)

    def query(self, sql: str) -> pa.Table:
        with self._lock:
            return self._con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self._con.close()


def _name(table: str) -> str:
    if not table.replace("_", "").isalnum():
        raise ValueError(f"table names are letters, digits and _: {table!r}")
    return table


def parquet_paths(paths: str | Path | Sequence[str | Path], *, globs: bool) -> list[str]:
    """The paths as strings; with ``globs``, a folder stands for every Parquet file below it
    (``smartcity history export``'s output folder can be registered as it is)."""
    listed = [paths] if isinstance(paths, str | Path) else list(paths)
    out = []
    for p in listed:
        if globs and Path(p).is_dir():
            out.append(str(Path(p) / "**" / "*.parquet"))
        else:
            out.append(str(p))
    return out


ENGINE_ENV = "SMARTCITY_ANALYTICS_ENGINE"
ENGINES = ("duckdb", "spark")


def default_engine() -> Engine:
    return DuckDBEngine()


def open_engine(name: str | None = None) -> Engine:
    """The engine called ``name`` (``duckdb`` or ``spark``; default $SMARTCITY_ANALYTICS_ENGINE,
    else duckdb), for commands with an ``--engine`` option."""
    import os

    chosen = (name or os.environ.get(ENGINE_ENV) or "duckdb").lower()
    if chosen == "duckdb":
        return DuckDBEngine()
    if chosen == "spark":
        from smartcity.analytics.spark import SparkEngine

        return SparkEngine()
    raise ValueError(f"unknown analytics engine {chosen!r}: use one of {', '.join(ENGINES)}")
