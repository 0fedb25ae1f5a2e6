"""The database table behind one DataStore resource: its name, its SQLAlchemy ``Table``,
its DDL and the fast path for many rows.

Every identifier reaches SQL through SQLAlchemy's quoting (or the dialect's
``identifier_preparer`` for the bulk path): field ids are the publisher's words, Chinese
and spaces included, and never SQL. The table is named from a hash of the resource id, so a
resource id never reaches the database as a name either.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Connection, Index, Integer, MetaData, Table

from smartcity.opendata.datastore.fields import Field, column_type

ROW_ID = "_id"  # CKAN's own row id: every table has it, and keyset paging ends with it


def table_name(resource_id: str) -> str:
    return "ds_" + hashlib.sha256(resource_id.encode()).hexdigest()[:32]


def build(name: str, fields: Sequence[Field]) -> Table:
    table = Table(
        name,
        MetaData(),
        Column(
            ROW_ID,
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        *(Column(f.id, column_type(f.type)) for f in fields),
    )
    return table


def unique_index(table: Table, primary_key: Sequence[str]) -> Index:
    return Index(f"ux_{table.name}", *(table.c[k] for k in primary_key), unique=True)


def plain_index(table: Table, position: int, field_id: str) -> Index:
    return Index(f"ix_{table.name}_{position}", table.c[field_id])


def create(
    conn: Connection, table: Table, primary_key: Sequence[str], indexes: Sequence[str]
) -> None:
    table.create(conn)
    set_indexes(conn, table, primary_key, indexes, previous_pk=(), previous_indexes=())


def set_indexes(
    conn: Connection,
    table: Table,
    primary_key: Sequence[str],
    indexes: Sequence[str],
    *,
    previous_pk: Sequence[str],
    previous_indexes: Sequence[str],
) -> None:
    """Replace the primary key's unique index and the plain indexes when they changed."""
    if list(previous_pk) != list(primary_key):
        if previous_pk:
            unique_index(table, previous_pk).drop(conn)
        if primary_key:
            unique_index(table, primary_key).create(conn)
    if list(previous_indexes) != list(indexes):
        for position, field_id in enumerate(previous_indexes):
            plain_index(table, position, field_id).drop(conn)
        for position, field_id in enumerate(indexes):
            plain_index(table, position, field_id).create(conn)


def add_column(conn: Connection, table: Table, field: Field) -> None:
    quote = conn.dialect.identifier_preparer.quote
    ddl = column_type(field.type).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(field.id)} {ddl}")


def drop(conn: Connection, name: str) -> None:
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")


def _sqlite_value(value: Any) -> Any:
    """A Python value as SQLite holds it in the column SQLAlchemy's types read back."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _json_as_text(row: Sequence[Any], json_at: list[int]) -> list[Any]:
    """JSON values as JSON text (a JSON string too: "abc" is stored as '"abc"')."""
    out = list(row)
    for i in json_at:
        if out[i] is not None:
            out[i] = orjson.dumps(out[i]).decode()
    return out


def insert_rows(
    conn: Connection,
    table: Table,
    fields: Sequence[Field],
    rows: Iterable[Sequence[Any]],
) -> int:
    """Insert rows (Python values in ``fields`` order) in the open transaction, without
    SQLAlchemy's per-row processing: PostgreSQL's COPY through psycopg (the fast path of
    bulk loading: no statement per row, no parameter parsing), SQLite's executemany of one
    prepared INSERT. JSON values are JSON text on both. Returns the number of rows."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(f.id) for f in fields)
    json_at = [i for i, f in enumerate(fields) if f.type == "json"]
    if json_at:
        rows = (_json_as_text(row, json_at) for row in rows)
    count = 0
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    marks = ", ".join("?" for _ in fields)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"
    # Only bool, date and timestamp values need mapping (a column at a time, in C's loops):
    # the others are stored as they are.
    mapped_at = [i for i, f in enumerate(fields) if f.type in ("bool", "date", "timestamp")]
    for chunk in _chunks(rows, 1000):
        if mapped_at:
            columns = list(zip(*chunk, strict=True))
            for i in mapped_at:
                columns[i] = tuple(map(_sqlite_value, columns[i]))
            chunk = list(zip(*columns, strict=True))
        driver.executemany(sql, chunk)
        count += len(chunk)
    return count
