"""``datastore_search``: a resource's rows by filters, words, fields, sort and page.

* ``filters``: ``{"field": value}`` is equality, ``{"field": [v1, v2]}`` any of the values,
  and CKAN 2.12's operators ``{"field": {"gte": 1, "lt": 10}}`` (``eq``, ``ne``, ``lt``,
  ``lte``, ``gt``, ``gte``, also with a ``$`` before them); values are read as the field's
  type, so ``"5"`` matches an int field's 5.
* ``q`` (a string: every word in some column; an object: each field's words in that field)
  and ``full_text`` (every word anywhere in the row) match case-insensitively as substrings
  of the values as text, on both backends alike: ``停車`` finds 停車場, ``park`` finds
  Parking. No stemming, no ranking.
* Paging: ``offset`` as CKAN, and a keyset ``cursor``: the answer's ``_links.next`` carries
  the last row's sort values, so the next page is an index range scan wherever it starts
  instead of a scan that skips ``offset`` rows.
"""

from __future__ import annotations

import base64
import csv
import io
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    cast,
    false,
    func,
    or_,
    select,
    true,
)

from smartcity.opendata.datastore import physical
from smartcity.opendata.datastore.fields import BadValue, to_json, to_python, to_text
from smartcity.opendata.datastore.store import Registered
from smartcity.opendata.errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 32_000  # CKAN's ckan.datastore.search.rows_max
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte")
RECORDS_FORMATS = ("objects", "lists", "csv", "tsv")
COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


@dataclass
class SearchParams:
    filters: dict[str, Any] = field(default_factory=dict)
    q: str | dict[str, str] | None = None
    full_text: str | None = None
    distinct: bool = False
    fields: list[str] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    cursor: str | None = None
    include_total: bool = True
    records_format: str = "objects"


def _typed(found: Registered, name: str, value: Any, what: str) -> Any:
    f = found.field(name)
    type_name = "int" if name == physical.ROW_ID else f.type if f else "text"
    try:
        return to_python(type_name, value)
    except BadValue as exc:
        raise ValidationFailed.one(what, f"{name}: {exc}") from None


def filter_clauses(found: Registered, filters: Any) -> list[ColumnElement[bool]]:
    if not isinstance(filters, dict):
        raise ValidationFailed.one("filters", 'must be an object: {"field": value}')
    table = found.table
    clauses: list[ColumnElement[bool]] = []
    for name, value in filters.items():
        if name not in table.c:
            raise ValidationFailed.one("filters", f"there is no field {name!r}")
        column = table.c[name]
        if isinstance(value, dict):
            if not value:
                raise ValidationFailed.one("filters", f"{name}: give at least one operator")
            for op, operand in value.items():
                key = op.lstrip("$")
                if key not in OPERATORS:
                    raise ValidationFailed.one(
                        "filters", f"{name}: unknown operator {op!r}; use {', '.join(OPERATORS)}"
                    )
                typed = _typed(found, name, operand, "filters")
                if typed is None:
                    if key not in ("eq", "ne"):
                        raise ValidationFailed.one("filters", f"{name}: {op} needs a value")
                    clauses.append(column.is_(None) if key == "eq" else column.is_not(None))
                else:
                    clauses.append(COMPARE[key](column, typed))
        elif isinstance(value, list):
            typed_values = [_typed(found, name, v, "filters") for v in value]
            present = [v for v in typed_values if v is not None]
            either = [column.in_(present)] if present else []
            if len(present) < len(typed_values):
                either.append(column.is_(None))
            clauses.append(or_(false(), *either))
        else:
            typed = _typed(found, name, value, "filters")
            clauses.append(column == typed if typed is not None else column.is_(None))
    return clauses


def _words(text: str) -> list[str]:
    return [w for w in text.lower().split() if w]


def _contains(column: Any, word: str) -> ColumnElement[bool]:
    return func.lower(cast(column, String)).contains(word, autoescape=True)


def word_clauses(found: Registered, params: SearchParams) -> list[ColumnElement[bool]]:
    table = found.table
    every = [table.c[f.id] for f in found.fields]
    clauses: list[ColumnElement[bool]] = []
    texts: list[tuple[list[Any], str]] = []
    if isinstance(params.q, dict):
        for name, words in params.q.items():
            if name not in table.c:
                raise ValidationFailed.one("q", f"there is no field {name!r}")
            texts.append(([table.c[name]], str(words)))
    elif params.q:
        texts.append((every, params.q))
    if params.full_text:
        texts.append((every, params.full_text))
    for columns, text in texts:
        for word in _words(text):
            clauses.append(or_(*(_contains(c, word) for c in columns)))
    return clauses


def parse_sort(found: Registered, raw: Any) -> list[tuple[str, bool]]:
    if raw is None or raw == "":
        return []
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    out: list[tuple[str, bool]] = []
    for part in parts:
        text = str(part).strip()
        descending = False
        lowered = text.lower()
        for suffix, desc in ((" desc", True), (" asc", False)):
            if lowered.endswith(suffix):
                text, descending = text[: -len(suffix)].strip(), desc
                break
        name = text[1:-1] if len(text) > 1 and text[0] == text[-1] == '"' else text
        if name not in found.table.c:
            raise ValidationFailed.one(
                "sort", f"there is no field {name!r}; sort by 'field [asc|desc], ...'"
            )
        out.append((name, descending))
    return out


def _order(sort: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The sort, ending with _id so every row has one place (what keyset paging needs);
    keys after _id could never decide anything and are left out."""
    out: list[tuple[str, bool]] = []
    for name, descending in sort:
        out.append((name, descending))
        if name == physical.ROW_ID:
            return out
    return [*out, (physical.ROW_ID, False)]


def encode_cursor(order: list[tuple[str, bool]], values: list[Any]) -> str:
    body = orjson.dumps({"s": order, "v": [to_json(v) for v in values]})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def _keyset(found: Registered, order: list[tuple[str, bool]], cursor: str) -> ColumnElement[bool]:
    """Rows after the cursor's row, in ``order`` (ascending NULLS LAST, descending NULLS
    FIRST, PostgreSQL's own defaults, made explicit so SQLite agrees)."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        saved = [(str(n), bool(d)) for n, d in body["s"]]
        values = list(body["v"])
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed.one("cursor", "is not a cursor this API gave") from None
    if saved != order or len(values) != len(order):
        raise ValidationFailed.one(
            "cursor", "belongs to another sort: send the same sort as the page it came from"
        )
    table = found.table
    either: list[ColumnElement[bool]] = []
    ties: list[ColumnElement[bool]] = []
    for (name, descending), raw in zip(order, values, strict=True):
        column = table.c[name]
        value = _typed(found, name, raw, "cursor")
        after: ColumnElement[bool]
        tie: ColumnElement[bool]
        if value is None:
            after = column.is_not(None) if descending else false()
            tie = column.is_(None)
        else:
            after = column < value if descending else or_(column > value, column.is_(None))
            tie = column == value
        either.append(and_(true(), *ties, after))
        ties.append(tie)
    return or_(*either)


@dataclass
class Page:
    fields: list[dict[str, Any]]
    records: Any
    total: int | None
    next_cursor: str | None


def query(
    found: Registered, params: SearchParams
) -> tuple[Select[Any], list[str], list[tuple[str, bool]]]:
    table = found.table
    names = params.fields or [physical.ROW_ID, *(f.id for f in found.fields)]
    for name in names:
        if name not in table.c:
            raise ValidationFailed.one("fields", f"there is no field {name!r}")
    where = [*filter_clauses(found, params.filters), *word_clauses(found, params)]
    order = [] if params.distinct else _order(params.sort)
    if params.distinct:
        stmt = select(*(table.c[n] for n in names)).distinct()
        order_by = [table.c[n].desc() if d else table.c[n].asc() for n, d in params.sort]
    else:
        extra = [n for n, _ in order if n not in names]
        stmt = select(*(table.c[n] for n in [*names, *extra]))
        order_by = [
            table.c[n].desc().nulls_first() if d else table.c[n].asc().nulls_last()
            for n, d in order
        ]
        if params.cursor:
            where.append(_keyset(found, order, params.cursor))
    stmt = stmt.where(and_(true(), *where)).order_by(*order_by)
    return stmt, names, order


def search(conn: Connection, found: Registered, params: SearchParams) -> Page:
    stmt, names, order = query(found, params)
    page = stmt.limit(params.limit).offset(0 if params.cursor else params.offset)
    rows = conn.execute(page).all()
    total = None
    if params.include_total:
        total = conn.execute(
            select(func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
    next_cursor = None
    if order and rows:
        last = rows[-1]._mapping
        next_cursor = encode_cursor(order, [last[found.table.c[n]] for n, _ in order])
    width = len(names)
    values = [[to_json(v) for v in tuple(row)[:width]] for row in rows]
    by_id = {f.id: f for f in found.fields}
    fields_out = [
        {"id": physical.ROW_ID, "type": "int"} if n == physical.ROW_ID else by_id[n].as_dict()
        for n in names
    ]
    return Page(
        fields_out, format_records(names, values, rows, params.records_format), total, next_cursor
    )


def format_records(names: list[str], values: list[list[Any]], rows: Any, fmt: str) -> Any:
    if fmt == "lists":
        return values
    if fmt in ("csv", "tsv"):
        out = io.StringIO()
        writer = csv.writer(out, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
        for row in rows:
            writer.writerow([to_text(v) for v in tuple(row)[: len(names)]])
        return out.getvalue()
    return [dict(zip(names, v, strict=True)) for v in values]


def links(base: str, resource_id: str, params: SearchParams, page: Page) -> dict[str, str]:
    """CKAN's ``_links``: ``start`` (this search from the top) and ``next`` (the page after
    this one: by keyset when the search has an order, by offset for ``distinct``)."""
    query_args: dict[str, Any] = {"resource_id": resource_id}
    if params.filters:
        query_args["filters"] = orjson.dumps(params.filters).decode()
    if isinstance(params.q, dict):
        query_args["q"] = orjson.dumps(params.q).decode()
    elif params.q:
        query_args["q"] = params.q
    if params.full_text:
        query_args["full_text"] = params.full_text
    if params.fields:
        query_args["fields"] = ",".join(params.fields)
    if params.sort:
        query_args["sort"] = ", ".join(f"{n} {'desc' if d else 'asc'}" for n, d in params.sort)
    if params.distinct:
        query_args["distinct"] = "true"
    if params.limit != DEFAULT_LIMIT:
        query_args["limit"] = params.limit
    if params.records_format != "objects":
        query_args["records_format"] = params.records_format
    start = f"{base}?{urlencode(query_args)}"
    if page.next_cursor is not None:
        nxt = {**query_args, "cursor": page.next_cursor}
    elif params.cursor and not params.distinct:
        nxt = {**query_args, "cursor": params.cursor}  # an empty page: stay at the end
    else:
        nxt = {**query_args, "offset": params.offset + params.limit}
    return {"start": start, "next": f"{base}?{urlencode(nxt)}"}


def stream(
    conn: Connection, found: Registered, params: SearchParams
) -> Iterator[tuple[list[str], list[Any]]]:
    """Rows for a dump, fetched in batches through a server-side cursor (bounded memory)."""
    stmt, names, _ = query(found, params)
    if params.limit:
        stmt = stmt.limit(params.limit)
    if params.offset:
        stmt = stmt.offset(params.offset)
    result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
    for row in result:
        yield names, list(tuple(row)[: len(names)])
