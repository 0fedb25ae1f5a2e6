"""The SQL of a search's matches (``engine.search``): the columns it reads of a dataset
(``Rows``), the order of a page (``order``), the postings of words joined on the dataset
(``joined``), and the one statement that reads a page, the count and the facet values of the
matches together (``statement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Join
from sqlalchemy.sql.compiler import SQLCompiler

from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.errors import SearchQueryError
from smartcity.opendata.languages import Lang
from smartcity.opendata.search import index
from smartcity.opendata.search.tables import search_docs, search_postings, search_rows

D = t.datasets
P = search_postings


@dataclass(frozen=True)
class Rows:
    """The columns search reads of a dataset: the datasets' own (``_browse`` walks their index
    on state, private and modified_at) or their narrow copies in ``opendata_search_rows``,
    which ``search`` builds its matches from (migration 0031: PostgreSQL hashed or probed the
    wide rows of every dataset for a word search)."""

    table: Any
    id: Any
    owner_org: Any
    state: Any
    private: Any
    name: Any
    created_at: Any
    modified_at: Any
    titles: dict[str, Any]
    facets: Any

    @classmethod
    def of(cls, table: Any, key: str, facets: str | None) -> Rows:
        c = table.c
        titles = {"en": c.title_en, "zh-Hant": c.title_tc, "zh-Hans": c.title_sc}
        return cls(
            table, c[key], c.owner_org, c.state, c.private, c.name, c.created_at,
            c.modified_at, titles, c[facets] if facets else None,
        )  # fmt: skip


DATASETS = Rows.of(D, "id", None)
SEARCH_ROWS = Rows.of(search_rows, "dataset_id", "facets")


@dataclass(frozen=True)
class Keys:
    """The columns a page is ordered by: the datasets table's own (``_browse``), or their
    copies in the CTE of matches (``search``)."""

    id: Any
    modified_at: Any
    created_at: Any
    name: Any
    title: Any
    score: Any


def order(sort: str, keys: Keys) -> list[Any]:
    columns: list[Any] = []
    for part in sort.split(","):
        bits = part.split()
        if not bits:
            continue
        name = bits[0]
        direction = bits[1].lower() if len(bits) > 1 else "asc"
        if len(bits) > 2 or direction not in ("asc", "desc"):
            raise SearchQueryError(f"sort: {part.strip()!r} must read 'FIELD asc' or 'FIELD desc'")
        column: Any
        if name == "score":
            column = keys.score
        elif name == "metadata_modified":
            column = keys.modified_at
        elif name == "metadata_created":
            column = keys.created_at
        elif name == "name":
            column = keys.name
        elif name in ("title_string", "title"):
            column = keys.title
        elif name in ("id",):
            column = keys.id
        else:
            raise SearchQueryError(
                f"sort: cannot sort by {name!r}; sort by score, metadata_modified, "
                "metadata_created, name or title_string"
            )
        if column is None:
            continue
        columns.append(column.desc() if direction == "desc" else column.asc())
    columns.append(keys.id.asc())  # a total order: pages never overlap or skip
    return columns


def joined(rows: Rows, n: int) -> tuple[Any, ColumnElement[bool], Any]:
    """The postings of ``n`` tokens (bound as ``joined_0`` ...) joined on the dataset: the
    source, the condition on the first token, and the summed weight. The postings come
    first, each joined on the one before, then the dataset on the last: so SQLite seeks a
    dataset only for the candidates that have every token (it otherwise sought one for
    every dataset of the first token: 3,958 seeks for 1,374 matches)."""
    postings = [P.alias(f"p{i}") for i in range(n)]
    source: Any = postings[0]
    for i in range(1, n):
        on = and_(
            postings[i].c.dataset_id == postings[i - 1].c.dataset_id,
            postings[i].c.token == bindparam(f"joined_{i}"),
        )
        source = InOrder(source, postings[i], on)
    source = InOrder(source, rows.table, rows.id == postings[-1].c.dataset_id)
    score = sum((p.c.weight for p in postings[1:]), postings[0].c.weight)
    return source, postings[0].c.token == bindparam("joined_0"), score


def statement(
    rows: Rows,
    source: Any,
    where: ColumnElement[bool],
    score: Any,
    has_text: bool,
    lang: Lang,
    sort: str,
    fields: list[str],
    paged: bool,
) -> Any:
    """One statement, three kinds of row: 0, the page (id, its place and its kept package
    dict in ``lang``, or NULL; its size and offset bound as ``page_rows`` and
    ``page_start``); 1, the count; 2, the matches' kept facet values in one text, and 3+,
    their ``index.OWN`` columns when those facets are asked for.

    The match set is built once (a CTE): the page, the count and every facet read it. A
    CTE read more than once is materialised by PostgreSQL (12+) and SQLite (3.35+), so the
    index lookups of the query's terms run once, not once for the page and again for the
    facets as they did (a temporary table would do the same but cannot be created on a read
    replica, where these reads may go)."""
    columns = [
        rows.id.label("id"),
        rows.modified_at.label("modified_at"),
        rows.created_at.label("created_at"),
        rows.name.label("name"),
        rows.titles[lang].label("title"),
        score.label("score"),
    ]
    if fields:  # the kept facet values, counted by ``search``
        columns.append(rows.facets.label("facets"))
    matches = select(*columns).select_from(source).where(where).cte("matches")
    m = matches.c
    keys = Keys(m.id, m.modified_at, m.created_at, m.name, m.title, m.score if has_text else None)
    ordered = order(sort, keys)
    parts: list[Select[Any, Any, Any, Any]] = [
        select(
            literal(1).label("kind"), null().label("a"), func.count(), null().label("doc")
        ).select_from(matches)
    ]
    if paged:
        # The page is cut from the matches by ORDER BY ... LIMIT, which both databases do as
        # a top-N sort, and numbered afterwards: numbered over all the matches (a window
        # below the LIMIT) they were sorted in full (10,000 matches: 9.7 ms on PostgreSQL).
        page = (
            select(m.id, m.modified_at, m.created_at, m.name, m.title, m.score)
            .order_by(*ordered)
            .limit(bindparam("page_rows", type_=Integer))
            .offset(bindparam("page_start", type_=Integer))
            .subquery("page")
        )
        p = page.c
        in_page = Keys(
            p.id, p.modified_at, p.created_at, p.name, p.title, p.score if has_text else None
        )
        place = func.row_number().over(order_by=order(sort, in_page))
        # The page's kept package dicts come with it (``index.kept_docs`` read them after the
        # search, one more round trip of the page's five; waiting on them was a sixth of
        # ``package_search`` on PostgreSQL under load, by py-spy). A subquery per page row,
        # not a join: joined to the page, SQLite's plan of the whole statement took 44 ms
        # instead of 5.5 (10,000 datasets, "parking vacancy").
        k = search_docs
        doc = (
            select(k.c.doc)
            .where(k.c.dataset_id == p.id, k.c.lang == literal(lang))
            .scalar_subquery()
        )
        parts.append(select(literal(0), p.id, place, doc))
    if fields:
        # The matches' facet values as kept in their rows (migration 0027), counted by
        # ``search``: the rows are already read, where counting them in SQL sought each
        # match's rows of opendata_search_facets (10,000 datasets, 1,374 matches: 9 → 2.5 ms
        # on SQLite, 20 → 15 ms with the matches on PostgreSQL).
        # All of them joined into one text by the database (string_agg, group_concat),
        # with the separator that already parts a match's entries: one row to fetch where a
        # row per match cost more to fetch and unpack than to count (1,374 matches: ~10 % of
        # a word search's time on SQLite, by py-spy).
        parts.append(
            select(literal(2), func.aggregate_strings(m.facets, index.ENTRY), null(), null())
        )
        # The facets that are a match's own column (``index.OWN``), when asked for.
        parts.extend(
            select(literal(3 + i), m[name], null(), null())
            for i, name in enumerate(index.OWN)
            if name in fields
        )
    return union_all(*parts)


class InOrder(Join):
    """A join that SQLite runs in the order written (``CROSS JOIN``); a plain join elsewhere.
    SQLite's statistics give a token's average list, which the many tokens found in one
    dataset only (numbers, names) make ~1 row: it took every list for short and sought the
    dataset before the next token (postings of "parking vacancy": 24.5 ms, 15.6 ms in order,
    measured alternately on the same catalogue). PostgreSQL knows each token's frequency."""

    inherit_cache = True


@compiles(InOrder)
def _join(join: InOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.visit_join(join, **kw)


@compiles(InOrder, "sqlite")
def _cross_join(join: InOrder, compiler: SQLCompiler, **kw: Any) -> str:
    kw["asfrom"] = True
    assert join.onclause is not None  # every InOrder is built with one
    return (
        f"{join.left._compiler_dispatch(compiler, **kw)} CROSS JOIN "
        f"{join.right._compiler_dispatch(compiler, **kw)} ON "
        f"{join.onclause._compiler_dispatch(compiler, **{**kw, 'asfrom': False})}"
    )
