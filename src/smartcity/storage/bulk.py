"""Bulk writes: many rows in one round trip, for ingestion and batch operations.

Why not ``conn.execute(insert(table), rows)``: SQLAlchemy then builds and type-processes every
parameter of every row in Python (``_init_compiled`` and ``construct_params``). At 20,000
history rows/s that was a quarter of the ingesting process's CPU (py-spy,
docs/performance.md). Here a statement is compiled once per dialect to the driver's own SQL
with positional parameters, and rows go to ``cursor.executemany`` as tuples that are already in
the driver's types: integers, floats, strings, and JSON as text (both SQLite's JSON text
column and PostgreSQL's jsonb accept it).

On PostgreSQL an INSERT of many rows goes further: its ``VALUES (...)`` becomes ``SELECT ...
FROM json_to_recordset(%s::json) AS x(column type, ...)`` and the rows travel as one JSON
document that orjson writes, so a thousand rows are one statement, one round trip and one plan.
Measured against the alternatives (docs/performance.md): psycopg's executemany sends one
statement per row; a multi-row VALUES is re-parsed by psycopg for every batch; ``unnest`` of
one array per column spends its time in psycopg's pure-Python text array dumper.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert


def json_text(value: Any) -> str:
    """A JSON column's value as the driver takes it (the engine's own serialiser)."""
    return orjson.dumps(value).decode()


_compiled: dict[tuple[Executable, str, tuple[str, ...]], str] = {}


def compiled(stmt: Executable, dialect: Dialect, columns: tuple[str, ...]) -> str:
    """``stmt`` as driver SQL whose parameters are ``columns`` in that order (built once); an
    INSERT on PostgreSQL takes all its rows at once (see the module's docstring)."""
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
        sql = str(comp.string)
        if dialect.name == "postgresql" and isinstance(stmt, Insert):
            sql = _as_recordset_insert(sql, stmt.table, columns, dialect)  # type: ignore[arg-type]
        _compiled[key] = sql
    return sql


# psycopg's dialect writes some parameters with a cast: %s::VARCHAR
_VALUES = re.compile(r"VALUES \((?:%s(?:::[\w ]+(?:\(\d+\))?)?(?:, )?)+\)")


def _as_recordset_insert(sql: str, table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """``INSERT ... VALUES (%s, ...)`` as ``INSERT ... SELECT ... FROM json_to_recordset``."""
    names = ", ".join(f'"{c}"' for c in columns)
    types = ", ".join(f'"{c}" {table.c[c].type.compile(dialect=dialect)}' for c in columns)
    select = f"SELECT {names} FROM json_to_recordset(%s::json) AS x({types})"
    rewritten, n = _VALUES.subn(lambda _m: select, sql, count=1)
    if n != 1:
        raise ValueError(f"cannot rewrite as a recordset insert: {sql}")
    return rewritten


@cache
def _json_columns(table: Table, columns: tuple[str, ...]) -> tuple[bool, ...]:
    return tuple(isinstance(table.c[c].type.as_generic(), JSON) for c in columns)


def _recordset(table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> bytes:
    """The rows as the JSON document ``json_to_recordset`` reads; JSON columns, which the rows
    hold as JSON text already, are embedded as they are."""
    is_json = _json_columns(table, columns)
    return orjson.dumps(
        [
            {
                c: orjson.Fragment(v) if j and v is not None else v
                for c, j, v in zip(columns, is_json, row, strict=True)
            }
            for row in rows
        ]
    )


def execute_many(
    conn: Connection, stmt: Executable, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``stmt`` for every row, in the open transaction, without per-row processing: an
    INSERT on PostgreSQL once for all rows (json_to_recordset), anything else once per row."""
    if not rows:
        return
    sql = compiled(stmt, conn.dialect, columns)
    if conn.dialect.name == "postgresql" and isinstance(stmt, Insert):
        table: Table = stmt.table  # type: ignore[assignment]
        conn.exec_driver_sql(sql, (_recordset(table, columns, rows).decode(),))
    else:
        conn.exec_driver_sql(sql, list(rows))


@cache
def _insert_returning(table: Table, columns: tuple[str, ...], returning: tuple[str, ...]) -> Insert:
    """Built once per shape (``compiled`` caches by statement)."""
    values = insert(table).values({c: bindparam(c) for c in columns})
    return values.returning(*(table.c[c] for c in returning))


def insert_returning(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order, in the driver's types) and return the
    ``returning`` columns of each inserted row, in no promised order: callers match them to
    their rows by a key among ``returning``. PostgreSQL: one recordset statement; SQLite: the
    driver's cursor row by row (its executemany returns nothing; a local call is cheap)."""
    if not rows:
        return []
    sql = compiled(_insert_returning(table, columns, returning), conn.dialect, columns)
    if conn.dialect.name == "postgresql":
        params = (_recordset(table, columns, rows).decode(),)
        return [tuple(row) for row in conn.exec_driver_sql(sql, params)]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return [tuple(cursor.execute(sql, row).fetchone()) for row in rows]
    finally:
        cursor.close()


def among(
    column: ColumnElement[Any], values: Sequence[Any], dialect: Dialect | str
) -> ColumnElement[bool]:
    """``column IN values`` for a batch's keys. On PostgreSQL as ``IN (SELECT unnest(array))``
    with the keys in one parameter, which the planner joins (hash or index lookups): an IN
    list of hundreds of parameters, or ``= ANY(array)`` in a prepared statement's generic plan,
    is checked row by row against the whole list (a growing table under batch load: 186 ms for
    500 keys against ~2 ms)."""
    if (dialect if isinstance(dialect, str) else dialect.name) == "postgresql":
        keys = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column.in_(select(func.unnest(keys)).scalar_subquery())
    # SQLite: the keys as one JSON array (json_each), so that the statement is the same for
    # every batch and SQLAlchemy compiles it once (an expanding IN list is rendered anew for
    # each call: 8 % of a group commit's time).
    keys_json = func.json_each(bindparam(None, json_text(list(values)))).table_valued("value")
    return column.in_(select(keys_json.c.value).scalar_subquery())


def among_param(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``among`` with the keys in the named parameter ``name`` (pass ``keys_param(values,
    dialect)`` at execution), for statements built once rather than per call: building
    ``among``'s expression was most of a small batch's statement cost (~1 ms a call)."""
    if dialect == "postgresql":
        keys = bindparam(name, type_=postgresql.ARRAY(column.type))
        return column.in_(select(func.unnest(keys)).scalar_subquery())
    keys_json = func.json_each(bindparam(name)).table_valued("value")
    return column.in_(select(keys_json.c.value).scalar_subquery())


def keys_param(values: Sequence[Any], dialect: str) -> Any:
    """The value of ``among_param``'s parameter: a list on PostgreSQL, JSON text on SQLite."""
    return list(values) if dialect == "postgresql" else json_text(list(values))
