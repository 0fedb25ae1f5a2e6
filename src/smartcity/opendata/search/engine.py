"""``package_search`` over the index tables: the query tree compiled to one SQL condition,
whose matches are built once (a CTE) for a count, one page of ids in order, and the facet
counts, all in one statement; a search without words or filters skips the matches
(``_browse``).

Every term is an index lookup (``opendata_search_tokens`` by token, its primary key's first
column): on SQLite one ``id IN (...)`` semi-join per token, on PostgreSQL a flag of one grouped
pass over all the query's tokens (``_Compiler.words``); relevance is the sum of the matched
tokens' weights (title counts more than notes); words that only narrow join their tokens'
postings instead (``_conjunction``). Facets are counted from the values each match keeps in its
search row (``index.keep_facets``). The statement itself is written by ``search/statement.py``.
Offsets are not capped: a page costs a sort of the matching ids, not a walk through earlier
pages' documents.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Connection,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql import Subquery, column

from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import ANONYMOUS, Principal
from smartcity.opendata.errors import SearchQueryError
from smartcity.opendata.languages import Lang
from smartcity.opendata.search import index, text
from smartcity.opendata.search import query as ql
from smartcity.opendata.search import statement as st
from smartcity.opendata.search.index import FACETS, fold_value
from smartcity.opendata.search.tables import (
    search_facet_counts,
    search_facets,
    search_text,
    search_tokens,
)

D = t.datasets
T = search_tokens
F = search_facets
C = search_facet_counts
S = search_text
MAX_TERM_TOKENS = 8
# At most this many tokens' postings are joined (``_conjunction``); a query with more takes
# the general plan, which looks tokens up without joining them.
MAX_JOINED = 32
# At most this many datasets hidden from a reader are taken away from the whole index's facet
# counts (``_browse``); past it, the visible ones are counted instead.
MAX_HIDDEN = 1000
_RELATIVE = re.compile(r"^NOW(?:([+-])(\d+)(SECOND|MINUTE|HOUR|DAY|WEEK|YEAR)S?)?$")
_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800, "YEAR": 31_556_952}


@dataclass
class SearchRequest:
    q: str | None = None
    fq: list[str] = field(default_factory=list)
    sort: str | None = None
    rows: int = 10
    start: int = 0
    facet_fields: list[str] = field(default_factory=list)
    facet_limit: int = 50
    facet_mincount: int = 1
    include_private: bool = False
    include_drafts: bool = False
    lang: Lang = "en"


@dataclass
class SearchResult:
    count: int
    ids: list[str]
    facets: dict[str, list[tuple[str, int]]]
    sort: str
    lang: Lang = "en"
    # The page's kept package dicts in ``lang`` (JSON text) by id, when the search read them
    # with the page (a dataset not indexed since migration 0029 has none); None: not read.
    docs: dict[str, str] | None = None

    def docs_in(self, lang: str) -> dict[str, str] | None:
        """The page's kept dicts if they are in ``lang`` (else None: read them)."""
        return self.docs if lang == self.lang else None


def _time(text_value: str, field_name: str) -> int | None:
    """Microseconds of a range end: ``*``, ``NOW``, ``NOW-7DAYS`` or an ISO time."""
    value = text_value.strip().upper()
    if value == "*":
        return None
    relative = _RELATIVE.match(value)
    if relative:
        now = dt.datetime.now(dt.UTC).timestamp()
        if relative.group(1):
            amount = int(relative.group(2)) * _UNITS[relative.group(3)]
            now += amount if relative.group(1) == "+" else -amount
        return int(now * 1_000_000)
    try:
        moment = dt.datetime.fromisoformat(text_value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SearchQueryError(
            f"{field_name}: {text_value!r} is not a time; use *, NOW, NOW-7DAYS or "
            "2024-01-31T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1_000_000)


Fields = tuple[str, ...] | None


class _Compiler:
    """A query tree as one SQL condition on the datasets table.

    On PostgreSQL a word's token is a flag of one grouped pass over all the query's tokens
    (``search`` joins it as ``words``, which also sums relevance): ``has_N = 1`` where the
    dataset has the token (in the fields given). PostgreSQL otherwise de-duplicated each
    token's list, hash-joined them in turn and grouped the same rows again for relevance
    (10,000 datasets, two words of ~7,000 rows each: 20 ms, 11 ms with one pass). SQLite
    plans a separate lookup per token better (``id IN (...)``, then a seek per match for
    relevance): the grouped forms measured slower there."""

    def __init__(self, dialect: str, rows: st.Rows) -> None:
        self.dialect = dialect
        self.rows = rows
        self.scored: list[str] = []  # tokens that count towards relevance
        self.flags: dict[tuple[str, Fields], ColumnClause[int]] = {}

    def compile(self, node: ql.Node, *, negated: bool = False) -> ColumnElement[bool]:
        if isinstance(node, ql.All):
            return true()
        if isinstance(node, ql.And):
            return and_(true(), *(self.compile(n, negated=negated) for n in node.items))
        if isinstance(node, ql.Or):
            return or_(*(self.compile(n, negated=negated) for n in node.items))
        if isinstance(node, ql.Not):
            return not_(self.compile(node.item, negated=not negated))
        if isinstance(node, ql.Facet):
            lookup = select(F.c.dataset_id).where(F.c.field == node.field)
            if node.value != "*":
                lookup = lookup.where(F.c.folded == fold_value(node.value))
            return self.rows.id.in_(lookup)
        if isinstance(node, ql.Range):
            rows = self.rows
            column = rows.modified_at if node.field == "metadata_modified" else rows.created_at
            low, high = _time(node.low, node.field), _time(node.high, node.field)
            conds: list[ColumnElement[bool]] = []
            if low is not None:
                conds.append(column >= low if node.low_inclusive else column > low)
            if high is not None:
                conds.append(column <= high if node.high_inclusive else column < high)
            return and_(true(), *conds)
        tokens, extra = self.terms(node, negated=negated)
        return and_(true(), *self.having(tokens, node.fields or None, negated=negated), *extra)

    def having(
        self, needed: list[str], fields: Fields, *, negated: bool
    ) -> list[ColumnElement[bool]]:
        """The datasets with every one of ``needed`` (in ``fields``, when given)."""
        conds: list[ColumnElement[bool]] = []
        for token in dict.fromkeys(needed):  # once each, in the query's order
            if self.dialect == "postgresql":
                flag = self.flags.setdefault((token, fields), column(f"has_{len(self.flags)}"))
                # A dataset with none of the query's tokens has no ``words`` row: NULL. Where
                # it must count as "not found" (under NOT) it is made 0; elsewhere NULL
                # already fails, and the strict ``= 1`` lets PostgreSQL join only the
                # datasets that have the tokens.
                conds.append((func.coalesce(flag, 0) if negated else flag) == 1)
                continue
            lookup = select(T.c.dataset_id).where(T.c.token == token)
            if fields:
                lookup = lookup.where(T.c.field.in_(fields))
            conds.append(self.rows.id.in_(lookup))
        return conds

    def words(self) -> Subquery | None:
        """PostgreSQL: one row per dataset with any of the query's tokens, its relevance
        (``weight``, from the scored tokens) and a ``has_N`` flag per token the conditions
        name; None when they name none."""
        if not self.flags:
            return None
        scored = set(self.scored)
        tokens = sorted(scored | {token for token, _ in self.flags})
        weight: Any = (
            T.c.weight
            if set(tokens) == scored
            else case((T.c.token.in_(sorted(scored)), T.c.weight), else_=0)
        )
        columns: list[Any] = [T.c.dataset_id, func.sum(weight).label("weight")]
        for (token, fields), flag in self.flags.items():
            found = T.c.token == token
            if fields:
                found = and_(found, T.c.field.in_(fields))
            columns.append(func.max(case((found, 1), else_=0)).label(flag.name))
        return (
            select(*columns).where(T.c.token.in_(tokens)).group_by(T.c.dataset_id).subquery("words")
        )

    def terms(
        self, node: ql.Words, *, negated: bool
    ) -> tuple[list[str], list[ColumnElement[bool]]]:
        """The tokens ``node`` needs, and the conditions besides (a phrase's, or a prefix's)."""
        if node.prefix:
            folded = text.fold(node.value).strip()
            if not folded:
                return [], []
            lookup = select(T.c.dataset_id).where(
                T.c.token.startswith(folded[: text.MAX_TOKEN], autoescape=True)
            )
            if node.fields:
                lookup = lookup.where(T.c.field.in_(node.fields))
            return [], [self.rows.id.in_(lookup)]
        tokens, is_phrase = text.query_tokens(node.value)
        if not tokens:  # only common words ("the"): they narrow nothing
            return [], []
        if len(tokens) > MAX_TERM_TOKENS:
            # A long run of Chinese is many character pairs: a few narrow the candidates, the
            # phrase check on the folded text does the rest (one lookup per pair would let a
            # 2,000-character query join the index 2,000 times).
            tokens, is_phrase = tokens[:MAX_TERM_TOKENS], True
        if not negated:
            self.scored.extend(tokens)
        extra: list[ColumnElement[bool]] = []
        if is_phrase or (node.phrase and len(tokens) > 1):
            phrase = text.surface(node.value)
            if phrase:
                extra.append(
                    self.rows.id.in_(
                        select(S.c.dataset_id).where(S.c.body.contains(phrase, autoescape=True))
                    )
                )
        return tokens, extra


def _visible(
    principal: Principal, request: SearchRequest, rows: st.Rows = st.DATASETS
) -> ColumnElement[bool]:
    orgs = principal.reads_private_of()
    states = rows.state == "active"
    if request.include_drafts:
        if orgs is None:
            states = rows.state.in_(["active", "draft"])
        else:
            editable = [o for o in orgs if principal.has_role(o, "editor")]
            states = or_(states, and_(rows.state == "draft", rows.owner_org.in_(editable)))
    if not request.include_private:
        privacy: ColumnElement[bool] = not_(rows.private)
    elif orgs is None:
        privacy = true()
    else:
        privacy = or_(not_(rows.private), rows.owner_org.in_(list(orgs)) if orgs else false())
    return and_(states, privacy)


def _facet_fields(request: SearchRequest) -> list[str]:
    unknown = [f for f in request.facet_fields if f not in FACETS]
    if unknown:
        raise SearchQueryError(
            f"facet.field: cannot count {', '.join(unknown)}; facets are: " + ", ".join(FACETS)
        )
    return request.facet_fields


def _facets(
    request: SearchRequest, counted: Iterable[tuple[str, str, int]]
) -> dict[str, list[tuple[str, int]]]:
    """The counts per field, most frequent first, cut to ``facet.limit`` and ``mincount``."""
    facets: dict[str, list[tuple[str, int]]] = {f: [] for f in request.facet_fields}
    least = max(request.facet_mincount, 1)
    for field_name, value, n in counted:
        if n >= least:
            facets[field_name].append((value, n))
    for items in facets.values():
        items.sort(key=lambda item: (-item[1], item[0]))
        if request.facet_limit >= 0:
            del items[request.facet_limit :]
    return facets


def _hidden(conn: Connection, visible: ColumnElement[bool]) -> list[str] | None:
    """The datasets with facet rows that the reader may not see (drafts, private ones), or
    None when there are more than ``MAX_HIDDEN``. A deleted dataset has no index rows
    (index.reindex), so it is left out; the visibility columns are NOT NULL, so ``NOT
    visible`` has no third truth value."""
    found = list(
        conn.execute(
            select(D.c.id).where(not_(visible), D.c.state != "deleted").limit(MAX_HIDDEN + 1)
        ).scalars()
    )
    return found if len(found) <= MAX_HIDDEN else None


def _browse(
    conn: Connection,
    request: SearchRequest,
    visible: ColumnElement[bool],
    sort: str,
    hidden: list[str],
) -> SearchResult:
    """A search that only hides what the reader may not see (the catalogue's first page: no
    words, no filters). Its count and page come from the datasets' index (state, private,
    modified_at) without visiting every match, and its facets are those of the whole index
    (kept per value in ``opendata_search_facet_counts``) less those of the few ``hidden``
    datasets (counted from their own facet rows)."""
    keys = st.Keys(
        D.c.id, D.c.modified_at, D.c.created_at, D.c.name, st.DATASETS.titles[request.lang], None
    )
    order = st.order(sort, keys)
    count = conn.execute(select(func.count()).select_from(D).where(visible)).scalar_one()
    ids: list[str] = []
    if request.rows > 0 and request.start < count:
        ids = list(
            conn.execute(
                select(D.c.id)
                .where(visible)
                .order_by(*order)
                .limit(request.rows)
                .offset(request.start)
            ).scalars()
        )
    facets: dict[str, list[tuple[str, int]]] = {}
    if request.facet_fields:
        fields = _facet_fields(request)
        totals: Counter[tuple[str, str]] = Counter()
        # The whole index's counts as kept by search/index.py (migration 0026): a few dozen
        # rows, where counting them was a pass over every facet row (80,000 for 10,000).
        every = select(C.c.field, C.c.value, C.c.n).where(C.c.field.in_(fields))
        for row in conn.execute(every):
            totals[(row.field, row.value)] += row.n
        if hidden:
            # The ids as a list of values, not a subquery: the planner then knows they are
            # few and seeks each one's rows (given a subquery, SQLite scanned the facets).
            less = (
                select(F.c.field, F.c.value, func.count().label("n"))
                .where(F.c.field.in_(fields), F.c.dataset_id.in_(hidden))
                .group_by(F.c.field, F.c.value)
            )
            for row in conn.execute(less):
                totals[(row.field, row.value)] -= row.n
        facets = _facets(request, ((f, v, n) for (f, v), n in totals.items()))
    return SearchResult(count, ids, facets, sort)


def search(conn: Connection, request: SearchRequest, principal: Principal) -> SearchResult:
    rows = st.SEARCH_ROWS  # the matches are built from the narrow rows (migration 0031)
    compiler = _Compiler(conn.dialect.name, rows)
    visible = _visible(principal, request, rows)
    trees = [ql.parse(request.q), *(ql.parse(fq) for fq in request.fq if fq.strip())]
    plan = _conjunction(trees)
    joined: list[str] = []  # tokens whose postings are joined on the dataset
    if plan is not None:
        plain, others = plan
        conditions = [visible, *(compiler.compile(node) for node in others)]
        for node in plain:
            tokens, extra = compiler.terms(node, negated=False)
            joined.extend(tokens)
            conditions.extend(extra)
        joined = list(dict.fromkeys(joined))
        if len(joined) > MAX_JOINED:  # SQLite joins at most 64 tables in a statement
            plan, joined, compiler = None, [], _Compiler(conn.dialect.name, rows)
    if plan is None:
        conditions = [visible, *(compiler.compile(tree) for tree in trees)]

    has_text = bool(compiler.scored)
    default = "score desc, metadata_modified desc" if has_text else "metadata_modified desc"
    sort = request.sort.strip() if request.sort and request.sort.strip() else default
    if all(isinstance(tree, ql.All) for tree in trees):
        every = _visible(principal, request)  # the datasets' own columns, and their index
        hidden = _hidden(conn, every) if request.facet_fields else []
        if hidden is not None:
            return _browse(conn, request, every, sort, hidden)

    fields = _facet_fields(request) if request.facet_fields else []
    paged = request.rows > 0
    params: dict[str, Any] = {f"joined_{i}": token for i, token in enumerate(joined)}
    if paged:
        params.update(page_rows=request.rows, page_start=request.start)
    if joined and len(conditions) == 1 and not (request.include_private or request.include_drafts):
        # The usual search, public words and nothing else: its statement is built once per
        # shape, the words bound as parameters (building it took ~1.5 ms a search, py-spy).
        statement = _public_words(len(joined), request.lang, sort, tuple(fields), paged)
    else:
        source, score = _relevance(rows, compiler, joined, conditions)
        statement = st.statement(
            rows, source, and_(*conditions), score, has_text, request.lang, sort, fields, paged
        )
    answered = conn.execute(statement, params).all()

    count = 0
    placed: list[tuple[int, str]] = []
    docs: dict[str, str] = {}
    kept = ""
    own: Counter[tuple[str, str]] = Counter()
    for kind, a, n, doc in answered:
        if kind == 0:
            placed.append((n, a))
            if doc is not None:
                docs[a] = doc
        elif kind == 1:
            count = n
        elif kind == 2:
            kept = a or ""
        else:
            own[(index.OWN[kind - 3], index.facet_value(a))] += 1
    ids = [i for _, i in sorted(placed)]
    facets: dict[str, list[tuple[str, int]]] = {}
    if fields:
        counted = chain(_count_kept(kept, fields), ((f, v, n) for (f, v), n in own.items()))
        facets = _facets(request, counted)
    return SearchResult(count, ids, facets, sort, request.lang, docs)


def _relevance(
    rows: st.Rows, compiler: _Compiler, joined: list[str], conditions: list[ColumnElement[bool]]
) -> tuple[Any, Any]:
    """Where the matches come from and their relevance: the matched tokens' weights summed
    per matched dataset. Words that only narrow (a conjunction at the top of the query, no
    fields: the common search) are their tokens' postings joined on the dataset, each
    posting's weight the token's relevance in that dataset (``_conjunction``; the condition
    on the first token is added to ``conditions``). Otherwise on PostgreSQL the sums come
    from the query's one grouped pass over its tokens (``_Compiler.words``), joined to the
    datasets; on SQLite each sum is a few seeks in the covering index (token, dataset_id,
    weight) of migration 0024, which cost less there."""
    if joined:
        source, first, score = st.joined(rows, len(joined))
        conditions.append(first)
        return source, score
    words = compiler.words()
    if words is not None:
        return rows.table.outerjoin(words, words.c.dataset_id == rows.id), func.coalesce(
            words.c.weight, 0
        )
    if compiler.scored:
        score = (
            select(func.sum(T.c.weight))
            .where(T.c.token.in_(sorted(set(compiler.scored))), T.c.dataset_id == rows.id)
            .correlate(rows.table)
            .scalar_subquery()
        )
        return rows.table, func.coalesce(score, 0)
    return rows.table, literal(0)


# Shapes are few in practice (words per query, language, sort, facets), but sort and facet
# fields come from the caller: the cache is bounded.
@lru_cache(maxsize=256)
def _public_words(n: int, lang: Lang, sort: str, fields: tuple[str, ...], paged: bool) -> Any:
    """The statement of a public search (no private or draft datasets) for ``n`` words that
    only narrow and nothing else, its tokens bound as ``joined_0`` ...: the same statement
    ``search`` builds, kept per shape."""
    rows = st.SEARCH_ROWS
    source, first, score = st.joined(rows, n)
    visible = _visible(ANONYMOUS, SearchRequest(), rows)  # for every reader alike
    where = and_(visible, first)
    return st.statement(rows, source, where, score, True, lang, sort, list(fields), paged)


def _conjunction(trees: list[ql.Node]) -> tuple[list[ql.Words], list[ql.Node]] | None:
    """The query (``q`` and the ``fq`` filters) as the words to join on the dataset and the
    other conditions, when every word is a term of the top-level AND that names no field;
    else None (words under OR or NOT, or in fields, take the compiler's general plan). A
    dataset matches such a query when it has every token of its words, in any field, and
    its relevance is the sum of those tokens' weights: what the general plan computes from
    the per-field rows, read from one row per token (``opendata_search_postings``)."""
    words: list[ql.Words] = []
    others: list[ql.Node] = []
    pending = list(trees)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ql.And):
            pending[:0] = node.items
        elif isinstance(node, ql.Words):
            if node.fields:
                return None
            words.append(node)
        elif _has_words(node):
            return None
        else:
            others.append(node)
    return (words, others) if words else None


def _has_words(node: ql.Node) -> bool:
    if isinstance(node, ql.Words):
        return True
    if isinstance(node, ql.And | ql.Or):
        return any(_has_words(item) for item in node.items)
    if isinstance(node, ql.Not):
        return _has_words(node.item)
    return False


def _count_kept(kept: str, fields: list[str]) -> Iterable[tuple[str, str, int]]:
    """The facet counts of the matches' kept values (``index.keep_facets``, all matches'
    entries in one text): every entry counted at C speed, then the requested fields taken (a
    few dozen distinct entries). A JSON object per match, parsed and counted per field,
    cost twice as long."""
    wanted = set(fields)
    counted = Counter(kept.split(index.ENTRY)) if kept else Counter[str]()
    for entry, n in counted.items():
        name, _, value = entry.partition(index.FIELD)
        if name in wanted:
            yield name, value, n
