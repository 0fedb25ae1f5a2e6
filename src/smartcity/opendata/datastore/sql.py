"""``datastore_search_sql``: one read-only SELECT over DataStore tables, parsed before it runs.

The statement is parsed with sqlglot in the database's dialect and refused unless it is
exactly one query (SELECT, or set operations of SELECTs; CTEs allowed) whose every table is
a DataStore resource the caller may read (named by resource id, as in CKAN:
``SELECT * FROM "resource-id"``) or one of its own CTEs. Functions must be standard ones
sqlglot knows or on a short list: anything else (``pg_read_file``, ``pg_sleep``,
``set_config``, ``load_extension``, ``dblink`` ...) is refused by name, whatever it does.
``SELECT ... INTO`` and locking clauses are refused. The statement that runs is sqlglot's
rendering of the checked tree with the resource ids replaced by their tables' names, in a
read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``; SQLite ``PRAGMA
query_only``) with a time limit (``Database.read(budget=)``) and a row cap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlglot
from sqlalchemy.exc import DBAPIError
from sqlglot import exp
from sqlglot.errors import ParseError

from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.datastore.fields import to_json
from smartcity.opendata.datastore.store import DataStore
from smartcity.opendata.errors import ValidationFailed
from smartcity.storage.engine import QueryTimeout

# Functions sqlglot parses as "anonymous" that are harmless on both backends.
ALLOWED_ANONYMOUS = frozenset(
    {
        "printf", "instr", "ifnull", "nullif", "julianday", "strftime", "date", "time",
        "datetime", "unixepoch", "total", "group_concat", "char_length", "octet_length",
        "btrim", "ltrim", "rtrim", "initcap", "split_part", "to_char", "to_date",
        "to_timestamp", "to_number", "date_part", "age", "justify_days", "width_bucket",
        "percentile_cont", "percentile_disc", "mode", "string_agg", "array_agg", "json_agg",
        "jsonb_agg", "json_extract", "jsonb_extract_path_text", "json_extract_path_text",
        "regexp_replace", "regexp_matches", "translate", "md5", "sign", "trunc", "cbrt",
        "degrees", "radians", "pi", "random", "row_number", "rank", "dense_rank", "ntile",
        "lag", "lead", "first_value", "last_value", "nth_value", "percent_rank", "cume_dist",
    }
)  # fmt: skip
# Typed sqlglot functions that still reach outside the table or the session.
REFUSED_TYPED = (exp.ReadCSV, exp.ReadParquet) if hasattr(exp, "ReadParquet") else (exp.ReadCSV,)
REFUSED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command,
    exp.Into, exp.Lock, exp.Set, exp.Pragma, exp.Copy, exp.Merge, exp.TruncateTable,
)  # fmt: skip


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed.one("sql", message)


def check(sql: str, dialect: str, table_for: Callable[[str], str]) -> str:
    """The statement to run, or a Validation Error on ``sql`` saying what was refused.
    ``table_for(resource id)`` returns the physical table name (raising NotFound for a
    resource the caller may not read or that has no table)."""
    if not sql or not sql.strip():
        raise _refuse("Missing value: send one SELECT statement")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        raise _refuse(f"cannot read the SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise _refuse(f"send exactly one statement, not {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise _refuse(f"only SELECT is allowed, not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, REFUSED_NODES):
            raise _refuse(f"{node.key.upper()} is not allowed: this is a read-only SELECT")
        if isinstance(node, REFUSED_TYPED):
            raise _refuse(f"function {node.sql_name()} is not allowed")
        if isinstance(node, exp.Anonymous) and str(node.name).lower() not in ALLOWED_ANONYMOUS:
            raise _refuse(f"function {node.name}() is not allowed in datastore_search_sql")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse(f"{table.sql(dialect=dialect)} is not a DataStore table")
        if table.args.get("db") or table.args.get("catalog"):
            raise _refuse(
                f"{table.sql(dialect=dialect)}: name DataStore tables by resource id alone"
            )
        name = table.name
        if name.lower() in ctes and not table.this.quoted:
            continue
        if name.lower() in ctes:
            continue
        physical = table_for(name)
        alias = table.args.get("alias")
        table.set("this", exp.to_identifier(physical, quoted=True))
        if alias is None:
            # Columns written as "resource-id".field keep meaning the same table.
            table.set("alias", exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
    return tree.sql(dialect=dialect)


def run(
    store: DataStore, p: Principal, sql: str, *, timeout: float, row_cap: int
) -> dict[str, Any]:
    db = store.db

    def table_for(resource_id: str) -> str:
        return store.readable(p, resource_id).table.name

    statement = check(sql, "postgres" if db.is_postgres else "sqlite", table_for)
    try:
        with db.read(budget=timeout) as conn:
            driver: Any = conn.connection.driver_connection
            if db.is_postgres:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:
                driver.execute("PRAGMA query_only = ON")
            try:
                # exec_driver_sql: the statement is sqlglot's rendering, with no parameters;
                # a literal % must reach psycopg as %%.
                text = statement.replace("%", "%%") if db.is_postgres else statement
                result = conn.exec_driver_sql(text)
                names = list(result.keys())
                rows = result.fetchmany(row_cap + 1)
            finally:
                if not db.is_postgres:
                    driver.execute("PRAGMA query_only = OFF")
                else:
                    conn.rollback()
    except QueryTimeout:
        raise ValidationFailed.one(
            "sql", f"the query ran longer than {timeout:g} s and was stopped: narrow it"
        ) from None
    except DBAPIError as exc:
        message = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise ValidationFailed.one("sql", f"the database refused the query: {message}") from None
    truncated = len(rows) > row_cap
    records = [dict(zip(names, (to_json(v) for v in row), strict=True)) for row in rows[:row_cap]]
    out: dict[str, Any] = {
        "sql": sql,
        "fields": [{"id": n, "type": "text"} for n in names],
        "records": records,
    }
    if truncated:
        out["records_truncated"] = True
    return out
