"""A DataStore table on a resource's page, without JavaScript: column headers sort (links),
a form filters by column (words each column's value must contain), and "Next rows" follows
the DataStore's keyset cursor, so the thousandth page is as quick as the first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from smartcity.opendata.catalogue.access import ANONYMOUS
from smartcity.opendata.datastore import search as s
from smartcity.opendata.errors import OpenDataError
from smartcity.opendata.runtime import OpenData
from smartcity.storage.engine import QueryTimeout

ROWS = 25
FILTER_PREFIX = "f."  # ?f.district=wan+chai
MAX_FILTER = 100  # characters of one column's filter


@dataclass
class Column:
    id: str
    type: str
    label: str | None
    sort_href: str
    sorted: str | None  # "ascending" / "descending" (aria-sort), None
    filter: str


@dataclass
class Preview:
    columns: list[Column]
    rows: list[list[Any]]
    total: int | None
    next_href: str | None
    first_href: str | None  # back to the first rows, when on a later page
    error: str | None = None
    hidden: list[tuple[str, str]] = field(default_factory=list)  # the sort, kept by the form


def table(od: OpenData, resource_id: str, query: Mapping[str, str], path: str) -> Preview:
    try:
        found = od.datastore.readable(ANONYMOUS, resource_id)
    except OpenDataError as exc:
        return Preview([], [], None, None, None, exc.message)
    names = [f.id for f in found.fields]
    sort_by = query.get("sort") if query.get("sort") in names else None
    descending = query.get("dir") == "desc"
    filters = {n: " ".join(query.get(FILTER_PREFIX + n, "").split())[:MAX_FILTER] for n in names}
    words = {n: v for n, v in filters.items() if v}
    cursor = query.get("cursor") or None
    keep = [(FILTER_PREFIX + n, v) for n, v in words.items()]
    sorting = [("sort", sort_by), ("dir", "desc" if descending else "asc")] if sort_by else []

    def href(pairs: list[tuple[str, str]]) -> str:
        return f"{path}?{urlencode(pairs)}#preview" if pairs else f"{path}#preview"

    params = s.SearchParams(
        q=words or None,
        sort=[(sort_by, descending)] if sort_by else [],
        limit=ROWS,
        cursor=cursor,
        include_total=True,
        records_format="lists",
    )
    try:
        with od.datastore.db.snapshot(budget=od.settings.datastore_search_timeout_s) as conn:
            page = s.search(conn, found, params)
    except OpenDataError as exc:  # e.g. a cursor from another sort: start again
        return Preview([], [], None, None, href(keep + sorting), exc.message)
    except QueryTimeout:  # the time budget: the filters are too broad for this table
        return Preview(
            [], [], None, None, href(keep + sorting), "the search took too long: filter more"
        )
    columns = []
    by_id = {f.id: f for f in found.fields}
    for f in page.fields:
        name = f["id"]
        if name == "_id":
            continue
        now = "descending" if descending else "ascending"
        flip = "asc" if sort_by == name and descending else "desc" if sort_by == name else "asc"
        info = by_id[name].info if name in by_id else None
        label = info.get("label") if isinstance(info, dict) else None
        columns.append(
            Column(
                name,
                f["type"],
                label if isinstance(label, str) else None,
                href([*keep, ("sort", name), ("dir", flip)]),
                now if sort_by == name else None,
                filters.get(name, ""),
            )
        )
    keep_cols = [i for i, f in enumerate(page.fields) if f["id"] != "_id"]
    rows = [[record[i] for i in keep_cols] for record in page.records]
    more = page.next_cursor is not None and len(page.records) == ROWS
    return Preview(
        columns,
        rows,
        page.total,
        href([*keep, *sorting, ("cursor", page.next_cursor or "")]) if more else None,
        href(keep + sorting) if cursor else None,
        hidden=sorting,
    )
