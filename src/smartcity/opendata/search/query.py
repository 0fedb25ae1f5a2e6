"""``package_search``'s query language: the part of Solr's syntax CKAN's users write.

    water quality            both words (AND is the default between clauses)
    "air quality"            a phrase
    停車 / 停车               Chinese without spaces, either script
    tags:transport           a field's value (organization, groups, tags, res_format,
                             license_id, name, id, frequency, capacity, owner_org)
    title:parking            words in one text field (title, notes, res_name, text ...)
    metadata_modified:[2024-01-01T00:00:00Z TO NOW]   a time range ({ } excludes the ends)
    a OR b, a AND NOT b, -a, +a, (a OR b) c, park*   (a trailing * is a prefix)
    *:*                      everything

The parser turns text into a small tree (``Node``); ``search/engine.py`` compiles the tree
to SQL over the index tables. Anything it cannot read is a ``SearchQueryError`` saying where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smartcity.opendata.errors import SearchQueryError
from smartcity.opendata.search.index import FACETS

# Text fields a ``field:words`` clause may name → the index fields they search (None: all).
TEXT_FIELDS: dict[str, tuple[str, ...] | None] = {
    "text": None,
    "q": None,
    "title": ("title",),
    "title_string": ("title",),
    "notes": ("notes",),
    "res_name": ("res",),
    "res_description": ("res",),
    "data_dictionary": ("dict",),
}
DATE_FIELDS = ("metadata_modified", "metadata_created")
MAX_QUERY = 2000
MAX_CLAUSES = 100
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Words:
    """Free text: every token of ``value`` (and the phrase, when ``phrase``)."""

    value: str
    fields: tuple[str, ...] | None = None
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class Facet:
    field: str
    value: str  # "*": any value


@dataclass(frozen=True)
class Range:
    field: str
    low: str  # "*" open
    high: str
    low_inclusive: bool
    high_inclusive: bool


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = All | Words | Facet | Range | And | Or | Not


@dataclass
class _Tok:
    kind: str  # ( ) AND OR NOT + - FIELD WORD PHRASE RANGE
    text: str = ""
    extra: tuple[str, str, bool, bool] | None = None


def _lex(q: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(_Tok(ch))
            i += 1
        elif ch == '"':
            end = i + 1
            buf = []
            while end < n and q[end] != '"':
                if q[end] == "\\" and end + 1 < n:
                    end += 1
                buf.append(q[end])
                end += 1
            if end >= n:
                raise SearchQueryError(f"a phrase opened at character {i + 1} is not closed")
            out.append(_Tok("PHRASE", "".join(buf)))
            i = end + 1
        elif ch in "[{":
            end = min((p for p in (q.find("]", i), q.find("}", i)) if p != -1), default=-1)
            if end == -1:
                raise SearchQueryError(f"a range opened at character {i + 1} is not closed")
            parts = q[i + 1 : end].split(" TO ")
            if len(parts) != 2:
                raise SearchQueryError("a range must read [FROM TO UNTIL], e.g. [2024-01-01 TO *]")
            out.append(
                _Tok("RANGE", extra=(parts[0].strip(), parts[1].strip(), ch == "[", q[end] == "]"))
            )
            i = end + 1
        elif ch in "+-!" and i + 1 < n and not q[i + 1].isspace():
            out.append(_Tok("NOT" if ch in "-!" else "+"))
            i += 1
        else:
            end = i
            while end < n and not q[end].isspace() and q[end] not in '()"[{':
                if q[end] == ":" and _FIELD.match(q[i:end]):
                    break
                end += 1
            word = q[i:end]
            if end < n and q[end] == ":" and _FIELD.match(word):
                out.append(_Tok("FIELD", word))
                i = end + 1
                continue
            if word in ("AND", "&&"):
                out.append(_Tok("AND"))
            elif word in ("OR", "||"):
                out.append(_Tok("OR"))
            elif word == "NOT":
                out.append(_Tok("NOT"))
            else:
                out.append(_Tok("WORD", word))
            i = end
    return out


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.clauses = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise SearchQueryError(f"unexpected {self.peek().kind!r} in the query")  # type: ignore[union-attr]
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise SearchQueryError("the query ends where a term was expected")
        if tok.kind == "NOT":
            self.take()
            return Not(self.unary())
        if tok.kind == "+":
            self.take()
            return self.unary()
        return self.primary()

    def primary(self) -> Node:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise SearchQueryError(f"the query has more than {MAX_CLAUSES} clauses")
        tok = self.take()
        if tok.kind == "(":
            node = self.or_expr()
            if self.peek() is None or self.take().kind != ")":
                raise SearchQueryError("a '(' is not closed")
            return node
        if tok.kind == "FIELD":
            return self.field(tok.text)
        if tok.kind == "WORD":
            return _words(tok.text, None)
        if tok.kind == "PHRASE":
            return Words(tok.text, None, phrase=True)
        raise SearchQueryError(f"unexpected {tok.kind!r} in the query")

    def field(self, name: str) -> Node:
        tok = self.peek()
        if tok is None:
            raise SearchQueryError(f"{name}: has no value")
        if name == "*" or (
            name not in TEXT_FIELDS and name not in FACETS and name not in DATE_FIELDS
        ):
            known = sorted({*TEXT_FIELDS, *FACETS, *DATE_FIELDS})
            raise SearchQueryError(f"unknown field {name!r}; fields are: {', '.join(known)}")
        if tok.kind == "(":  # field:(a OR b)
            self.take()
            node = self.field_group(name)
            if self.peek() is None or self.take().kind != ")":
                raise SearchQueryError("a '(' is not closed")
            return node
        tok = self.take()
        if name in DATE_FIELDS:
            if tok.kind != "RANGE" or tok.extra is None:
                raise SearchQueryError(f"{name} takes a range, e.g. {name}:[2024-01-01 TO NOW]")
            return Range(name, *tok.extra)
        if tok.kind not in ("WORD", "PHRASE"):
            raise SearchQueryError(f"{name}: expects a value")
        return _field_value(name, tok.text, phrase=tok.kind == "PHRASE")

    def field_group(self, name: str) -> Node:
        items: list[Node] = []
        op = "AND"
        while (tok := self.peek()) is not None and tok.kind != ")":
            self.take()
            if tok.kind in ("AND", "OR"):
                op = tok.kind
            elif tok.kind in ("WORD", "PHRASE"):
                items.append(_field_value(name, tok.text, phrase=tok.kind == "PHRASE"))
            else:
                raise SearchQueryError(f"{name}:( ... ) holds only values, AND and OR")
        if not items:
            raise SearchQueryError(f"{name}:() has no value")
        if len(items) == 1:
            return items[0]
        return Or(tuple(items)) if op == "OR" else And(tuple(items))


def _words(value: str, fields: tuple[str, ...] | None, *, phrase: bool = False) -> Node:
    if value == "*" and fields is None:
        return All()
    prefix = value.endswith("*") and len(value) > 1 and not phrase
    return Words(value.rstrip("*") if prefix else value, fields, phrase=phrase, prefix=prefix)


def _field_value(name: str, value: str, *, phrase: bool) -> Node:
    if name in TEXT_FIELDS:
        if value == "*":
            return All()
        return _words(value, TEXT_FIELDS[name], phrase=phrase)
    return Facet(name, value)


def parse(q: str | None) -> Node:
    """The tree of ``q``; an empty query, or ``*:*``, is everything."""
    if q is None or not q.strip() or q.strip() == "*:*":
        return All()
    if len(q) > MAX_QUERY:
        raise SearchQueryError(f"the query is longer than {MAX_QUERY} characters")
    return _Parser(_lex(q.replace("*:*", "*"))).parse()
