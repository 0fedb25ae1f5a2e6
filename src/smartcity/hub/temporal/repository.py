"""SQL over the temporal evolution: ``history_entities``, ``attr_history`` and the hourly rollup.

Functions take an open connection; the service decides the transaction boundaries. Every read
is one statement for a whole page of entities (never one per entity), and every instance read
goes through ``ix_attr_history_series (hid, attr, observed_at)`` or the rollup's primary key.

Aggregations are computed entirely in SQL, one row per (entity, attribute, datasetId,
period) with the requested methods' values; Python only reshapes the rows. With
timeproperty=observedAt they read ``attr_history_hourly``, the hourly rollup that
``add_to_rollup`` keeps exact in every writing transaction, and the instances only for the
partial hours at the ends of the requested interval.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    extract,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from smartcity.hub.types_expr import TypeSelection
from smartcity.storage import bulk, schema

H = schema.history_entities
AH = schema.attr_history
HR = schema.attr_history_hourly

HOUR = 3_600_000_000  # microseconds
TIME_COLUMNS = {
    "observedAt": AH.c.observed_at,
    "createdAt": AH.c.created_at,
    "modifiedAt": AH.c.modified_at,
    # Only the records of deletions have one (see ``insert_deletions``).
    "deletedAt": AH.c.deleted_at,
}
ENTITY_COLUMNS = (
    H.c.hid,
    H.c.entity_id,
    H.c.types,
    H.c.scope,
    H.c.created_at,
    H.c.modified_at,
    H.c.deleted_at,
)
# The members that can carry an attribute's value, for distinctCount (see entity.VALUE_KEY).
_VALUE_MEMBERS = ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList")


def hour_of(t: int) -> int:
    return t - t % HOUR  # Python's % floors, so this is right before 1970 too


# -- entities ----------------------------------------------------------------------------------


@dataclass
class HistoryFilter:
    """Selects entities by their history (they need not exist in the latest state any more)."""

    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    types: TypeSelection | None = None
    attrs: Sequence[str] | None = None  # expanded; at least one of them in the history
    # Entity ids that passed the latest-state filters (q, scopeQ, geo); None = no such filter.
    only_ids: Collection[str] | None = None


def get_entity(conn: Connection, tenant: str, entity_id: str, *, for_update: bool = False) -> Any:
    """The history entity's row (hid, entity_id, types, ...), or None."""
    stmt = select(*ENTITY_COLUMNS).where(H.c.tenant == tenant, H.c.entity_id == entity_id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def find_entities(
    conn: Connection,
    tenant: str,
    flt: HistoryFilter,
    *,
    limit: int,
    offset: int,
    count: bool,
) -> tuple[list[Row[Any]], int | None]:
    """A page of history entities in creation order, and the total if ``count``."""
    if flt.only_ids is not None and not flt.only_ids:
        return [], (0 if count else None)
    where = _where(conn.dialect.name, tenant, flt)
    rows: list[Row[Any]] = []
    if limit > 0:
        stmt = select(*ENTITY_COLUMNS).where(*where).order_by(H.c.hid).limit(limit).offset(offset)
        rows = list(conn.execute(stmt))
    total = None
    if count:
        total = conn.execute(select(func.count()).select_from(H).where(*where)).scalar_one()
    return rows, total


def has_any_attr(conn: Connection, hid: int, attrs: Sequence[str]) -> bool:
    stmt = select(literal(1)).where(AH.c.hid == hid, AH.c.attr.in_(list(attrs))).limit(1)
    return conn.execute(stmt).first() is not None


def _where(dialect: str, tenant: str, flt: HistoryFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [H.c.tenant == tenant]
    if flt.ids:
        clauses.append(H.c.entity_id.in_(list(flt.ids)))
    if flt.only_ids is not None:
        clauses.append(H.c.entity_id.in_(list(flt.only_ids)))
    if flt.id_pattern:
        # The same matching as the latest-state repository, so both APIs agree.
        if dialect == "postgresql":
            from smartcity.hub.query.qregex import to_postgres

            clauses.append(H.c.entity_id.op("~")(to_postgres(flt.id_pattern)))
        else:
            clauses.append(func.regexp(flt.id_pattern, H.c.entity_id) == 1)
    if flt.types:
        clauses.append(or_(*(_has_types(dialect, sorted(req)) for req in flt.types)))
    if flt.attrs:
        # A prefix of ix_attr_history_series: one index probe per entity.
        clauses.append(exists().where(AH.c.hid == H.c.hid, AH.c.attr.in_(list(flt.attrs))))
    return clauses


def _has_types(dialect: str, required: list[str]) -> ColumnElement[bool]:
    """The entity has (had) every type in ``required``; types are a JSON array of IRIs."""
    if dialect == "postgresql":
        return type_coerce(H.c.types, JSONB).contains(required)
    checks = []
    for etype in required:
        each = func.json_each(H.c.types).table_valued("value")
        checks.append(exists(select(literal(1)).select_from(each).where(each.c.value == etype)))
    return and_(*checks)


# -- instances ---------------------------------------------------------------------------------


@dataclass
class Series:
    """Which instances: entities, attributes, datasets and a half-open time range [lo, hi)."""

    hids: Sequence[int]
    attrs: Sequence[str] | None = None  # expanded; None = all
    omit: Collection[str] | None = None  # expanded attribute names to leave out
    datasets: Sequence[str] | None = None  # "" is the default instance; None = all
    time_property: str = "observedAt"
    lo: int | None = None
    hi: int | None = None


def _series_where(table: Any, time_col: Any, s: Series) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [table.c.hid.in_(list(s.hids))]
    if table is AH:
        # The records of deletions answer timeproperty=deletedAt, and only it: they have no
        # value to show or aggregate at an observedAt, createdAt or modifiedAt.
        deleted = s.time_property == "deletedAt"
        clauses.append(AH.c.deleted_at.is_not(None) if deleted else AH.c.deleted_at.is_(None))
    if s.attrs is not None:
        clauses.append(table.c.attr.in_(list(s.attrs)))
    if s.omit:
        clauses.append(table.c.attr.not_in(list(s.omit)))
    if s.datasets is not None:
        clauses.append(table.c.dataset_id.in_(list(s.datasets)))
    if s.lo is not None:
        clauses.append(time_col >= s.lo)
    if s.hi is not None:
        clauses.append(time_col < s.hi)
    return clauses


# SQLite allows at most 500 SELECTs in one UNION ALL.
_SERIES_PER_STATEMENT = 250


def fetch_instances(
    conn: Connection, s: Series, *, per_series: int, newest_first: bool
) -> list[Row[Any]]:
    """At most ``per_series`` instances of each (entity, attribute, datasetId), the newest or
    the oldest ones, in (hid, attr, dataset_id, time) order.

    One ``ORDER BY time LIMIT n`` per series, as a UNION ALL: each is a short walk along
    ix_attr_history_series from one end of the range, so lastN=1 over years of history reads
    one row per series (a window function would number every instance in the range)."""
    t = TIME_COLUMNS[s.time_property]
    order = (t.desc(), AH.c.iid.desc()) if newest_first else (t.asc(), AH.c.iid.asc())
    columns = (
        AH.c.iid,
        AH.c.hid,
        AH.c.attr,
        AH.c.dataset_id,
        AH.c.instance_id,
        t.label("at"),  # not "t": Row.t is the row as a tuple
        AH.c.created_at,
        AH.c.modified_at,
        AH.c.deleted_at,
        AH.c.value,
    )
    keys = series_keys(conn, s)
    rows: list[Row[Any]] = []
    for start in range(0, len(keys), _SERIES_PER_STATEMENT):
        parts = []
        for hid, attr, dataset_id in keys[start : start + _SERIES_PER_STATEMENT]:
            one = replace(s, hids=[hid], attrs=[attr], omit=None, datasets=[dataset_id])
            latest = select(*columns).where(*_series_where(AH, t, one))
            parts.append(select(latest.order_by(*order).limit(per_series).subquery()))
        both = union_all(*parts) if len(parts) > 1 else parts[0]
        rows.extend(conn.execute(both))
    rows.sort(key=lambda r: (r.hid, r.attr, r.dataset_id, r.at, r.iid))
    return rows


def series_keys(conn: Connection, s: Series) -> list[tuple[int, str, str]]:
    """The (hid, attr, dataset_id) series with instances, from the rollup (cheap: one row per
    series and hour). With observedAt only those with an hour overlapping [s.lo, s.hi)."""
    if not s.hids:
        return []
    if s.time_property == "deletedAt":  # deletions are not rolled up: few, read them
        key = (AH.c.hid, AH.c.attr, AH.c.dataset_id)
        stmt = select(*key).distinct().where(*_series_where(AH, AH.c.deleted_at, s))
        return sorted((hid, attr, ds) for hid, attr, ds in conn.execute(stmt.order_by(*key)))
    if s.time_property == "observedAt":
        s = replace(s, lo=None if s.lo is None else hour_of(s.lo))
    else:
        s = replace(s, lo=None, hi=None)
    key = (HR.c.hid, HR.c.attr, HR.c.dataset_id)
    stmt = select(*key).distinct().where(*_series_where(HR, HR.c.hour, s)).order_by(*key)
    return [(hid, attr, dataset_id) for hid, attr, dataset_id in conn.execute(stmt)]


# -- aggregation -------------------------------------------------------------------------------


def _bucket(time_col: Any, origin: int, period: int) -> Any:
    """The period index of a time. Integers are inlined (they are ours, not the client's) so
    that the SELECT and GROUP BY expressions are textually equal, as PostgreSQL requires."""
    if not period:
        return literal_column("0", BigInteger)
    # t >= origin always holds, so SQL's truncating integer division is a floor here.
    return (time_col - literal_column(f"({int(origin)})", BigInteger)) // literal_column(
        str(int(period)), BigInteger
    )


# An hour boundary before any stored time: (t - _HOUR_ORIGIN) is never negative, so SQL's
# truncating division floors.
_HOUR_ORIGIN = -(62_135_596_800_000_000 // HOUR + 1) * HOUR


def month_number(time_col: Any, dialect: str) -> Any:
    """The UTC calendar month of a time in microseconds, counted from January of year 0
    (year * 12 + month - 1), in SQL. Months start on an hour, so the month of the hour's start
    is the month of the time: whole seconds, exact, for the date functions."""
    hours = (time_col - literal_column(f"({_HOUR_ORIGIN})", BigInteger)) // literal_column(
        str(HOUR), BigInteger
    )
    seconds = hours * literal_column("3600", BigInteger) + literal_column(
        f"({_HOUR_ORIGIN // 1_000_000})", BigInteger
    )
    if dialect == "postgresql":
        stamp = func.timezone(literal_column("'UTC'"), func.to_timestamp(seconds))
        year = cast(extract("year", stamp), BigInteger)
        month = cast(extract("month", stamp), BigInteger)
    else:
        unixepoch: Any = literal_column("'unixepoch'")
        year = cast(func.strftime(literal_column("'%Y'"), seconds, unixepoch), BigInteger)
        month = cast(func.strftime(literal_column("'%m'"), seconds, unixepoch), BigInteger)
    return year * literal_column("12", BigInteger) + month - literal_column("1", BigInteger)


def aggregate(
    conn: Connection,
    s: Series,
    *,
    methods: Sequence[str],
    origin: int,
    period: int,
    months: int = 0,
    hours: tuple[int | None, int | None] | None = None,
) -> dict[tuple[int, str, str], Columns]:
    """One statement computing the aggregation ``methods`` per (entity, attribute, datasetId,
    period). Returns, per (hid, attr, dataset_id), the attribute type (None when read from
    the instances: see ``series_kinds``) and columns, the periods in no particular order:
    period index (with ``months``: the period's first calendar month // months, see
    ``month_number``), then (with ``period`` and ``months`` 0 only) the earliest and latest
    time, then one value per method (None where it does not apply; stddev comes back as the
    variance, SQLite has no sqrt).

    With ``hours`` = [lo, hi) (whole hours within the series' range, and periods made of
    whole hours or calendar months), the rollup answers for those hours and the instances
    only for the partial hours at the ends of the range. Without, every instance is read
    (distinctCount, createdAt, modifiedAt, or periods that are not whole hours)."""
    if not s.hids:
        return {}
    dialect = conn.dialect.name
    periodic = bool(period or months)

    def bucket_of(t: Any) -> Any:
        if months:
            return month_number(t, dialect) // literal_column(str(int(months)), BigInteger)
        return _bucket(t, origin, period)

    if hours is None:
        t = TIME_COLUMNS[s.time_property]
        num = AH.c.num
        bucket = bucket_of(t)
        parts = _Parts(
            n=func.count(),
            n_num=func.count(num),
            total=func.coalesce(func.sum(num), 0.0),
            sumsq=func.coalesce(func.sum(num * num), 0.0),
            vmin=func.min(num),
            vmax=func.max(num),
            first=func.min(t),
            last=func.max(t),
            kind=literal_column("NULL", String),
            distinct=func.count(_value_expr(conn.dialect.name).distinct()),
        )
        keys: list[Any] = [AH.c.hid, AH.c.attr, AH.c.dataset_id]
        stmt = select(*keys).where(*_series_where(AH, t, s))
        groups: list[Any] | None = [*keys, *([bucket] if periodic else [])]
    else:
        if "distinctCount" in methods:
            raise ValueError("distinctCount cannot be computed from the rollup")
        src = _hours_and_edges(s, hours, conn.dialect.name).subquery("src")
        bucket = bucket_of(src.c.t)
        keys = [src.c.hid, src.c.attr, src.c.dataset_id]
        stmt = select(*keys)
        if period == HOUR and not months:
            # One rollup row per period already: no GROUP BY (and its sort) at all.
            groups = None
            parts = _Parts(
                n=src.c.n,
                n_num=src.c.n_num,
                total=src.c.total,
                sumsq=src.c.sumsq,
                vmin=src.c.vmin,
                vmax=src.c.vmax,
                first=src.c.first_at,
                last=src.c.last_at,
                kind=src.c.kind,
            )
        else:
            groups = [*keys, *([bucket] if periodic else [])]
            parts = _Parts(
                # CAST: PostgreSQL's SUM over BIGINT is NUMERIC (a Decimal in Python).
                n=cast(func.sum(src.c.n), BigInteger),
                n_num=cast(func.sum(src.c.n_num), BigInteger),
                total=func.sum(src.c.total),
                sumsq=func.sum(src.c.sumsq),
                vmin=func.min(src.c.vmin),
                vmax=func.max(src.c.vmax),
                first=func.min(src.c.first_at),
                last=func.max(src.c.last_at),
                kind=func.max(src.c.kind),
            )
    # A few attributes come back as their index: tens of thousands of rows of long IRIs cost
    # more to transfer and decode than the aggregation itself.
    names = list(s.attrs) if s.attrs and len(s.attrs) <= 16 else None
    if names:
        keys[1] = case({a: i for i, a in enumerate(names)}, value=keys[1])
    stmt = stmt.with_only_columns(
        *(k.label(n) for k, n in zip(keys, ("hid", "attr", "dataset_id"), strict=True)),
        bucket.label("b"),
        parts.kind.label("kind"),
        *([] if periodic else [parts.first.label("first"), parts.last.label("last")]),
        *(_method(m, parts).label(m) for m in methods),
    )
    if groups is not None:
        stmt = stmt.group_by(*groups)
    series = _by_series(conn, stmt)
    if names:
        return {(hid, names[a], ds): v for (hid, a, ds), v in series.items()}
    return series


Columns = tuple[str | None, list[list[Any]]]  # attribute type, [period index, ...values]


def _by_series(conn: Connection, stmt: Any) -> dict[tuple[int, Any, str], Columns]:
    """Per-period rows (hid, attr, dataset_id, b, kind, values...) regrouped by series into
    columns. PostgreSQL does it in SQL (array_agg, decoded by psycopg in C: one row per
    series crosses the wire instead of one per period); on SQLite, Python does it."""
    out: dict[tuple[int, Any, str], Columns] = {}
    if conn.dialect.name == "postgresql":
        per_period = stmt.subquery()
        key = (per_period.c.hid, per_period.c.attr, per_period.c.dataset_id)
        rest = [c for c in per_period.c if c.name not in ("hid", "attr", "dataset_id", "kind")]
        by_series = select(
            *key, func.max(per_period.c.kind), *(func.array_agg(c) for c in rest)
        ).group_by(*key)
        for hid, attr, dataset_id, kind, *columns in _tuples(conn, by_series):
            out[(hid, attr, dataset_id)] = (kind, columns)
        return out
    rows: dict[tuple[int, Any, str], list[tuple[Any, ...]]] = {}
    for row in _tuples(conn, stmt):
        key = row[:3]
        periods = rows.get(key)
        if periods is None:
            periods = rows[key] = []
        periods.append(row[3:])
    for key, periods in rows.items():
        index, kinds, *values = (list(c) for c in zip(*periods, strict=True))
        out[key] = (kinds[-1], [index, *values])
    return out


def _tuples(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
    """Plain tuples straight from the driver's cursor. An aggregation can return tens of
    thousands of rows of ints, floats and strings, which need no conversion, and building a
    SQLAlchemy Row for each costs about as much as the query itself. On PostgreSQL the rows
    come in psycopg's binary format, which halves the decoding time."""
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        dbapi: Any = conn.connection.dbapi_connection  # same transaction as ``conn``
        with dbapi.cursor(binary=True) as cursor:
            cursor.execute(str(compiled), compiled.params)
            return list(cursor.fetchall())
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


@dataclass
class _Parts:
    """The SQL expressions the methods are computed from (over instances or rollup rows)."""

    n: Any
    n_num: Any
    total: Any
    sumsq: Any
    vmin: Any
    vmax: Any
    first: Any
    last: Any
    kind: Any
    distinct: Any = None


def _method(name: str, p: _Parts) -> Any:
    """One aggregation method; the numeric ones are NULL when no value was a number."""
    some = p.n_num > 0
    if name == "totalCount":
        return p.n
    if name == "distinctCount":
        return p.distinct
    if name == "sum":
        return case((some, p.total))
    if name == "avg":
        return case((some, p.total / cast(p.n_num, Float)))
    if name == "min":
        return p.vmin
    if name == "max":
        return p.vmax
    if name == "sumsq":
        return case((some, p.sumsq))
    if name == "stddev":
        # The sample variance (n - 1, like PostgreSQL's stddev); 0 for a single value.
        return case(
            (
                p.n_num > 1,
                (p.sumsq - p.total * p.total / cast(p.n_num, Float)) / cast(p.n_num - 1, Float),
            ),
            (some, literal(0.0)),
        )
    raise ValueError(f"unknown aggregation method {name!r}")


def _hours_and_edges(s: Series, hours: tuple[int | None, int | None], dialect: str) -> Any:
    """Rollup rows for the whole hours in ``hours``, plus the instances of the partial hours
    at the ends of [s.lo, s.hi) rolled up the same way: one row per series and hour."""
    h_lo, h_hi = hours
    parts: list[Any] = [
        select(
            HR.c.hid,
            HR.c.attr,
            HR.c.dataset_id,
            HR.c.hour.label("t"),
            HR.c.n,
            HR.c.n_num,
            HR.c.total,
            HR.c.sumsq,
            HR.c.vmin,
            HR.c.vmax,
            HR.c.first_at,
            HR.c.last_at,
            HR.c.kind,
        ).where(*_series_where(HR, HR.c.hour, replace(s, lo=h_lo, hi=h_hi)))
    ]
    kind = _type_expr(dialect)
    if s.lo is not None and h_lo is not None and s.lo < h_lo:
        parts.append(_partial_hour(replace(s, lo=s.lo, hi=h_lo), kind))
    if s.hi is not None and h_hi is not None and h_hi < s.hi:
        parts.append(_partial_hour(replace(s, lo=h_hi, hi=s.hi), kind))
    return union_all(*parts) if len(parts) > 1 else parts[0]


def _partial_hour(s: Series, kind: Any) -> Any:
    """The instances of [s.lo, s.hi), which lies within one hour, as rollup rows."""
    assert s.lo is not None
    t, num = AH.c.observed_at, AH.c.num
    keys = (AH.c.hid, AH.c.attr, AH.c.dataset_id)
    return (
        select(
            *keys,
            literal_column(str(hour_of(s.lo)), BigInteger).label("t"),
            func.count().label("n"),
            func.count(num).label("n_num"),
            func.coalesce(func.sum(num), 0.0).label("total"),
            func.coalesce(func.sum(num * num), 0.0).label("sumsq"),
            func.min(num).label("vmin"),
            func.max(num).label("vmax"),
            func.min(t).label("first_at"),
            func.max(t).label("last_at"),
            func.max(kind).label("kind"),
        )
        .where(*_series_where(AH, t, s))
        .group_by(*keys)
    )


def series_kinds(
    conn: Connection, s: Series, hours: tuple[int | None, int | None] | None
) -> dict[tuple[int, str, str], str]:
    """The attribute type (Property, Relationship, ...) of each series, from the rollup rows
    of the hours [lo, hi) in ``hours`` (None: all)."""
    if not s.hids:
        return {}
    key = (HR.c.hid, HR.c.attr, HR.c.dataset_id)
    lo, hi = hours or (None, None)
    where = _series_where(HR, HR.c.hour, replace(s, lo=lo, hi=hi))
    stmt = select(*key, func.max(HR.c.kind)).where(*where).group_by(*key)
    return {(hid, attr, ds): kind for hid, attr, ds, kind in conn.execute(stmt)}


def _type_expr(dialect: str) -> Any:
    if dialect == "postgresql":
        return type_coerce(AH.c.value, JSONB).op("->>")(literal_column("'type'"))
    return func.json_extract(AH.c.value, "$.type")


def _value_expr(dialect: str) -> Any:
    """The attribute's value (whatever member carries it) as a comparable SQL value."""
    if dialect == "postgresql":
        doc = type_coerce(AH.c.value, JSONB)
        return func.coalesce(*(doc.op("->")(literal_column(f"'{m}'")) for m in _VALUE_MEMBERS))
    return func.coalesce(*(func.json_extract(AH.c.value, f"$.{m}") for m in _VALUE_MEMBERS))


# -- writes ------------------------------------------------------------------------------------


def insert_entity(
    conn: Connection,
    tenant: str,
    entity_id: str,
    types: list[str],
    scope: list[str] | None,
    now: int,
) -> int:
    return int(
        conn.execute(
            insert(H)
            .values(
                tenant=tenant,
                entity_id=entity_id,
                types=types,
                scope=scope,
                created_at=now,
                modified_at=now,
            )
            .returning(H.c.hid)
        ).scalar_one()
    )


def touch_entity(conn: Connection, hid: int, now: int, **values: Any) -> None:
    conn.execute(update(H).where(H.c.hid == hid).values(modified_at=now, **values))


# attr_history rows as ``history.instance_rows`` builds them: tuples in this column order, with
# ``value`` the instance itself (a dict); ``insert_instances`` turns it into JSON text.
INSTANCE_COLUMNS = (
    "hid",
    "attr",
    "dataset_id",
    "instance_id",
    "observed_at",
    "created_at",
    "modified_at",
    "num",
    "value",
)
InstanceRow = tuple[int, str, str, str, int, int, int, float | None, dict[str, Any]]
_INSERT_INSTANCES = insert(AH).values({c: bindparam(c) for c in INSTANCE_COLUMNS})


def insert_instances(conn: Connection, rows: Sequence[InstanceRow]) -> None:
    """New attribute instances, with the rollup kept current (the hub's hottest write: it goes
    to the driver's executemany, see ``storage.bulk``)."""
    if rows:
        bulk.execute_many(
            conn,
            _INSERT_INSTANCES,
            INSTANCE_COLUMNS,
            [(*row[:8], bulk.json_text(row[8])) for row in rows],
        )
        add_to_rollup(conn, rows)


def insert_deletions(conn: Connection, rows: Sequence[InstanceRow]) -> None:
    """Records of deleted attribute instances (``history.deletion_rows``): their time is
    ``deleted_at`` (the rows' ``observed_at``), and they stay out of the hourly rollup."""
    if rows:
        conn.execute(
            insert(AH),
            [
                {**dict(zip(INSTANCE_COLUMNS, row, strict=True)), "deleted_at": row[4]}
                for row in rows
            ],
        )


def add_to_rollup(conn: Connection, rows: Iterable[InstanceRow]) -> None:
    """Fold newly inserted attr_history rows into the hourly rollup (same transaction)."""
    acc: dict[tuple[int, str, int, str], list[Any]] = {}
    for hid, attr, dataset_id, _iid, t, _created, _modified, num, value in rows:
        key = (hid, attr, hour_of(t), dataset_id)
        a = acc.get(key)
        if a is None:
            a = acc[key] = [0, 0, 0.0, 0.0, None, None, t, t, ""]
        a[0] += 1
        if num is not None:
            a[1] += 1
            a[2] += num
            a[3] += num * num
            a[4] = num if a[4] is None else min(a[4], num)
            a[5] = num if a[5] is None else max(a[5], num)
        a[6] = min(a[6], t)
        a[7] = max(a[7], t)
        a[8] = max(a[8], value["type"])
    if not acc:
        return
    # One row per key: PostgreSQL refuses to update the same row twice in one statement.
    # Sorted, so concurrent writers lock rollup rows in the same order (no deadlocks).
    bulk.execute_many(
        conn,
        _rollup_upsert(conn.dialect.name),
        ROLLUP_COLUMNS,
        [(*k, *a) for k, a in sorted(acc.items())],
    )


ROLLUP_COLUMNS = (
    "hid",
    "attr",
    "hour",
    "dataset_id",
    "n",
    "n_num",
    "total",
    "sumsq",
    "vmin",
    "vmax",
    "first_at",
    "last_at",
    "kind",
)


@cache
def _rollup_upsert(dialect: str) -> Any:
    """The rollup's INSERT ... ON CONFLICT DO UPDATE, built once: building it costs more than
    running it, and it runs in every write transaction."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(HR).values({c: bindparam(c) for c in ROLLUP_COLUMNS})
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[HR.c.hid, HR.c.attr, HR.c.hour, HR.c.dataset_id],
        set_={
            "n": HR.c.n + new.n,
            "n_num": HR.c.n_num + new.n_num,
            "total": HR.c.total + new.total,
            "sumsq": HR.c.sumsq + new.sumsq,
            # CASE rather than MIN()/LEAST(): they treat NULL differently on the two backends.
            "vmin": _case_pick(new.vmin < HR.c.vmin, new.vmin, HR.c.vmin),
            "vmax": _case_pick(new.vmax > HR.c.vmax, new.vmax, HR.c.vmax),
            "first_at": _case_pick(new.first_at < HR.c.first_at, new.first_at, HR.c.first_at),
            "last_at": _case_pick(new.last_at > HR.c.last_at, new.last_at, HR.c.last_at),
            "kind": _case_pick(new.kind > HR.c.kind, new.kind, HR.c.kind),
        },
    )


def _case_pick(better: Any, new: Any, old: Any) -> Any:
    return case((or_(old.is_(None), better), new), else_=old)


def refresh_hours(conn: Connection, keys: Iterable[tuple[int, str, int, str]]) -> None:
    """Recompute rollup rows (hid, attr, hour, dataset_id) from the instances, after an
    instance was changed or removed (a min or max cannot be subtracted)."""
    for hid, attr, hour, dataset_id in sorted(set(keys)):
        conn.execute(
            delete(HR).where(
                HR.c.hid == hid,
                HR.c.attr == attr,
                HR.c.hour == hour,
                HR.c.dataset_id == dataset_id,
            )
        )
        num, t = AH.c.num, AH.c.observed_at
        rollup = select(
            AH.c.hid,
            AH.c.attr,
            literal(hour, BigInteger),
            AH.c.dataset_id,
            func.count(),
            func.count(num),
            func.coalesce(func.sum(num), 0.0),
            func.coalesce(func.sum(num * num), 0.0),
            func.min(num),
            func.max(num),
            func.min(t),
            func.max(t),
            func.max(_type_expr(conn.dialect.name)),
        ).where(
            AH.c.hid == hid,
            AH.c.attr == attr,
            AH.c.dataset_id == dataset_id,
            t >= hour,
            t < hour + HOUR,
            AH.c.deleted_at.is_(None),
        )
        conn.execute(
            insert(HR).from_select(
                list(ROLLUP_COLUMNS),
                rollup.group_by(AH.c.hid, AH.c.attr, AH.c.dataset_id),
            )
        )


def get_instance(conn: Connection, hid: int, attr: str, instance_id: str) -> Any:
    stmt = select(AH.c.iid, AH.c.dataset_id, AH.c.observed_at, AH.c.created_at, AH.c.value).where(
        AH.c.instance_id == instance_id, AH.c.hid == hid, AH.c.attr == attr
    )
    return conn.execute(stmt).first()


def update_instance(conn: Connection, iid: int, **values: Any) -> None:
    conn.execute(update(AH).where(AH.c.iid == iid).values(**values))


def delete_instance(conn: Connection, iid: int) -> None:
    conn.execute(delete(AH).where(AH.c.iid == iid))


def delete_attr(conn: Connection, hid: int, attr: str, dataset_id: str | None) -> int:
    """Delete an attribute's instances (of one datasetId, or all with None); returns how many."""
    where = [AH.c.hid == hid, AH.c.attr == attr]
    rollup_where = [HR.c.hid == hid, HR.c.attr == attr]
    if dataset_id is not None:
        where.append(AH.c.dataset_id == dataset_id)
        rollup_where.append(HR.c.dataset_id == dataset_id)
    removed = conn.execute(delete(AH).where(*where)).rowcount
    conn.execute(delete(HR).where(*rollup_where))
    return int(removed)


def delete_entity(conn: Connection, hid: int) -> None:
    # Explicit rather than ON DELETE CASCADE: SQLite only cascades with foreign_keys on.
    conn.execute(delete(HR).where(HR.c.hid == hid))
    conn.execute(delete(AH).where(AH.c.hid == hid))
    conn.execute(delete(H).where(H.c.hid == hid))
