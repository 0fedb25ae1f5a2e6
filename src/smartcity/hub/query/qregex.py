"""Regular expressions in q (``attr~=pattern``): one meaning on every backend.

Patterns use Python ``re`` syntax with ASCII semantics (``\\d`` is ``[0-9]``, ``\\w`` is
``[A-Za-z0-9_]``, ``(?i)`` folds ASCII letters only). Python evaluates them for subscriptions
and, through a registered ``regexp`` function, on SQLite. PostgreSQL has its own engine (ARE)
whose shorthands, case folding and ``$`` depend on the locale or differ from Python, so
:func:`to_postgres` rewrites the parsed pattern into an ARE that spells every character set
out as explicit code-point ranges. Constructs that cannot be rewritten exactly (back
references, ``\\B``, possessive quantifiers, counts above 255, ...) are rejected for every
backend by :func:`check_pattern`, so a query never means different things in different places.

Greediness is dropped on purpose: we only ask *whether* a match exists, never what it is.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
from functools import lru_cache
from typing import Any

from smartcity.hub.errors import BadRequestData

FLAGS = re.ASCII
MAX_PATTERN_LENGTH = 1024
_PG_MAX_REPEAT = 255  # PostgreSQL's RE_DUP_MAX
_MAX_CODEPOINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

# ASCII character classes as inclusive code-point intervals.
_DIGIT = [(0x30, 0x39)]
_SPACE = [(0x09, 0x0D), (0x20, 0x20)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]

Intervals = list[tuple[int, int]]


class UnsupportedPattern(ValueError):
    """The pattern is valid Python but cannot be evaluated identically on every backend."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern; raises ``re.error`` for invalid syntax."""
    return re.compile(pattern, FLAGS)


def check_pattern(pattern: str) -> None:
    """Raise :class:`BadRequestData` unless the pattern is valid and portable."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise BadRequestData(f"q: patterns are limited to {MAX_PATTERN_LENGTH} characters")
    try:
        compile_pattern(pattern)
        to_postgres(pattern)
    except re.error as exc:
        raise BadRequestData(f"q: invalid regular expression {pattern!r}: {exc}") from None
    except UnsupportedPattern as exc:
        raise BadRequestData(f"q: regular expression {pattern!r} is not supported: {exc}") from None


@lru_cache(maxsize=512)
def to_postgres(pattern: str) -> str:
    """The PostgreSQL ARE that matches exactly the strings ``re.search(pattern)`` matches."""
    parsed = sre_parse.parse(pattern, FLAGS)
    return _Translator().seq(parsed, int(parsed.state.flags))


# -- code-point sets --------------------------------------------------------------------------


def _normalise(ranges: Intervals) -> Intervals:
    out: Intervals = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: Intervals) -> Intervals:
    out: Intervals = []
    nxt = 0
    for lo, hi in _normalise(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_CODEPOINT:
        out.append((nxt, _MAX_CODEPOINT))
    return out


def _fold_case(ranges: Intervals) -> Intervals:
    """Close a set under ASCII case swapping, which is what ``(?i)`` does under re.ASCII."""
    extra: Intervals = []
    for lo, hi in ranges:
        for a, b, delta in ((0x41, 0x5A, 0x20), (0x61, 0x7A, -0x20)):
            s, e = max(lo, a), min(hi, b)
            if s <= e:
                extra.append((s + delta, e + delta))
    return _normalise(ranges + extra)


def _category(code: Any) -> Intervals:
    table = {
        sre_c.CATEGORY_DIGIT: _DIGIT,
        sre_c.CATEGORY_SPACE: _SPACE,
        sre_c.CATEGORY_WORD: _WORD,
        sre_c.CATEGORY_NOT_DIGIT: _complement(_DIGIT),
        sre_c.CATEGORY_NOT_SPACE: _complement(_SPACE),
        sre_c.CATEGORY_NOT_WORD: _complement(_WORD),
    }
    if code not in table:
        raise UnsupportedPattern(f"character category {code}")
    return table[code]


def _char(cp: int) -> str:
    """One code point as ARE text that is literal both inside and outside brackets."""
    if cp < 0x80 and chr(cp).isalnum():
        return chr(cp)
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _bracket(ranges: Intervals) -> str:
    # PostgreSQL text never holds NUL or surrogates; leave them out so every escape is valid.
    parts: list[str] = []
    for lo, hi in _normalise(ranges):
        lo = max(lo, 1)
        pieces = [(lo, hi)]
        if lo <= _SURROGATES[1] and hi >= _SURROGATES[0]:
            pieces = [(lo, _SURROGATES[0] - 1), (_SURROGATES[1] + 1, hi)]
        for a, b in pieces:
            if a > b:
                continue
            parts.append(_char(a) if a == b else f"{_char(a)}-{_char(b)}")
    if not parts:
        raise UnsupportedPattern("a character class that matches nothing")
    return "[" + "".join(parts) + "]"


# -- the translator -----------------------------------------------------------------------------


_WORD_CLASS = _bracket(_WORD)


class _Translator:
    def seq(self, items: Any, flags: int) -> str:
        return "".join(self.item(op, av, flags) for op, av in items)

    def item(self, op: Any, av: Any, flags: int) -> str:
        icase = bool(flags & re.IGNORECASE)
        if op is sre_c.LITERAL:
            if icase:
                return _bracket(_fold_case([(av, av)]))
            return _char(av)
        if op is sre_c.NOT_LITERAL:
            return _bracket(_complement(_fold_case([(av, av)]) if icase else [(av, av)]))
        if op is sre_c.ANY:
            return _bracket([(0, _MAX_CODEPOINT)] if flags & re.DOTALL else _complement([(10, 10)]))
        if op is sre_c.IN:
            return _bracket(self.char_set(av, icase))
        if op is sre_c.BRANCH:
            return "(?:" + "|".join(self.seq(alt, flags) for alt in av[1]) + ")"
        if op is sre_c.SUBPATTERN:
            _group, add, remove, body = av
            return "(?:" + self.seq(body, (flags | add) & ~remove) + ")"
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            return self.repeat(av, flags)
        if op is sre_c.AT:
            return self.anchor(av, flags)
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            direction, body = av
            kind = ("=" if op is sre_c.ASSERT else "!") if direction == 1 else None
            if kind is None:
                kind = "<=" if op is sre_c.ASSERT else "<!"
            return f"(?{kind}{self.seq(body, flags)})"
        names = {
            sre_c.GROUPREF: "back references",
            sre_c.GROUPREF_EXISTS: "conditional groups",
        }
        raise UnsupportedPattern(names.get(op, str(op).lower().replace("_", " ")))

    def char_set(self, items: Any, icase: bool) -> Intervals:
        negate = False
        ranges: Intervals = []
        for op, av in items:
            if op is sre_c.NEGATE:
                negate = True
            elif op is sre_c.LITERAL:
                ranges.append((av, av))
            elif op is sre_c.RANGE:
                ranges.append((av[0], av[1]))
            elif op is sre_c.CATEGORY:
                ranges.extend(_category(av))
            else:
                raise UnsupportedPattern(f"{op} inside a character class")
        if icase:
            ranges = _fold_case(ranges)
        return _complement(ranges) if negate else _normalise(ranges)

    def repeat(self, av: Any, flags: int) -> str:
        low, high, body = av
        if any(op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT) for op, _ in body):
            raise UnsupportedPattern("a quantifier applied to an anchor or lookaround")
        unbounded = high is sre_c.MAXREPEAT
        if low > _PG_MAX_REPEAT or (not unbounded and high > _PG_MAX_REPEAT):
            raise UnsupportedPattern(f"repetition counts above {_PG_MAX_REPEAT}")
        inner = self.seq(body, flags)
        if inner == "":
            return ""  # an empty atom repeated still matches only the empty string
        atom = "(?:" + inner + ")"
        if unbounded:
            return atom + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
        if (low, high) == (0, 1):
            return atom + "?"
        return atom + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")

    def anchor(self, code: Any, flags: int) -> str:
        multiline = bool(flags & re.MULTILINE)
        if code is sre_c.AT_BEGINNING_STRING or (code is sre_c.AT_BEGINNING and not multiline):
            return "^"
        if code is sre_c.AT_BEGINNING:
            return "(?:^|(?<=\\u000a))"
        if code is sre_c.AT_END_STRING:
            return "$"
        if code is sre_c.AT_END:
            # Python's $ also matches just before a final newline (every newline in (?m)).
            return "(?=\\u000a|$)" if multiline else "(?=\\u000a?$)"
        if code is sre_c.AT_BOUNDARY:
            w = _WORD_CLASS
            return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
        # \B differs on the empty string between engines.
        raise UnsupportedPattern("\\B")
