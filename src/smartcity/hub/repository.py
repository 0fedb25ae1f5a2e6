"""SQL for the latest state of entities. Functions take an open connection; the service decides
the transaction boundaries. Nothing here knows about @contexts or HTTP.

Every document written passes ``refuse_unstorable`` (hub/text.py) before its statement: the
last line for in-process writers, so that a U+0000 from an outside data feed is refused alike on
SQLite (which would store it) and PostgreSQL (which would fail with a driver error)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    table,
    update,
)

from smartcity.hub.kept import Same, Shaped
from smartcity.hub.text import refuse_unstorable
from smartcity.hub.types_expr import TypeSelection
from smartcity.storage import bulk, schema
from smartcity.storage.engine import Database

E = schema.entities
T = schema.entity_types
A = schema.entity_attrs
G = schema.entity_geo
# SQLite's R*Tree over entity_geo (created by migration 0003; not part of the metadata because
# it is a virtual table that exists on SQLite only).
GEO_RTREE = table(
    "entity_geo_rtree",
    column("gid"),
    column("minx"),
    column("maxx"),
    column("miny"),
    column("maxy"),
)


@dataclass
class EntityFilter:
    """Everything an entity query can select on; empty fields select everything."""

    types: TypeSelection | None = None
    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    attrs: Sequence[str] | None = None  # expanded; entities having at least one of them
    q: Any = None  # a compiled SQL predicate over entities.doc (see query.qsql)
    scope: Any = None  # a compiled SQL predicate over entities.doc (see query.scope)
    # (expanded GeoProperty name, lon/lat box): only entities whose geometry box intersects it
    geo_box: tuple[str, tuple[float, float, float, float]] | None = None
    extra: list[ColumnElement[bool]] = field(default_factory=list)


# Hot-path statements are built once with bound parameters: building SQLAlchemy expressions
# per call cost more than the database work itself (profiled: ~40% of a partial update).
_GET = select(E.c.eid, E.c.doc).where(
    E.c.tenant == bindparam("tenant"), E.c.entity_id == bindparam("entity_id")
)
_GET_FOR_UPDATE = _GET.with_for_update()
_UPDATE_DOC = (
    update(E)
    .where(E.c.eid == bindparam("b_eid"))
    .values(doc=bindparam("b_doc"), modified_at=bindparam("b_now"))
)


_GET_DOC_SQLITE = "SELECT doc FROM entities WHERE tenant = ? AND entity_id = ?"
_GET_DOC_POSTGRES = "SELECT doc::text FROM entities WHERE tenant = ? AND entity_id = ?"


def get_doc(db: Database, tenant: str, entity_id: str) -> dict[str, Any] | None:
    """The document of one entity, by the driver's shortest path (``Database.fetch_one``);
    the JSON text is parsed here with orjson (psycopg's own jsonb loader is the slower
    standard library's)."""
    text = get_text(db, tenant, entity_id)
    if text is None:
        return None
    doc: dict[str, Any] = orjson.loads(text)
    return doc


def get_text(db: Database, tenant: str, entity_id: str) -> str | None:
    """The stored JSON text of one entity's document (``get_doc`` before parsing)."""
    sql = _GET_DOC_POSTGRES if db.is_postgres else _GET_DOC_SQLITE
    row = db.fetch_one(sql, (tenant, entity_id))
    return None if row is None else str(row[0])


_GET_DOCS_POSTGRES = (
    "SELECT tenant, entity_id, doc::text FROM entities WHERE tenant = ANY(?) AND entity_id = ANY(?)"
)


async def get_texts_async(
    db: Database, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The stored JSON texts of many (tenant, entity id) pairs in one statement (PostgreSQL),
    from the event loop (``Database.fetch_all_async``)."""
    tenants = sorted({t for t, _ in keys})
    ids = sorted({e for _, e in keys})
    wanted = set(keys)
    rows = await db.fetch_all_async(_GET_DOCS_POSTGRES, (tenants, ids))
    return {(t, e): str(doc) for t, e, doc in rows if (t, e) in wanted}


def get(conn: Connection, tenant: str, entity_id: str, *, for_update: bool = False) -> Any:
    stmt = _GET_FOR_UPDATE if for_update and conn.dialect.name == "postgresql" else _GET
    return conn.execute(stmt, {"tenant": tenant, "entity_id": entity_id}).first()


def existing_ids(conn: Connection, tenant: str, ids: Iterable[str]) -> dict[str, int]:
    ids = list(ids)
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            select(E.c.entity_id, E.c.eid).where(
                E.c.tenant == tenant, bulk.among(E.c.entity_id, chunk, conn.dialect)
            )
        )
        found.update({row.entity_id: row.eid for row in rows})
    return found


@dataclass(frozen=True)
class HistoryKey:
    """An entity's row of the history's entity table as ``load_many`` found it (hub/history.py
    then needs no statement of its own to find the key of a changed entity)."""

    hid: int
    types: list[str]
    deleted_at: int | None


@cache
def _load_many_stmt(dialect: str) -> Any:
    # The history key comes with the entity (a LEFT JOIN on its unique (tenant, entity_id)):
    # a partial update needs one statement less. Built once per dialect (bulk.among_param).
    H = schema.history_entities
    stmt = (
        select(E.c.entity_id, E.c.eid, E.c.doc, H.c.hid, H.c.types, H.c.deleted_at)
        .select_from(E.outerjoin(H, and_(H.c.tenant == E.c.tenant, H.c.entity_id == E.c.entity_id)))
        .where(E.c.tenant == bindparam("tenant"), bulk.among_param(E.c.entity_id, "ids", dialect))
    )
    if dialect == "postgresql":
        # Locked in id order (LockRows sits above the sort): concurrent batches of other
        # processes take the same rows in the same order instead of deadlocking. Only the
        # entities' rows: the history's are not the lock's business.
        stmt = stmt.order_by(E.c.entity_id).with_for_update(of=E)
    return stmt


def load_many(
    conn: Connection,
    tenant: str,
    ids: Sequence[str],
    history_keys: dict[tuple[str, str], HistoryKey] | None = None,
) -> dict[str, tuple[int, dict[str, Any]]]:
    """eid and document of each existing entity among ``ids``, locked for update; the
    history key of those that have one goes into ``history_keys`` when given."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    dialect = conn.dialect.name
    stmt = _load_many_stmt(dialect)
    for start in range(0, len(ids), 500):
        params = {"tenant": tenant, "ids": bulk.keys_param(ids[start : start + 500], dialect)}
        for row in conn.execute(stmt, params):
            found[row.entity_id] = (row.eid, row.doc)
            if history_keys is not None and row.hid is not None:
                history_keys[(tenant, row.entity_id)] = HistoryKey(
                    int(row.hid), list(row.types), row.deleted_at
                )
    return found


def changed_since(
    conn: Connection, tenant: str, since: int, after_eid: int, limit: int
) -> list[tuple[int, int, str]]:
    """(modified_at, eid, entity id) of the entities modified after (``since``,
    ``after_eid``) in (modified_at, eid) order: pages that never stall on entities stamped
    with the same time (a batch's entities share their transaction's). Read from the index
    alone; the documents are fetched by ``docs_by_eid`` for those the caller lacks."""
    stmt = (
        select(E.c.modified_at, E.c.eid, E.c.entity_id)
        .where(
            E.c.tenant == tenant,
            or_(E.c.modified_at > since, and_(E.c.modified_at == since, E.c.eid > after_eid)),
        )
        .order_by(E.c.modified_at, E.c.eid)
        .limit(limit)
    )
    return [(int(row.modified_at), int(row.eid), row.entity_id) for row in conn.execute(stmt)]


def deleted_since(conn: Connection, tenant: str, since: int, limit: int) -> list[str]:
    """The ids of the entities deleted at or after ``since`` (and not created again): the
    history keeps the time of an entity's deletion (``history_entities.deleted_at``), which
    the live views of other processes and nodes poll (index ``ix_history_entities_deleted``,
    migration 0021)."""
    H = schema.history_entities
    stmt = (
        select(H.c.entity_id)
        .where(H.c.tenant == tenant, H.c.deleted_at.is_not(None), H.c.deleted_at >= since)
        .order_by(H.c.deleted_at)
        .limit(limit)
    )
    return [row.entity_id for row in conn.execute(stmt)]


def docs_by_eid(conn: Connection, eids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(eids), 500):
        stmt = select(E.c.eid, E.c.doc).where(E.c.eid.in_(eids[start : start + 500]))
        found.update({int(row.eid): row.doc for row in conn.execute(stmt)})
    return found


_ENTITY_COLUMNS = ("tenant", "entity_id", "doc", "created_at", "modified_at")
# (Parameters named as their columns: storage.bulk finds the column types by them.)
_TYPE_COLUMNS = ("eid", "etype", "tenant")
_INSERT_TYPE = insert(T).values({c: bindparam(c) for c in _TYPE_COLUMNS})
_ATTR_COLUMNS = ("eid", "attr", "tenant")
_INSERT_ATTR = insert(A).values({c: bindparam(c) for c in _ATTR_COLUMNS})
_GEO_COLUMNS = ("eid", "tenant", "attr", "minx", "miny", "maxx", "maxy")
_INSERT_GEO = insert(G).values({c: bindparam(c) for c in _GEO_COLUMNS})


def insert_entities(
    conn: Connection, tenant: str, docs: Sequence[dict[str, Any]], now: int
) -> list[int]:
    """Insert new entities with their index rows; returns their eids in order. Every table
    takes its rows in one statement on PostgreSQL (``storage.bulk``: a batch of a thousand
    entities is a handful of round trips, not thousands)."""
    if not docs:
        return []
    rows = [(tenant, d["id"], _storable_json(d), now, now) for d in docs]
    returned = bulk.insert_returning(conn, E, _ENTITY_COLUMNS, rows, ("entity_id", "eid"))
    eid_of = {entity_id: int(eid) for entity_id, eid in returned}
    eids = [eid_of[d["id"]] for d in docs]
    pairs = list(zip(eids, docs, strict=True))
    type_rows = [(eid, t, tenant) for eid, d in pairs for t in d["type"]]
    attr_rows = [(eid, a, tenant) for eid, d in pairs for a in d["attrs"]]
    bulk.execute_many(conn, _INSERT_TYPE, _TYPE_COLUMNS, type_rows)
    bulk.execute_many(conn, _INSERT_ATTR, _ATTR_COLUMNS, attr_rows)
    geo_rows = [
        tuple(row[c] for c in _GEO_COLUMNS) for eid, d in pairs for row in _geo_rows(tenant, eid, d)
    ]
    bulk.execute_many(conn, _INSERT_GEO, _GEO_COLUMNS, geo_rows)
    return eids


def _storable_json(doc: dict[str, Any]) -> str:
    """``doc``'s JSON text, once it is known to hold nothing a backend cannot store: the
    text written is the text checked (the escape ``\\u0000`` is the only spelling of NUL)."""
    try:
        text = bulk.json_text(doc)
    except orjson.JSONEncodeError:  # a lone surrogate: say where
        refuse_unstorable(doc, f"entity {doc['id']}")
        raise
    if "\\u0000" in text:
        refuse_unstorable(doc, f"entity {doc['id']}")
    return text


def _geo_rows(tenant: str, eid: int, doc: dict[str, Any]) -> list[dict[str, Any]]:
    from smartcity.hub.query.geo import geometry_bbox

    rows = []
    for attr, instances in doc["attrs"].items():
        for inst in instances:
            if inst.get("type") == "GeoProperty":
                minx, miny, maxx, maxy = geometry_bbox(inst["value"])
                rows.append(
                    {
                        "eid": eid,
                        "tenant": tenant,
                        "attr": attr,
                        "minx": minx,
                        "miny": miny,
                        "maxx": maxx,
                        "maxy": maxy,
                    }
                )
    return rows


def _geo_part(doc: dict[str, Any]) -> list[Any]:
    return [
        (attr, inst["value"])
        for attr, instances in doc["attrs"].items()
        for inst in instances
        if inst.get("type") == "GeoProperty"
    ]


def update_entities(
    conn: Connection,
    tenant: str,
    items: Sequence[tuple[int, dict[str, Any], dict[str, Any]]],
    now: int,
) -> None:
    """Write many (eid, old, new) documents: one batched UPDATE, index rows where they moved."""
    if not items:
        return
    if len(items) == 1:
        eid, _, new = items[0]
        refuse_unstorable(new, f"entity {new['id']}")
        conn.execute(_UPDATE_DOC, {"b_eid": eid, "b_doc": new, "b_now": now})
    else:  # many: the driver's executemany (see storage.bulk)
        rows = [(_storable_json(new), now, eid) for eid, _, new in items]
        bulk.execute_many(conn, _UPDATE_DOC, ("b_doc", "b_now", "b_eid"), rows)
    _update_indexes(conn, tenant, items)


def update_entity(
    conn: Connection,
    tenant: str,
    eid: int,
    old: dict[str, Any],
    new: dict[str, Any],
    now: int,
) -> None:
    refuse_unstorable(new, f"entity {new['id']}")
    conn.execute(_UPDATE_DOC, {"b_eid": eid, "b_doc": new, "b_now": now})
    _update_indexes(conn, tenant, [(eid, old, new)])


_DELETE_TYPE = delete(T).where(T.c.eid == bindparam("eid"), T.c.etype == bindparam("etype"))
_DELETE_ATTR = delete(A).where(A.c.eid == bindparam("eid"), A.c.attr == bindparam("attr"))


def _update_indexes(
    conn: Connection,
    tenant: str,
    items: Sequence[tuple[int, dict[str, Any], dict[str, Any]]],
) -> None:
    """Move the type, attribute and geometry index rows of the (eid, old, new) documents
    that changed them. The rows of the whole batch go in a few statements: an upsert of a
    thousand existing entities whose location moved was two statements per entity, most of
    a batch's time on PostgreSQL (697 against 1,583 entities/s once batched)."""
    type_gone: list[tuple[Any, ...]] = []
    type_new: list[tuple[Any, ...]] = []
    attr_gone: list[tuple[Any, ...]] = []
    attr_new: list[tuple[Any, ...]] = []
    geo_moved: list[int] = []
    geo_new: list[tuple[Any, ...]] = []
    for eid, old, new in items:
        old_types, new_types = set(old["type"]), set(new["type"])
        type_gone += [(eid, t) for t in sorted(old_types - new_types)]
        type_new += [(eid, t, tenant) for t in sorted(new_types - old_types)]
        old_attrs, new_attrs = set(old["attrs"]), set(new["attrs"])
        attr_gone += [(eid, a) for a in sorted(old_attrs - new_attrs)]
        attr_new += [(eid, a, tenant) for a in sorted(new_attrs - old_attrs)]
        if _geo_part(old) != _geo_part(new):
            geo_moved.append(eid)
            geo_new += [tuple(r[c] for c in _GEO_COLUMNS) for r in _geo_rows(tenant, eid, new)]
    # Deletions first: a type or attribute can leave and come back within one batch.
    bulk.execute_many(conn, _DELETE_TYPE, ("eid", "etype"), type_gone)
    bulk.execute_many(conn, _DELETE_ATTR, ("eid", "attr"), attr_gone)
    for start in range(0, len(geo_moved), 500):
        chunk = geo_moved[start : start + 500]
        conn.execute(delete(G).where(bulk.among(G.c.eid, chunk, conn.dialect)))
    bulk.execute_many(conn, _INSERT_TYPE, _TYPE_COLUMNS, type_new)
    bulk.execute_many(conn, _INSERT_ATTR, _ATTR_COLUMNS, attr_new)
    bulk.execute_many(conn, _INSERT_GEO, _GEO_COLUMNS, geo_new)


def delete_entities(conn: Connection, eids: Sequence[int]) -> None:
    # Index rows go explicitly: SQLite only cascades with foreign_keys on, and this is cheaper.
    for start in range(0, len(eids), 500):
        chunk = list(eids[start : start + 500])
        conn.execute(delete(T).where(T.c.eid.in_(chunk)))
        conn.execute(delete(A).where(A.c.eid.in_(chunk)))
        conn.execute(delete(G).where(G.c.eid.in_(chunk)))
        conn.execute(delete(E).where(E.c.eid.in_(chunk)))


def _single_type(flt: EntityFilter) -> str | None:
    if flt.types and len(flt.types) == 1 and len(flt.types[0]) == 1 and flt.geo_box is None:
        return next(iter(flt.types[0]))
    return None


def _where(
    tenant: str, flt: EntityFilter, dialect: str, *, tenant_clause: bool = True
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    # The most selective index goes first: SQLite drives the query from the first usable
    # rowid IN-list. Every index table is filtered by tenant itself, so the entities.tenant
    # condition is only needed when no index table is used (otherwise SQLite would scan the
    # whole tenant through its (tenant, entity_id) index instead of looking rows up by id).
    if flt.geo_box is not None:
        clauses.append(E.c.eid.in_(_geo_candidates(tenant, flt.geo_box, dialect)))
    if flt.types:
        alternatives = []
        for required in flt.types:
            alternatives.append(
                and_(
                    *(
                        exists().where(T.c.eid == E.c.eid, T.c.etype == t, T.c.tenant == tenant)
                        for t in sorted(required)
                    )
                )
            )
        # With a geo prefilter driving the query, check the type per candidate (an index probe)
        # rather than materialising every entity of the type as an IN-list.
        if all(len(alt) == 1 for alt in flt.types) and flt.geo_box is None:
            wanted = sorted({next(iter(alt)) for alt in flt.types})
            clauses.append(
                E.c.eid.in_(select(T.c.eid).where(T.c.tenant == tenant, T.c.etype.in_(wanted)))
            )
        else:
            clauses.append(or_(*alternatives))
    if flt.ids:
        clauses.append(bulk.among(E.c.entity_id, list(flt.ids), dialect))
    if flt.id_pattern:
        if dialect == "postgresql":
            from smartcity.hub.query.qregex import to_postgres

            clauses.append(E.c.entity_id.op("~")(to_postgres(flt.id_pattern)))
        else:
            clauses.append(func.regexp(flt.id_pattern, E.c.entity_id) == 1)
    if flt.attrs:
        clauses.append(
            E.c.eid.in_(select(A.c.eid).where(A.c.tenant == tenant, A.c.attr.in_(list(flt.attrs))))
        )
    if flt.q is not None:
        clauses.append(flt.q)
    if flt.scope is not None:
        clauses.append(flt.scope)
    if tenant_clause and (not clauses or flt.ids or not (flt.types or flt.attrs or flt.geo_box)):
        clauses.insert(0, E.c.tenant == tenant)
    clauses.extend(flt.extra)
    return clauses


def _geo_candidates(
    tenant: str, geo_box: tuple[str, tuple[float, float, float, float]], dialect: str
) -> Select[Any]:
    attr, (minx, miny, maxx, maxy) = geo_box
    stmt = select(G.c.eid).where(G.c.tenant == tenant, G.c.attr == attr)
    if dialect == "postgresql":
        # Must match the expression of index ix_entity_geo_box to use it.
        stored = func.box(func.point(G.c.minx, G.c.miny), func.point(G.c.maxx, G.c.maxy))
        wanted = func.box(func.point(minx, miny), func.point(maxx, maxy))
        # MATERIALIZED makes the spatial index drive the query whatever the statistics say:
        # on freshly loaded tables the planner would otherwise start from the type index.
        candidates = (
            stmt.where(stored.op("&&")(wanted)).cte("geo_candidates").prefix_with("MATERIALIZED")
        )
        return select(candidates.c.eid)
    hits = select(GEO_RTREE.c.gid).where(
        GEO_RTREE.c.minx <= maxx,
        GEO_RTREE.c.maxx >= minx,
        GEO_RTREE.c.miny <= maxy,
        GEO_RTREE.c.maxy >= miny,
    )
    return stmt.where(G.c.gid.in_(hits))


# An entity query's statements, kept per shape (hub/kept.py); the page is bound at execution.
_PAGE_LIMIT: Any = bindparam("page_limit")
_PAGE_OFFSET: Any = bindparam("page_offset")
# Shapes with many ids or a box of coordinates are rarely asked twice: built, not kept.
_KEPT_IDS = 100


@dataclass(frozen=True)
class _QueryStatements:
    page: Select[Any]  # the documents of a page, given page_limit and page_offset
    count: Select[Any]  # how many entities match


def _shape(
    tenant: str, flt: EntityFilter, dialect: str, order: str | None
) -> tuple[Any, ...] | None:
    """What an entity query's statements depend on, or None for one not worth keeping."""
    if flt.geo_box is not None or (flt.ids is not None and len(flt.ids) > _KEPT_IDS):
        return None
    return (
        dialect,
        tenant,
        order,
        tuple(tuple(sorted(alt)) for alt in flt.types) if flt.types is not None else None,
        tuple(flt.ids) if flt.ids is not None else None,
        flt.id_pattern,
        tuple(flt.attrs) if flt.attrs is not None else None,
        Same(flt.q),
        Same(flt.scope),
        tuple(Same(clause) for clause in flt.extra),
    )


def _query_statements(
    tenant: str, flt: EntityFilter, dialect: str, order: str | None
) -> _QueryStatements:
    where = _where(tenant, flt, dialect)
    count = select(func.count()).select_from(E).where(*where)
    limit, offset = _PAGE_LIMIT, _PAGE_OFFSET
    if order is not None:
        # Code-point order, as Python sorts (SQLite's default BINARY collation is that too).
        by_id = E.c.entity_id.collate("C") if dialect == "postgresql" else E.c.entity_id
        key = by_id.desc() if order == "id_desc" else by_id
        return _QueryStatements(
            select(E.c.doc).where(*where).order_by(key).limit(limit).offset(offset), count
        )
    # Deferred join: page through ids first (an index walk), then read the documents of the
    # page only. PostgreSQL would otherwise fetch and detoast every skipped document.
    page: Select[Any] = select(E.c.eid).where(*where).order_by(E.c.eid).limit(limit).offset(offset)
    single = _single_type(flt)
    if single is not None:
        # One type: walk the (tenant, etype, eid) index in order, so a page, even at a deep
        # offset, needs no sort of every entity of the type.
        rest = _where(tenant, replace(flt, types=None), dialect, tenant_clause=False)
        page = (
            select(T.c.eid)
            .select_from(T.join(E, E.c.eid == T.c.eid) if rest else T)
            .where(T.c.tenant == tenant, T.c.etype == single, *rest)
            .order_by(T.c.eid)
            .limit(limit)
            .offset(offset)
        )
    docs = select(E.c.doc).where(E.c.eid.in_(page.scalar_subquery())).order_by(E.c.eid)
    return _QueryStatements(docs, count)


@lru_cache(maxsize=256)
def _kept_statements(query: Shaped) -> _QueryStatements:
    return _query_statements(*query.parts)


def query(
    conn: Connection,
    tenant: str,
    flt: EntityFilter,
    *,
    limit: int,
    offset: int,
    count: bool,
    order: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of matching documents in insertion order, or with ``order`` "id"/"id_desc" by
    entity id."""
    dialect = conn.dialect.name
    shape = _shape(tenant, flt, dialect, order)
    stmts = (
        _query_statements(tenant, flt, dialect, order)
        if shape is None
        else _kept_statements(Shaped(shape, tenant, flt, dialect, order))
    )
    page = {"page_limit": limit, "page_offset": offset}
    docs = [row.doc for row in conn.execute(stmts.page, page)] if limit > 0 else []
    total = conn.execute(stmts.count).scalar_one() if count else None
    return docs, total


def list_types(conn: Connection, tenant: str) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(T.c.etype, func.count())
        .where(T.c.tenant == tenant)
        .group_by(T.c.etype)
        .order_by(T.c.etype)
    )
    return [(r[0], r[1]) for r in rows]


def attrs_of_type(conn: Connection, tenant: str, etype: str) -> list[str]:
    rows = conn.execute(
        select(A.c.attr)
        .distinct()
        .where(
            A.c.tenant == tenant,
            A.c.eid.in_(select(T.c.eid).where(T.c.tenant == tenant, T.c.etype == etype)),
        )
        .order_by(A.c.attr)
    )
    return [r[0] for r in rows]


def list_attrs(conn: Connection, tenant: str) -> list[tuple[str, int]]:
    rows = conn.execute(
        select(A.c.attr, func.count())
        .where(A.c.tenant == tenant)
        .group_by(A.c.attr)
        .order_by(A.c.attr)
    )
    return [(r[0], r[1]) for r in rows]


def types_with_attr(conn: Connection, tenant: str, attr: str) -> list[str]:
    rows = conn.execute(
        select(T.c.etype)
        .distinct()
        .where(
            T.c.tenant == tenant,
            T.c.eid.in_(select(A.c.eid).where(A.c.tenant == tenant, A.c.attr == attr)),
        )
        .order_by(T.c.etype)
    )
    return [r[0] for r in rows]


def docs_with_attr(
    conn: Connection, tenant: str, attr: str, limit: int = 1000
) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(E.c.doc)
        .where(
            E.c.tenant == tenant,
            E.c.eid.in_(select(A.c.eid).where(A.c.tenant == tenant, A.c.attr == attr)),
        )
        .limit(limit)
    )
    return [r.doc for r in rows]


def docs_of_type(
    conn: Connection, tenant: str, etype: str, limit: int = 1000
) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(E.c.doc)
        .where(
            E.c.tenant == tenant,
            E.c.eid.in_(select(T.c.eid).where(T.c.tenant == tenant, T.c.etype == etype)),
        )
        .limit(limit)
    )
    return [r.doc for r in rows]


def check_regex(pattern: str) -> None:
    """idPattern uses the same portable regular expressions as q (see query.qregex)."""
    from smartcity.hub.errors import BadRequestData
    from smartcity.hub.query.qregex import check_pattern

    try:
        check_pattern(pattern)
    except BadRequestData as exc:
        raise BadRequestData("idPattern" + exc.detail.removeprefix("q")) from None


def matching_for_update(
    conn: Connection, tenant: str, flt: EntityFilter
) -> list[tuple[int, dict[str, Any]]]:
    """(eid, document) of every matching entity, locked for update (a purge)."""
    stmt = select(E.c.eid, E.c.doc).where(*_where(tenant, flt, conn.dialect.name))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=E)
    return [(int(row.eid), row.doc) for row in conn.execute(stmt.order_by(E.c.eid))]


def iter_docs(
    conn: Connection, tenant: str, flt: EntityFilter, *, geo: Any = None
) -> Iterable[Any]:
    """All matching documents in insertion order (for filters finished in Python)."""
    where = _where(tenant, flt, conn.dialect.name)
    stmt = select(E.c.doc).where(*where).order_by(E.c.eid)
    # Client-side fetch: PostgreSQL plans server-side cursors for a fast start (and their
    # FETCH round trips cost more than the query); the candidate sets here are bounded by
    # the spatial prefilter.
    for row in conn.execute(stmt):
        yield row.doc
