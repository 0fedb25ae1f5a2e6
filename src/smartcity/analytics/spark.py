"""Apache Spark behind the same ``Engine`` interface as DuckDB, for a city that outgrows one
machine: ``SparkEngine()`` runs a local Spark; ``SparkEngine(master="spark://host:7077")`` (or
``SMARTCITY_SPARK_MASTER``) a cluster. Needs the ``spark`` extra (pyspark) and a Java runtime.

Analyses are written once, in DuckDB's SQL dialect; ``translate`` turns it into Spark SQL with
sqlglot, then mends the few functions sqlglot leaves to a name Spark lacks or computes
differently (``time_bucket``, ``quantile_cont``, ``epoch``/``epoch_us``, ``to_timestamp``).
docs/analytics.md ("Engines: written once, run on DuckDB or Spark") says why this way and
what it costs; tests/analytics compare both engines' answers.

Both engines run with the session time zone UTC, so times bucket and print the same.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from smartcity.analytics.engine import _name, parquet_paths

MASTER_ENV = "SMARTCITY_SPARK_MASTER"
# DuckDB's time_bucket origin for sub-month widths: Monday 2000-01-03 00:00 UTC.
_BUCKET_ORIGIN_US = 946_857_600_000_000
_UNIT_US = {
    "microsecond": 1,
    "millisecond": 1_000,
    "second": 1_000_000,
    "minute": 60_000_000,
    "hour": 3_600_000_000,
    "day": 86_400_000_000,
    "week": 7 * 86_400_000_000,
}
_GLOB = re.compile(r"[*?\[{]")


class TranslationError(ValueError):
    """A DuckDB construct with no Spark equivalent here (the message names it)."""


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """Spark SQL for ``sql`` written in DuckDB's dialect."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise TranslationError(f"cannot parse the query as DuckDB SQL: {exc}") from None
    tree = tree.transform(_mend)
    return tree.sql(dialect="spark")


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _number(value: int | str) -> exp.Expression:
    return exp.Literal.number(value)


# The replacements are built as syntax trees, never by pasting SQL text around an operand:
# text loses the operand's grouping (``to_timestamp(t5 - t5 % 300)`` pasted into
# ``ROUND(... * 1000000)`` read as ``t5 - (t5 % 300) * 1000000``: every performance measure's
# ``period_start`` was wrong on Spark), and sqlglot adds no parentheses by precedence on its
# own, so an operand that is an operation, or a replacement that is one placed inside another
# (``2 / epoch(t)``), is wrapped in ``exp.paren``.
# sqlglot's transform does not visit inside a replacement, so each operand a replacement
# takes is mended itself first (``epoch(time_bucket(...))``).
def _mended(node: exp.Expression) -> exp.Expression:
    return node.copy().transform(_mend)


def _mend(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Div) and not isinstance(node.this, exp.Cast):
        # DuckDB divides in DOUBLE whatever the operands; Spark keeps DECIMAL literals
        # (``1.0 / 60.0``) in DECIMAL, rounded to 6 places: the 60 km/h delays were 1e-4 off.
        # The dividend as DOUBLE makes Spark divide as DuckDB does (integers too: both give
        # a fraction for ``/``).
        dividend = exp.Cast(this=_mended(node.this), to=exp.DataType.build("DOUBLE"))
        return exp.Div(this=dividend, expression=_mended(node.expression))
    if isinstance(node, exp.DateBin):  # time_bucket(width, ts[, origin])
        width = _interval_us(node.this)
        given = node.args.get("unit")
        origin = _origin_us(given) if given is not None else _BUCKET_ORIGIN_US
        us = _call("UNIX_MICROS", _mended(node.expression))
        since = exp.Sub(this=us.copy(), expression=_number(origin))
        start = exp.Sub(this=us, expression=_call("PMOD", since, _number(width)))
        return _call("TIMESTAMP_MICROS", start)
    if isinstance(node, exp.PercentileCont) and not isinstance(node.parent, exp.WithinGroup):
        # quantile_cont(x, q): Spark's percentile() interpolates linearly, as DuckDB does.
        return _call("PERCENTILE", _mended(node.this), _mended(node.expression))
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "epoch_us":
        return _call("UNIX_MICROS", *(_mended(e) for e in node.expressions))
    if isinstance(node, exp.TimeToUnix):  # epoch(ts): seconds with their fraction
        micros = _call("UNIX_MICROS", _mended(node.this))
        # DOUBLE, as DuckDB's epoch() (not Spark's DECIMAL for BIGINT / 1000000.0).
        as_double = exp.Cast(this=micros, to=exp.DataType.build("DOUBLE"))
        seconds = exp.Div(this=as_double, expression=_number("1000000.0"))
        return exp.paren(seconds, copy=False)
    if isinstance(node, exp.UnixToTime) and node.args.get("scale") is None:  # to_timestamp(s)
        micros = exp.Mul(this=exp.paren(_mended(node.this)), expression=_number(1_000_000))
        rounded = exp.Cast(this=_call("ROUND", micros), to=exp.DataType.build("BIGINT"))
        return _call("TIMESTAMP_MICROS", rounded)
    return node


def _interval_us(node: exp.Expression) -> int:
    """The width of ``INTERVAL '5 minutes'`` / ``INTERVAL 5 MINUTE`` in microseconds."""
    if isinstance(node, exp.Interval):
        text = f"{node.this.name} {node.unit.name if node.unit else ''}"
        match = re.fullmatch(r"\s*(\d+)\s*([a-z]+?)s?\s*", text.lower())
        if match and match.group(2) in _UNIT_US:
            return int(match.group(1)) * _UNIT_US[match.group(2)]
    raise TranslationError(
        f"time_bucket on Spark needs a fixed width (seconds to weeks), not {node.sql('duckdb')}"
    )


def _origin_us(node: exp.Expression) -> int:
    import datetime as dt

    value = node.this if isinstance(node, exp.Cast) else node
    if isinstance(value, exp.Literal) and value.is_string:
        t = dt.datetime.fromisoformat(value.name)
        t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
        return int(t.timestamp() * 1_000_000)
    raise TranslationError(f"time_bucket's origin must be a literal time, not {node.sql()}")


class SparkEngine:
    """Spark SQL over registered Parquet and Arrow tables; answers as Arrow tables."""

    name = "spark"

    def __init__(
        self,
        *,
        master: str | None = None,
        app_name: str = "smartcity-analytics",
        config: Mapping[str, str] | None = None,
    ) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise RuntimeError(
                "the Spark engine needs pyspark: pip install 'smartcity[spark]' (and a Java "
                "runtime, e.g. apt-get install default-jre-headless)"
            ) from None
        master = master or os.environ.get(MASTER_ENV) or "local[*]"
        settings: dict[str, str] = {
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.showConsoleProgress": "false",
            # Read columns of one name from Parquet files written at different times.
            "spark.sql.parquet.mergeSchema": "true",
        }
        if master.startswith("local"):
            # A local Spark listens on this machine only, with no web UI.
            settings |= {
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.host": "127.0.0.1",
                "spark.ui.enabled": "false",
            }
        settings |= dict(config or {})
        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        active = SparkSession.getActiveSession()
        self._owns_context = active is None
        # A session of its own (one JVM context shared): temporary views never collide.
        self._spark = builder.getOrCreate().newSession()
        for key, value in settings.items():
            if key.startswith("spark.sql."):
                self._spark.conf.set(key, value)
        self._spark.sparkContext.setLogLevel("ERROR")
        self._views: set[str] = set()
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The pyspark ``SparkSession`` (for work SQL cannot say)."""
        return self._spark

    def register_parquet(self, table: str, paths: str | Path | Sequence[str | Path]) -> None:
        files = parquet_paths(paths, globs=False)
        reader = self._spark.read
        base = _base_path(files)
        if base is not None:
            reader = reader.option("basePath", base)  # hive partitions below a glob
        frame = reader.parquet(*files)
        with self._lock:
            frame.createOrReplaceTempView(_name(table))
            self._views.add(table)

    def register_arrow(self, table: str, data: pa.Table) -> None:
        frame = self._spark.createDataFrame(data)
        with self._lock:
            frame.createOrReplaceTempView(_name(table))
            self._views.add(table)

    def query(self, sql: str) -> pa.Table:
        result: pa.Table = self._spark.sql(translate(sql)).toArrow()
        return _utc(result)

    def close(self) -> None:
        with self._lock:
            for view in self._views:
                self._spark.catalog.dropTempView(view)
            self._views.clear()
        if self._owns_context:
            self._spark.stop()


def _base_path(files: Sequence[str]) -> str | None:
    """The folder above the first glob of the paths (Spark finds hive partitions below it)."""
    bases = set()
    for f in files:
        parts = Path(f).parts
        cut = next((i for i, p in enumerate(parts) if _GLOB.search(p)), None)
        if cut is None:
            continue
        bases.add(str(Path(*parts[:cut])) if cut else ".")
    return bases.pop() if len(bases) == 1 else None


def _utc(table: pa.Table) -> pa.Table:
    """Spark's timestamps come back in the session zone: label them UTC, as DuckDB does."""
    fields = []
    changed = False
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz not in (None, "UTC"):
            fields.append(f.with_type(pa.timestamp(f.type.unit, tz="UTC")))
            changed = True
        else:
            fields.append(f)
    return table.cast(pa.schema(fields)) if changed else table
