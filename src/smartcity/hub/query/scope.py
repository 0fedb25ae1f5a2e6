"""Scopes (ETSI GS CIM 009 v1.8, clause 4.18) and the scope query language ``scopeQ`` (4.19).

An entity's ``scope`` is a list of hierarchical paths such as ``/Madrid/Gardens/ParqueNorte``.
A scopeQ term matches an entity if ANY of its scopes matches the term:

* ``/Madrid/Gardens`` — exactly that scope;
* ``/Madrid/#`` — ``/Madrid`` itself or anything below it; ``/#`` alone — any scope at all;
* ``/Madrid/+/Gardens`` — ``+`` stands for exactly one level.

Terms combine with ``;`` (and), ``|`` or ``,`` (or; ``;`` binds tighter) and parentheses.

Python matching and SQL both go through the same anchored regular expression, so the two
cannot disagree; ``validate_scope`` keeps stored scopes to letters, digits and ``_`` levels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeAlias

from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from smartcity.hub.errors import BadRequestData

MAX_SCOPE_QUERY_LENGTH = 2048
MAX_DEPTH = 32


@dataclass(frozen=True)
class ScopePattern:
    """One scopeQ term, e.g. ``/Madrid/+/Gardens/#``: levels, possibly ``+``, last maybe ``#``."""

    levels: tuple[str, ...]

    def __str__(self) -> str:
        return "/" + "/".join(self.levels)


@dataclass(frozen=True)
class ScopeAnd:
    items: tuple[ScopeNode, ...]

    def __str__(self) -> str:
        return scope_text(self)


@dataclass(frozen=True)
class ScopeOr:
    items: tuple[ScopeNode, ...]

    def __str__(self) -> str:
        return scope_text(self)


ScopeNode: TypeAlias = ScopeAnd | ScopeOr | ScopePattern


def scope_text(node: ScopeNode) -> str:
    if isinstance(node, ScopeAnd):
        return ";".join(
            f"({scope_text(i)})" if isinstance(i, ScopeOr) else scope_text(i) for i in node.items
        )
    if isinstance(node, ScopeOr):
        return "|".join(scope_text(i) for i in node.items)
    return str(node)


# -- validation of stored scopes ----------------------------------------------------------------


def _level_ok(level: str) -> bool:
    # ScopeLevel = 1*(unicodeLetter / unicodeNumber / "_")
    return bool(level) and all(ch.isalnum() or ch == "_" for ch in level)


def validate_scope(value: Any) -> list[str]:
    """The scopes of an entity as a list; raise :class:`BadRequestData` if malformed."""
    scopes = [value] if isinstance(value, str) else value
    if not isinstance(scopes, list) or not scopes:
        raise BadRequestData("scope must be a string or a non-empty list of strings like '/A/B'")
    for scope in scopes:
        if not isinstance(scope, str) or not scope.startswith("/"):
            raise BadRequestData(f"scope {scope!r} must be a string starting with '/'")
        levels = scope[1:].split("/")
        if not all(_level_ok(level) for level in levels):
            raise BadRequestData(
                f"scope {scope!r} is malformed: levels are non-empty letters, digits or '_' "
                "separated by single '/' ('#' and '+' are for scopeQ only)"
            )
    return list(scopes)


# -- parsing scopeQ -----------------------------------------------------------------------------


def parse_scope_q(text: str) -> ScopeNode:
    """Parse a scopeQ expression; raise :class:`BadRequestData` saying where it went wrong."""
    if not text:
        raise BadRequestData("scopeQ is empty; give a scope such as /Madrid/#")
    if len(text) > MAX_SCOPE_QUERY_LENGTH:
        raise BadRequestData(f"scopeQ is longer than {MAX_SCOPE_QUERY_LENGTH} characters")
    parser = _ScopeParser(text)
    node = parser.query()
    if parser.pos < len(text):
        raise parser.error("expected ';', '|' or the end")
    return node


class _ScopeParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def error(self, what: str) -> BadRequestData:
        found = repr(self.text[self.pos : self.pos + 12]) if self.pos < len(self.text) else "end"
        return BadRequestData(f"scopeQ: {what} at position {self.pos + 1} (found {found})")

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def query(self) -> ScopeNode:
        items = [self.conjunction()]
        # ',' is accepted as OR too: clients write scope lists the way they write attrs lists.
        while self.peek("|") or self.peek(","):
            self.pos += 1
            items.append(self.conjunction())
        return _combine(ScopeOr, items)

    def conjunction(self) -> ScopeNode:
        items = [self.primary()]
        while self.peek(";"):
            self.pos += 1
            items.append(self.primary())
        return _combine(ScopeAnd, items)

    def primary(self) -> ScopeNode:
        if not self.peek("("):
            return self.pattern()
        self.pos += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"parentheses nest deeper than {MAX_DEPTH} levels")
        node = self.query()
        if not self.peek(")"):
            raise self.error("expected ')'")
        self.pos += 1
        self.depth -= 1
        return node

    def pattern(self) -> ScopePattern:
        if not self.peek("/"):
            raise self.error("expected a scope starting with '/'")
        levels: list[str] = []
        while self.peek("/"):
            if levels and levels[-1] == "#":
                raise self.error("'#' must be the last level")
            self.pos += 1
            start = self.pos
            if self.peek("#") or self.peek("+"):
                self.pos += 1
            else:
                while self.pos < len(self.text) and _level_ok(self.text[self.pos]):
                    self.pos += 1
            if self.pos == start:
                raise self.error("expected a scope level (letters, digits, '_'), '+' or '#'")
            levels.append(self.text[start : self.pos])
        return ScopePattern(tuple(levels))


def _combine(kind: type[ScopeAnd] | type[ScopeOr], items: list[ScopeNode]) -> ScopeNode:
    if len(items) == 1:
        return items[0]
    flat: list[ScopeNode] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


# -- matching -----------------------------------------------------------------------------------


def pattern_regex(pattern: ScopePattern) -> str:
    """An anchored regex for the pattern that means the same in Python (with DOTALL) and as a
    PostgreSQL ARE: only ``\\A``, ``\\Z``, ``/``, ``[^/]+``, ``(?:/.*)?`` and literal levels,
    which the parser restricts to letters, digits and ``_``."""
    levels = pattern.levels
    tail = levels[-1] == "#"
    parts = ["\\A"]
    for level in levels[:-1] if tail else levels:
        parts.append("/" + ("[^/]+" if level == "+" else level))
    if tail:
        # "/#" alone is any scope; "/A/#" is /A itself or anything below it.
        parts.append("/.*" if len(levels) == 1 else "(?:/.*)?")
    parts.append("\\Z")
    return "".join(parts)


@lru_cache(maxsize=256)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.DOTALL)


def scope_matches(node: ScopeNode, scopes: Sequence[str] | None) -> bool:
    """Whether an entity with these scopes (None or [] if it has none) satisfies the query."""
    if isinstance(node, ScopeAnd):
        return all(scope_matches(item, scopes) for item in node.items)
    if isinstance(node, ScopeOr):
        return any(scope_matches(item, scopes) for item in node.items)
    if not isinstance(scopes, list):
        return False  # no scope (a bare string is not a stored form either)
    regex = _compiled(pattern_regex(node))
    return any(isinstance(s, str) and regex.search(s) is not None for s in scopes)


def scope_to_sql(
    node: ScopeNode, doc_col: ColumnElement[Any], dialect_name: str
) -> ColumnElement[bool]:
    """A WHERE clause over ``doc_col`` equivalent to ``scope_matches(node, doc.get("scope"))``.

    On SQLite, patterns with ``+`` or ``#`` need ``regexp`` from
    :func:`smartcity.hub.query.qsql.register_sqlite_functions`.
    """
    if isinstance(node, ScopeAnd):
        return and_(*(scope_to_sql(item, doc_col, dialect_name) for item in node.items))
    if isinstance(node, ScopeOr):
        return or_(*(scope_to_sql(item, doc_col, dialect_name) for item in node.items))
    wildcard = any(level in ("+", "#") for level in node.levels)
    regex = literal(pattern_regex(node), String)
    matched: ColumnElement[bool]
    if dialect_name == "sqlite":
        path = literal("$.scope", String)
        rows = func.json_each(doc_col, path).table_valued("type", "atom").alias()
        scope: ColumnElement[str] = rows.c.atom
        is_string = and_(func.json_type(doc_col, path) == "array", rows.c.type == "text")
        if wildcard:
            matched = type_coerce(func.regexp(regex, scope), Boolean)
    elif dialect_name == "postgresql":
        value = doc_col.op("->", return_type=JSONB)(cast(literal("scope", String), Text))
        array = case((func.jsonb_typeof(value) == "array", value), else_=None)
        rows = func.jsonb_array_elements(array).table_valued("value").alias()
        element = type_coerce(rows.c.value, JSONB)
        scope = element.op("#>>", return_type=Text)(literal_column("'{}'::text[]"))
        is_string = func.jsonb_typeof(element) == "string"
        if wildcard:
            matched = scope.collate("C").op("~", return_type=Boolean)(regex)
    else:
        raise ValueError(f"scopeQ cannot be compiled for the {dialect_name!r} database")
    if not wildcard:
        matched = scope == literal(str(node), String)
    where = and_(is_string, matched)
    return select(literal_column("1")).select_from(rows).where(where).exists()
