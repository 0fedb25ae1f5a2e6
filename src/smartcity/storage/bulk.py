"""Bulk writes through the driver's ``executemany``, for the ingestion hot path.

Why not ``conn.execute(insert(table), rows)``: SQLAlchemy then builds and type-processes every
parameter of every row in Python (``_init_compiled`` and ``construct_params``). At 20,000
history rows/s that was a quarter of the ingesting process's CPU (py-spy,
docs/performance.md). Here a statement is compiled once per dialect to the driver's own SQL
with positional parameters, and rows go to ``cursor.executemany`` as tuples that are already in
the driver's types: integers, floats, strings, and JSON as text (both SQLite's JSON text
column and PostgreSQL's jsonb accept it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable


def json_text(value: Any) -> str:
    """A JSON column's value as the driver takes it (the engine's own serialiser)."""
    return orjson.dumps(value).decode()


_compiled: dict[tuple[Executable, str, tuple[str, ...]], str] = {}


def compiled(stmt: Executable, dialect: Dialect, columns: tuple[str, ...]) -> str:
    """``stmt`` as driver SQL whose parameters are ``columns`` in that order (built once)."""
    key = (stmt, dialect.name, columns)
    sql = _compiled.get(key)
    if sql is None:
        # psycopg takes both %s and %(name)s; positional lets rows be plain tuples.
        style = "format" if dialect.name == "postgresql" else "qmark"
        positional: Any = type(dialect)(paramstyle=style)  # type: ignore[call-arg]
        comp = stmt.compile(dialect=positional)  # type: ignore[attr-defined]
        order = tuple(comp.positiontup or ())
        if order != columns:
            raise ValueError(f"statement parameters are {order}, expected {columns}")
        sql = _compiled[key] = str(comp.string)
    return sql


def execute_many(
    conn: Connection, stmt: Executable, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``stmt`` once per row, in the open transaction, without per-row processing."""
    if rows:
        sql = compiled(stmt, conn.dialect, columns)
        conn.exec_driver_sql(sql, list(rows))
