"""Keeps the search index of one dataset in step with it, inside the write's transaction:
a dataset changed and its index rows change together or not at all."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Executable, and_, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.dictize import kept_package
from smartcity.opendata.languages import LANGS
from smartcity.opendata.search import text
from smartcity.opendata.search.tables import (
    ROW_COLUMNS,
    VALUE,
    search_docs,
    search_facet_counts,
    search_facets,
    search_postings,
    search_rows,
    search_text,
    search_tokens,
)
from smartcity.storage import bulk

# How much a match in each field counts towards a dataset's score.
WEIGHTS = {
    "title": 8,
    "tags": 6,
    "name": 4,
    "organization": 3,
    "groups": 3,
    "notes": 2,
    "res": 1,
    "dict": 1,
}
# The separators of a dataset's kept facet values (``keep_facets``): ASCII's unit and
# record separators.
FIELD, ENTRY = "\x1f", "\x1e"
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
# Facet fields (``field:value`` filters, ``facet.field`` counts).
FACETS = (
    "organization",
    "owner_org",
    "groups",
    "tags",
    "res_format",
    "license_id",
    "name",
    "id",
    "frequency",
    "capacity",
)
# Facets whose value is the dataset's own column, one per dataset: search counts them from
# the matches' columns, so they are not kept with the other values. Kept, they were two of
# every match's ~12 entries but nearly all of the distinct ones counted (2,748 of 2,794 for
# 1,374 matches), which cost more to count than the rest.
OWN = ("name", "id")


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        return [str(v) for v in value.values() if v]
    return [str(value)] if value else []


def _facet_values(conn: Connection, dataset_id: str) -> Counter[tuple[str, str]]:
    F = search_facets
    return Counter(
        (row.field, row.value)
        for row in conn.execute(select(F.c.field, F.c.value).where(F.c.dataset_id == dataset_id))
    )


def _count(
    conn: Connection, before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]
) -> None:
    """Move ``opendata_search_facet_counts`` from a dataset's old facet rows to its new ones.
    Only the difference is written: an edit that keeps the licence leaves the licence's row
    (which every dataset shares) alone, so writers seldom wait on each other's row locks;
    keys go in sorted order so two writers lock shared rows in the same order (no deadlock).
    A count that reaches 0 is deleted, so the table holds exactly the GROUP BY of the rows."""
    C = search_facet_counts
    added = sorted((after - before).items())
    taken = sorted((before - after).items())
    if added:
        rows = [{"field": f, "value": v, "n": n} for (f, v), n in added]
        upsert: Any = (
            postgresql.insert(C)
            if conn.dialect.name == "postgresql"
            else sqlite.insert(C)  # SQLite 3.24+: INSERT ... ON CONFLICT DO UPDATE
        )
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[C.c.field, C.c.value], set_={"n": C.c.n + upsert.excluded.n}
            ),
            rows,
        )
    if taken:
        key = and_(C.c.field == bindparam("f"), C.c.value == bindparam("v"))
        rows = [{"f": f, "v": v, "k": n} for (f, v), n in taken]
        conn.execute(update(C).where(key).values(n=C.c.n - bindparam("k")), rows)
        conn.execute(delete(C).where(key, C.c.n <= 0), [{"f": f, "v": v} for (f, v), _ in taken])


def _delete_rows(conn: Connection, dataset_id: str) -> None:
    for table in (
        search_tokens,
        search_postings,
        search_facets,
        search_text,
        search_docs,
        search_rows,
    ):
        conn.execute(delete(table).where(table.c.dataset_id == dataset_id))


def keep_facets(rows: Iterable[tuple[str, str]]) -> str:
    """A dataset's facet rows as kept in its search row (``opendata_search_rows.facets``,
    migrations 0027 and 0031), which search counts its matches' facets from:
    ``field<US>value`` entries joined by RS, in order. The two separators are control
    characters, which ``facet_value`` takes out of every value. The ``OWN`` fields are left
    out (0028)."""
    return ENTRY.join(f"{field}{FIELD}{value}" for field, value in sorted(rows) if field not in OWN)


def remove(conn: Connection, dataset_id: str) -> None:
    _count(conn, _facet_values(conn, dataset_id), Counter())
    _delete_rows(conn, dataset_id)


def reindex(conn: Connection, dataset_id: str) -> None:
    """Rewrite the index rows of one dataset (none for a deleted one)."""
    before = _facet_values(conn, dataset_id)
    _delete_rows(conn, dataset_id)
    d = conn.execute(select(t.datasets).where(t.datasets.c.id == dataset_id)).first()
    if d is None or d.state == "deleted":
        _count(conn, before, Counter())
        return
    org = conn.execute(select(t.organisations).where(t.organisations.c.id == d.owner_org)).first()
    groups = repo.groups_of(conn, [dataset_id]).get(dataset_id, [])
    tags = repo.tags_of(conn, [dataset_id]).get(dataset_id, [])
    resources = repo.resources_of(conn, [dataset_id]).get(dataset_id, [])

    fields: dict[str, list[str]] = {
        "title": list(_texts(d.title)),
        "name": [d.name.replace("-", " ").replace("_", " ")],
        "notes": list(_texts(d.notes)),
        "tags": [tag.name for tag in tags],
        "organization": [*(_texts(org.title) if org else []), org.name if org else ""],
        "groups": [s for g in groups for s in (*_texts(g.title), g.name)],
        "res": [s for r in resources for s in (*_texts(r.name), *_texts(r.description), r.format)],
        "dict": [
            s
            for f in d.data_dictionary or []
            for s in (str(f.get("name", "")), *_texts(f.get("description")))
        ],
    }
    rows: list[dict[str, Any]] = []
    for field, values in fields.items():
        counts = Counter(tok for value in values for tok in text.tokens(value))
        weight = WEIGHTS[field]
        rows.extend(
            {"token": tok, "field": field, "dataset_id": dataset_id, "weight": weight * min(n, 5)}
            for tok, n in counts.items()
        )
    if rows:
        conn.execute(insert(search_tokens), rows)
        # The same tokens once per dataset, their weights summed over the fields.
        summed: Counter[str] = Counter()
        for row in rows:
            summed[row["token"]] += row["weight"]
        conn.execute(
            insert(search_postings),
            [{"token": tok, "dataset_id": dataset_id, "weight": w} for tok, w in summed.items()],
        )

    facet_values: dict[str, set[str]] = {
        "organization": {org.name} if org else set(),
        "owner_org": {d.owner_org},
        "groups": {g.name for g in groups},
        "tags": {tag.name for tag in tags},
        "res_format": {r.format for r in resources if r.format},
        "license_id": {d.license_id} if d.license_id else set(),
        "name": {d.name},
        "id": {d.id},
        "frequency": {d.frequency} if d.frequency else set(),
        "capacity": {"private" if d.private else "public"},
    }
    facet_rows: dict[tuple[str, str], str] = {}
    for field, found in facet_values.items():
        for value in found:
            value = facet_value(value)
            facet_rows.setdefault((field, fold_value(value)), value)
    conn.execute(
        insert(search_facets),
        [
            {"field": f, "folded": folded, "dataset_id": dataset_id, "value": value}
            for (f, folded), value in facet_rows.items()
        ],
    )
    _count(conn, before, Counter((f, value) for (f, _), value in facet_rows.items()))
    conn.execute(
        insert(search_rows).values(
            dataset_id=dataset_id,
            facets=keep_facets((f, value) for (f, _), value in facet_rows.items()),
            **{column: d._mapping[column] for column in ROW_COLUMNS},
        )
    )
    body = " | ".join(text.surface(v) for values in fields.values() for v in values if v)
    conn.execute(insert(search_text).values(dataset_id=dataset_id, body=f" {body} "))
    # The dataset's package dict in each language, which a search's page is read from.
    docs = [kept_package(d, lang, groups=groups, tags=tags, resources=resources) for lang in LANGS]
    conn.execute(
        insert(search_docs),
        [
            {"dataset_id": dataset_id, "lang": lang, "doc": orjson.dumps(doc).decode()}
            for lang, doc in zip(LANGS, docs, strict=True)
        ],
    )


def facet_value(value: str) -> str:
    """A facet value as indexed: at most ``VALUE`` characters, control characters (which
    no name, tag or format means to hold) made spaces."""
    return _CONTROLS.sub(" ", value)[:VALUE]


def fold_value(value: str) -> str:
    """A facet value as ``field:value`` filters compare it: case-insensitively."""
    return facet_value(value).casefold()[:VALUE]


def kept_docs(conn: Connection, ids: Sequence[str], lang: str) -> dict[str, str]:
    """The kept package dicts (``opendata_search_docs``) of ``ids`` in ``lang``, as JSON
    text, by dataset id; a dataset not indexed since migration 0029 has none."""
    if not ids:
        return {}
    k = search_docs

    def build(dialect: str) -> Executable:
        return select(k.c.dataset_id, k.c.doc).where(
            bulk.among_param(k.c.dataset_id, "keys", dialect), k.c.lang == bindparam("lang")
        )

    found = repo.by_keys(conn, "kept docs", build, ids, lang=lang)
    return {r.dataset_id: r.doc for r in found}
