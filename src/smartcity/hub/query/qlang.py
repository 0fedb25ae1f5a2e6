"""The NGSI-LD query language ``q`` (ETSI GS CIM 009 v1.8, clause 4.9): parser and AST.

Grammar, as accepted here (``;`` is AND and binds tighter than ``|``, OR)::

    query    = and *("|" and)
    and      = primary *(";" primary)
    primary  = "(" query ")" / term
    term     = "!" attr / attr [op value]
    attr     = name *("." name) *("[" key "]")    ; attribute path, then keys into the value
    op       = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="
    value    = number / quoted / "true" / "false" / dateTime / date / time / uri
             / value ".." value                    ; range (== and != only)
             / value 1*("," value)                 ; list  (== and != only)

After ``~=`` / ``!~=`` comes a regular expression, quoted or bare (a bare one ends at the first
``;``, ``|`` or ``)`` outside its own brackets and groups). Inside quotes ``\\"`` is a quote and
``\\\\`` a backslash; any other backslash is kept as written so ``"\\d+"`` reads naturally.

Deliberate supersets of the ABNF: whole-term parentheses nest (up to :data:`MAX_DEPTH` levels),
bare URIs may appear in value lists, and dateTimes may carry a ``+hh:mm`` offset instead of
``Z``. Limits on size (:data:`MAX_TERMS`, :data:`MAX_VALUES`, the caller's ``max_length``) are
checked while parsing.

The parser produces frozen dataclasses; :func:`to_text` renders any tree back to canonical text
(``parse_q(to_text(n)) == n``), which the tests check on random trees.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.qregex import check_pattern

# Names that, after a dot, address the attribute instance's own member rather than a
# sub-attribute (``temperature.observedAt``). They end the path: no keys, no further dots.
INSTANCE_MEMBERS = frozenset(
    {"id", "type", "createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId"}
)
MAX_DEPTH = 32
# Each term compiles to a correlated subquery of a few kilobytes of SQL (see qsql), and SQLite
# prepares a 64-term query for most of a second: the limits keep one q's SQL small. Checked
# while parsing, so an oversized q costs no more than reading it.
MAX_TERMS = 32
MAX_VALUES = 256  # in all: a list counts each of its values, a range two

Op: TypeAlias = Literal["==", "!=", ">", ">=", "<", "<=", "~=", "!~="]
# Longest first, so that ">=" is not read as ">" followed by "=".
_OPS: tuple[Op, ...] = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
EQUALITY_OPS = frozenset({"==", "!="})
ORDER_OPS = frozenset({">", ">=", "<", "<="})
PATTERN_OPS = frozenset({"~=", "!~="})


# -- AST ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bare:
    """An unquoted dateTime, date, time or URI. It compares as the string ``text``; the
    kind only remembers how it was written."""

    kind: Literal["dateTime", "date", "time", "uri"]
    text: str


# bool before int matters wherever these are tested: bool is a subclass of int.
Scalar: TypeAlias = bool | int | float | str | Bare


@dataclass(frozen=True)
class Range:
    low: Scalar
    high: Scalar


@dataclass(frozen=True)
class ValueList:
    items: tuple[Scalar, ...]


@dataclass(frozen=True)
class Compare:
    attr_path: tuple[str, ...]
    keys: tuple[str, ...]
    op: Op
    value: Scalar | Range | ValueList  # a str pattern for ~= and !~=

    def __str__(self) -> str:
        return to_text(self)


@dataclass(frozen=True)
class Exists:
    attr_path: tuple[str, ...]
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return to_text(self)


@dataclass(frozen=True)
class NotExists:
    attr_path: tuple[str, ...]
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return to_text(self)


@dataclass(frozen=True)
class And:
    """All items hold. Canonical trees never nest an And directly inside an And."""

    items: tuple[QNode, ...]

    def __str__(self) -> str:
        return to_text(self)


@dataclass(frozen=True)
class Or:
    """At least one item holds. Canonical trees never nest an Or directly inside an Or."""

    items: tuple[QNode, ...]

    def __str__(self) -> str:
        return to_text(self)


QNode: TypeAlias = And | Or | Compare | Exists | NotExists


# -- rendering ------------------------------------------------------------------------------------


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scalar_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form, always with "." or "e"
    if isinstance(value, str):
        return quote(value)
    return value.text


def value_text(value: Scalar | Range | ValueList) -> str:
    if isinstance(value, Range):
        return f"{scalar_text(value.low)}..{scalar_text(value.high)}"
    if isinstance(value, ValueList):
        return ",".join(scalar_text(item) for item in value.items)
    return scalar_text(value)


def attr_text(attr_path: tuple[str, ...], keys: tuple[str, ...]) -> str:
    return ".".join(attr_path) + "".join(f"[{key}]" for key in keys)


def to_text(node: QNode) -> str:
    """Canonical q text for a tree, with only the parentheses precedence requires."""
    if isinstance(node, And):
        return ";".join(f"({to_text(i)})" if isinstance(i, Or) else to_text(i) for i in node.items)
    if isinstance(node, Or):
        return "|".join(to_text(item) for item in node.items)
    if isinstance(node, Exists):
        return attr_text(node.attr_path, node.keys)
    if isinstance(node, NotExists):
        return "!" + attr_text(node.attr_path, node.keys)
    return attr_text(node.attr_path, node.keys) + node.op + value_text(node.value)


# -- lexical patterns -----------------------------------------------------------------------------

_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
_DATE = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_BARE_FORMS: tuple[tuple[Literal["dateTime", "date", "time"], re.Pattern[str]], ...] = (
    ("dateTime", re.compile(_DATE + "T" + _TIME + r"(?:Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII)),
    ("date", re.compile(_DATE, re.ASCII)),
    ("time", re.compile(_TIME + "Z?", re.ASCII)),
)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^;|),\"\s]*", re.ASCII)
_INT64 = 2**63 - 1
# Keys are any text but these (and control characters): '"' and '\\' have no exact JSON path
# on SQLite, and brackets would be ambiguous.
_KEY_STOP = '[]"\\'
# Characters that may follow a complete value: end of a term, a list item or a range bound.
_VALUE_END = (";", "|", ")", ",", "..")


def _name_char(ch: str, first: bool) -> bool:
    if ch.isalpha() or ch == "_":
        return True
    return not first and (ch.isdigit() or ch in "-:")


# -- parser ---------------------------------------------------------------------------------------


def parse_q(text: str, *, max_length: int = 4096) -> QNode:
    """Parse URL-decoded q text; raise :class:`BadRequestData` saying where and what was wrong."""
    if len(text) > max_length:
        raise BadRequestData(f"q is {len(text)} characters long; the limit is {max_length}")
    if not text:
        raise BadRequestData("q is empty; give at least one query term such as temperature>20")
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.terms = 0
        self.values = 0

    # helpers -----------------------------------------------------------------------------------
    def error(self, what: str, at: int | None = None, hint: str = "") -> BadRequestData:
        """``q: <what> at position <1-based> (found <text there>)<hint>``."""
        pos = self.pos if at is None else at
        found = repr(self.text[pos : pos + 12]) if pos < len(self.text) else "end of text"
        return BadRequestData(f"q: {what} at position {pos + 1} (found {found}){hint}")

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    # grammar -----------------------------------------------------------------------------------
    def parse(self) -> QNode:
        node = self.query()
        if not self.at_end():
            if self.peek(")"):
                raise self.error("unbalanced ')'")
            raise self.error("expected ';', '|' or the end of the query")
        return node

    def query(self) -> QNode:
        items = [self.conjunction()]
        while self.peek("|"):
            self.pos += 1
            items.append(self.conjunction())
        return _combine(Or, items)

    def conjunction(self) -> QNode:
        items = [self.primary()]
        while self.peek(";"):
            self.pos += 1
            items.append(self.primary())
        return _combine(And, items)

    def primary(self) -> QNode:
        if not self.peek("("):
            return self.term()
        start = self.pos
        self.pos += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"parentheses nest deeper than {MAX_DEPTH} levels", start)
        node = self.query()
        if not self.peek(")"):
            raise self.error(f"unclosed '(' (opened at position {start + 1}): expected ')'")
        self.pos += 1
        self.depth -= 1
        return node

    def term(self) -> QNode:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(
                f"q has more than {MAX_TERMS} terms",
                hint="; split the query, or test one attribute against a list (a==1,2,3)",
            )
        if self.peek("!") and not self.peek("!=") and not self.peek("!~="):
            self.pos += 1
            path, keys = self.attribute()
            if not self.at_end() and self.text[self.pos] not in ";|)":
                raise self.error(f"'!{attr_text(path, keys)}' tests absence and takes no operator")
            return NotExists(path, keys)
        path, keys = self.attribute()
        op = next((o for o in _OPS if self.peek(o)), None)
        if op is None:
            if self.peek("="):
                raise self.error("single '=' is not an operator; use '==' for equality")
            if not self.at_end() and self.text[self.pos] not in ";|)":
                raise self.error("expected an operator (==, !=, >, >=, <, <=, ~=, !~=)")
            return Exists(path, keys)
        self.pos += len(op)
        if op in PATTERN_OPS:
            return Compare(path, keys, op, self.pattern(op))
        return Compare(path, keys, op, self.comparison_value(op))

    def attribute(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        path = [self.name("an attribute name")]
        while self.peek("."):
            if path[-1] in INSTANCE_MEMBERS and len(path) > 1:
                raise self.error(f"'{path[-1]}' is an attribute member and has no sub-attributes")
            self.pos += 1
            path.append(self.name("a sub-attribute name after '.'"))
        keys: list[str] = []
        while self.peek("["):
            if len(path) > 1 and path[-1] in INSTANCE_MEMBERS:
                raise self.error(f"'{path[-1]}' is an attribute member and takes no [keys]")
            keys.append(self.key())
        if self.peek("."):
            raise self.error("sub-attributes ('.') must come before keys ('[...]')")
        return tuple(path), tuple(keys)

    def key(self) -> str:
        start = self.pos
        text = self.text
        end = start + 1
        while end < len(text) and text[end] not in _KEY_STOP and text[end] >= " ":
            end += 1
        if end == start + 1:
            raise self.error("expected a key inside '[...]'", end)
        if end >= len(text) or text[end] != "]":
            raise self.error(f"unclosed '[' (opened at position {start + 1}): expected ']'", end)
        self.pos = end + 1
        return text[start + 1 : end]

    def name(self, what: str) -> str:
        start = self.pos
        text = self.text
        if start < len(text) and _name_char(text[start], first=True):
            end = start + 1
            while end < len(text) and _name_char(text[end], first=False):
                end += 1
            self.pos = end
            return text[start:end]
        raise self.error(f"expected {what}")

    # values ------------------------------------------------------------------------------------
    def comparison_value(self, op: Op) -> Scalar | Range | ValueList:
        start = self.pos
        first = self.scalar(op)
        if self.peek(".."):
            self.pos += 2
            if op not in EQUALITY_OPS:
                raise self.error(f"ranges (a..b) only work with == and !=, not '{op}'", start)
            high = self.scalar(op)
            for bound, at in ((first, start), (high, self.pos)):
                if isinstance(bound, bool) or (isinstance(bound, Bare) and bound.kind == "uri"):
                    raise self.error("range bounds must be numbers, strings or dates/times", at)
            return Range(first, high)
        if self.peek(","):
            if op not in EQUALITY_OPS:
                raise self.error(f"value lists (a,b) only work with == and !=, not '{op}'", start)
            items = [first]
            while self.peek(","):
                self.pos += 1
                items.append(self.scalar(op))
            return ValueList(tuple(items))
        if op in ORDER_OPS and (
            isinstance(first, bool) or (isinstance(first, Bare) and first.kind == "uri")
        ):
            raise self.error(f"'{op}' needs a number, a quoted string or a date/time", start)
        return first

    def scalar(self, op: str) -> Scalar:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.error(
                f"q has more than {MAX_VALUES} values", hint="; split the query into several"
            )
        start = self.pos
        text = self.text
        if self.peek('"'):
            return self.quoted()
        for word, flag in (("true", True), ("false", False)):
            if self.peek(word) and self._ends_value(start + len(word)):
                self.pos += len(word)
                return flag
        for kind, pattern in _BARE_FORMS:
            m = pattern.match(text, start)
            if m and self._ends_value(m.end()):
                self.pos = m.end()
                return Bare(kind, m.group())
        m = _NUMBER.match(text, start)
        if m and self._ends_value(m.end()):
            self.pos = m.end()
            return self._number(m.group(), start)
        m = _URI.match(text, start)
        if m and self._ends_value(m.end()):
            self.pos = m.end()
            return Bare("uri", m.group())
        raise self.error(
            f"expected a value after '{op}'",
            hint='; a value is a number, a "quoted string", true, false, a date/time or a URI',
        )

    def _ends_value(self, end: int) -> bool:
        return end >= len(self.text) or self.text.startswith(_VALUE_END, end)

    def _number(self, literal: str, start: int) -> int | float:
        if any(c in literal for c in ".eE"):
            number = float(literal)
            if math.isinf(number):
                raise self.error("number is out of range", start)
            return number
        integer = int(literal)
        if abs(integer) > _INT64:
            raise self.error("integer is out of range (64-bit)", start)
        return integer

    def quoted(self) -> str:
        start = self.pos
        out: list[str] = []
        i = start + 1
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error("unterminated string: expected a closing '\"'", start)

    def pattern(self, op: str) -> str:
        start = self.pos
        if self.peek('"'):
            pattern = self.quoted()
        else:
            pattern = self._bare_pattern()
            if not pattern:
                raise self.error(f"expected a regular expression after '{op}'")
        if not self._ends_value(self.pos) or self.peek(",") or self.peek(".."):
            raise self.error("expected ';', '|', ')' or the end after the pattern")
        try:
            check_pattern(pattern)
        except BadRequestData as exc:
            raise BadRequestData(f"{exc.detail} (at position {start + 1})") from None
        return pattern

    def _bare_pattern(self) -> str:
        """A bare pattern runs to the first ; | or ) that is not part of the regex itself."""
        text = self.text
        i, depth, in_class = self.pos, 0, False
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if in_class:
                in_class = ch != "]"
            elif ch == "[":
                in_class = True
                if text.startswith("^", i + 1):
                    i += 1
                if text.startswith("]", i + 1):
                    i += 1  # a leading ']' is a literal
            elif ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif ch in ";|" and depth == 0:
                break
            i += 1
        i = min(i, len(text))
        pattern = text[self.pos : i]
        self.pos = i
        return pattern


def _combine(kind: type[And] | type[Or], items: list[QNode]) -> QNode:
    """One node for a run of ;- or |-joined items, flattening same-kind children."""
    if len(items) == 1:
        return items[0]
    flat: list[QNode] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))
