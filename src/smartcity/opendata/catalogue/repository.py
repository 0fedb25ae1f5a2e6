"""SQL over the catalogue's tables. Functions take an open connection: the service decides
what one transaction holds (a dataset, its resources, its index and its audit row)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Row,
    Table,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from smartcity.opendata.catalogue import tables as t
from smartcity.storage import bulk


@dataclass(frozen=True)
class Named:
    """Organisations or groups wanted by id or by name."""

    ids: Iterable[str] = ()
    names: Iterable[str] = ()


def now_us() -> int:
    return time.time_ns() // 1000


# The reads of many rows by key (a page of datasets, their resources, tags and groups), each
# built once per dialect with its keys in one parameter (``bulk.among_param``): an expanding
# IN list was rendered anew for every call, ~0.15-0.35 ms a statement, a sixth of a search
# page's time; and one parameter has no upper bound on the keys (SQLite's has 32,766).
_BUILT: dict[tuple[str, str], Any] = {}


def by_keys(
    conn: Connection, name: str, build: Callable[[str], Executable], keys: Any, **params: Any
) -> Any:
    """Run the statement ``build(dialect)`` (built once per dialect and ``name``) with its
    ``keys`` parameter bound to ``keys`` and its other parameters to ``params``."""
    dialect = conn.dialect.name
    statement = _BUILT.get((name, dialect))
    if statement is None:
        statement = _BUILT[(name, dialect)] = build(dialect)
    return conn.execute(statement, {"keys": bulk.keys_param(list(keys), dialect), **params})


# -- organisations and groups ------------------------------------------------------------


def find_named(conn: Connection, table: Table, key: str) -> Row[Any] | None:
    """A row of ``table`` by id or by name (CKAN accepts either wherever it takes an id)."""
    return conn.execute(select(table).where(or_(table.c.id == key, table.c.name == key))).first()


def named_by_ids(conn: Connection, table: Table, ids: Iterable[str]) -> dict[str, Row[Any]]:
    wanted = list(set(ids))
    if not wanted:
        return {}

    def build(dialect: str) -> Executable:
        return select(table).where(bulk.among_param(table.c.id, "keys", dialect))

    return {r.id: r for r in by_keys(conn, f"{table.name} by id", build, wanted)}


# The columns an organisation and a group share: what a dataset or a facet shows of them.
_NAMED_COLUMNS = ("id", "name", "title", "description", "image_url", "state", "created_at")


def organisations_and_groups(
    conn: Connection, organisations: Named, groups: Named
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """The organisations and the groups with one of their ``ids`` or ``names``, each kind in
    the order the database sorts their names (as ``groups_of`` gives a dataset's groups): one
    statement for both, since a search page asks for both and on PostgreSQL each statement is
    a round trip."""
    wanted = [(sorted(set(kind.ids)), sorted(set(kind.names))) for kind in (organisations, groups)]
    if not any(ids or names for ids, names in wanted):
        return [], []

    # Built once (``by_keys``): building the IN lists' statement per call was most of a
    # search page's Python outside its statements (py-spy, 20 results on PostgreSQL).
    def build(dialect: str) -> Executable:
        parts = [
            select(literal(kind).label("kind"), *(table.c[c] for c in _NAMED_COLUMNS)).where(
                or_(
                    bulk.among_param(table.c.id, f"{prefix}keys", dialect),
                    bulk.among_param(table.c.name, f"{prefix}names", dialect),
                )
            )
            for kind, (table, prefix) in enumerate(((t.organisations, ""), (t.groups, "g_")))
        ]
        return union_all(*parts).order_by(literal_column("kind"), literal_column("name"))

    dialect = conn.dialect.name
    (org_ids, org_names), (group_ids, group_names) = wanted
    params = {
        "names": bulk.keys_param(org_names, dialect),
        "g_keys": bulk.keys_param(group_ids, dialect),
        "g_names": bulk.keys_param(group_names, dialect),
    }
    found: tuple[list[Row[Any]], list[Row[Any]]] = ([], [])
    for row in by_keys(conn, "organisations and groups", build, org_ids, **params):
        found[row.kind].append(row)
    return found


def list_named(
    conn: Connection,
    table: Table,
    *,
    names: Sequence[str] | None = None,
    include_deleted: bool = False,
) -> list[Row[Any]]:
    query = select(table)
    if not include_deleted:
        query = query.where(table.c.state == "active")
    if names:
        query = query.where(table.c.name.in_(list(names)))
    return list(conn.execute(query))


def dataset_counts(
    conn: Connection, column: str, ids: Iterable[str], private_orgs: frozenset[str] | None
) -> dict[str, int]:
    """Visible active datasets per organisation (``column="owner_org"``) or per group."""
    d = t.datasets
    wanted = list(ids)
    if not wanted:
        return {}
    visible = d.c.state == "active"
    if private_orgs is not None:
        visible = visible & (~d.c.private | d.c.owner_org.in_(list(private_orgs)))
    if column == "owner_org":
        query = select(d.c.owner_org, func.count()).where(visible, d.c.owner_org.in_(wanted))
        query = query.group_by(d.c.owner_org)
    else:
        g = t.dataset_groups
        query = (
            select(g.c.group_id, func.count())
            .join(d, d.c.id == g.c.dataset_id)
            .where(visible, g.c.group_id.in_(wanted))
            .group_by(g.c.group_id)
        )
    return {key: count for key, count in conn.execute(query)}


def members_of(conn: Connection, organisation_id: str) -> list[Row[Any]]:
    m = t.members
    return list(
        conn.execute(
            select(m).where(m.c.organisation_id == organisation_id).order_by(m.c.user_name)
        )
    )


def set_member(conn: Connection, organisation_id: str, user: str, capacity: str) -> None:
    m = t.members
    done = conn.execute(
        update(m)
        .where(m.c.organisation_id == organisation_id, m.c.user_name == user)
        .values(capacity=capacity)
    )
    if not done.rowcount:
        conn.execute(
            insert(m).values(
                organisation_id=organisation_id,
                user_name=user,
                capacity=capacity,
                created_at=now_us(),
            )
        )


def remove_member(conn: Connection, organisation_id: str, user: str) -> bool:
    m = t.members
    done = conn.execute(
        delete(m).where(m.c.organisation_id == organisation_id, m.c.user_name == user)
    )
    return bool(done.rowcount)


# -- datasets ------------------------------------------------------------------------------


def find_dataset(conn: Connection, key: str, *, for_update: bool = False) -> Row[Any] | None:
    d = t.datasets
    query = select(d).where(or_(d.c.id == key, d.c.name == key))
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def datasets_by_ids(conn: Connection, ids: Sequence[str]) -> list[Row[Any]]:
    """The rows of ``ids``, in that order."""
    if not ids:
        return []
    d = t.datasets

    def build(dialect: str) -> Executable:
        return select(d).where(bulk.among_param(d.c.id, "keys", dialect))

    found = {r.id: r for r in by_keys(conn, "datasets by id", build, ids)}
    return [found[i] for i in ids if i in found]


def resources_of(conn: Connection, dataset_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    r = t.resources
    out: dict[str, list[Row[Any]]] = defaultdict(list)
    if dataset_ids:

        def build(dialect: str) -> Executable:
            return (
                select(r)
                .where(bulk.among_param(r.c.dataset_id, "keys", dialect))
                .order_by(r.c.dataset_id, r.c.position)
            )

        for row in by_keys(conn, "resources of datasets", build, dataset_ids):
            out[row.dataset_id].append(row)
    return out


def tags_of(conn: Connection, dataset_ids: Sequence[str]) -> dict[str, list[Any]]:
    dt, tg = t.dataset_tags, t.tags
    out: dict[str, list[Any]] = defaultdict(list)
    if dataset_ids:

        def build(dialect: str) -> Executable:
            return (
                select(dt.c.dataset_id, tg.c.id, tg.c.name)
                .join(tg, tg.c.id == dt.c.tag_id)
                .where(bulk.among_param(dt.c.dataset_id, "keys", dialect))
                .order_by(tg.c.name)
            )

        for row in by_keys(conn, "tags of datasets", build, dataset_ids):
            out[row.dataset_id].append(row)
    return out


def groups_of(conn: Connection, dataset_ids: Sequence[str]) -> dict[str, list[Any]]:
    dg, g = t.dataset_groups, t.groups
    out: dict[str, list[Any]] = defaultdict(list)
    if dataset_ids:

        def build(dialect: str) -> Executable:
            return (
                select(dg.c.dataset_id, g)
                .join(g, g.c.id == dg.c.group_id)
                .where(bulk.among_param(dg.c.dataset_id, "keys", dialect))
                .order_by(g.c.name)
            )

        for row in by_keys(conn, "groups of datasets", build, dataset_ids):
            out[row.dataset_id].append(row)
    return out


def set_tags(conn: Connection, dataset_id: str, names: Sequence[str], tag_id: Any) -> None:
    tg, dt = t.tags, t.dataset_tags
    conn.execute(delete(dt).where(dt.c.dataset_id == dataset_id))
    if not names:
        return
    known = {r.name: r.id for r in conn.execute(select(tg).where(tg.c.name.in_(list(names))))}
    for name in names:
        if name not in known:
            known[name] = tag_id(name)
            conn.execute(insert(tg).values(id=known[name], name=name))
    conn.execute(insert(dt), [{"dataset_id": dataset_id, "tag_id": known[n]} for n in names])


def set_groups(conn: Connection, dataset_id: str, group_ids: Sequence[str]) -> None:
    dg = t.dataset_groups
    conn.execute(delete(dg).where(dg.c.dataset_id == dataset_id))
    if group_ids:
        conn.execute(insert(dg), [{"dataset_id": dataset_id, "group_id": g} for g in group_ids])


def licences(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(t.licences).order_by(t.licences.c.ord)))


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    dataset_id: str | None,
    data: dict[str, Any] | None,
) -> None:
    """One row of the audit trail."""
    conn.execute(
        insert(t.activity).values(
            at=now_us(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            dataset_id=dataset_id,
            data=data,
        )
    )
