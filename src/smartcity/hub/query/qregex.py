"""Regular expressions in q and idPattern (``attr~=pattern``): one meaning on every backend,
matched in time linear in the text.

The dialect is *Python ``re`` syntax, restricted to what a linear-time engine can match*:

* Syntax is Python's (``sre_parse`` reads it), semantics are RE2's: no back references,
  lookahead/lookbehind, conditional or atomic groups, possessive quantifiers or ``\\B``;
  repetition counts at most 255, and at most :data:`MAX_PATTERN_SIZE` atoms once the counts
  are multiplied out. Each refusal names the construct (a 400 that says what to change).
* Character classes are ASCII (``\\d`` is ``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``, ``(?i)``
  folds ASCII letters only).
* ``$`` (without ``(?m)``) matches only at the very end of the value, like ``\\Z``, as in
  RE2, POSIX and PostgreSQL; Python's ``$`` would also match before a final newline.

Python's ``re`` backtracks (``^(.|.)*Z$`` takes 2^n steps on n characters), so it never
matches user patterns here. The parsed pattern is rewritten twice, spelling every character
set out as explicit code-point ranges: :func:`to_re2` for RE2 (``google-re2``), which matches
for subscriptions, for ``regexp()`` on SQLite and wherever Python tests a pattern, and
:func:`to_postgres` for PostgreSQL's ``~`` (ARE), whose own shorthands, case folding and
``$`` depend on the locale. The tests check the two agree on random patterns.

Greediness is dropped on purpose: we only ask *whether* a match exists, never what it is.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
from functools import lru_cache
from typing import Any, Literal

import re2

from smartcity.hub.errors import BadRequestData

FLAGS = re.ASCII
MAX_PATTERN_LENGTH = 1024
# Atoms of the pattern once repetition counts are multiplied out ((ab){3} is 6): bounds the
# compiled program of both engines, so matching stays cheap however the counts nest.
MAX_PATTERN_SIZE = 4096
_MAX_REPEAT = 255  # PostgreSQL's RE_DUP_MAX
_MAX_CODEPOINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
# RE2's memory budget for one compiled pattern (program and DFA cache). Its default is 8 MiB;
# a pattern within MAX_PATTERN_SIZE compiles to at most some 10^4 instructions (a few hundred
# KiB). With the cache of compiled patterns below this bounds their memory to 128 MiB.
_RE2_MAX_MEM = 1024 * 1024

# ASCII character classes as inclusive code-point intervals.
_DIGIT = [(0x30, 0x39)]
_SPACE = [(0x09, 0x0D), (0x20, 0x20)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]

Intervals = list[tuple[int, int]]
Target = Literal["re2", "postgres"]


class UnsupportedPattern(ValueError):
    """The pattern is valid Python but outside the dialect (not linear-time or not portable)."""


class Pattern:
    """A compiled pattern: :meth:`search` says whether it matches anywhere in a text."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str, compiled: Any) -> None:
        self.source = source
        self._compiled = compiled

    def search(self, text: str) -> bool:
        # Bytes, not str: for str the binding maps byte offsets back to characters, which
        # "is there a match" does not need. surrogatepass: a lone surrogate (possible in
        # SQLite text) is no valid UTF-8 and matches no class here, but must not raise.
        return self._compiled.search(text.encode("utf-8", "surrogatepass")) is not None


def _re2_options() -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False  # refusals are reported to the client, not to stderr
    options.never_capture = True
    return options


_OPTIONS = _re2_options()


@lru_cache(maxsize=128)
def compile_pattern(pattern: str) -> Pattern:
    """The pattern compiled for RE2; raises :class:`BadRequestData` unless it is valid and
    within the dialect (see the module docstring)."""
    translated = _translate(pattern, "re2")
    try:
        compiled = re2.compile(translated, _OPTIONS)
    except re2.error as exc:  # nested counts past RE2's 1000, or a program past _RE2_MAX_MEM
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise BadRequestData(
            f"q: regular expression {_shown(pattern)} is too large to match efficiently "
            f"({reason}); use smaller repetition counts or a shorter pattern"
        ) from None
    return Pattern(pattern, compiled)


def check_pattern(pattern: str) -> None:
    """Raise :class:`BadRequestData` unless the pattern is valid and within the dialect."""
    compile_pattern(pattern)
    to_postgres(pattern)


def to_re2(pattern: str) -> str:
    """The RE2 pattern that means what ``pattern`` means in this dialect."""
    return _translate(pattern, "re2")


def to_postgres(pattern: str) -> str:
    """The PostgreSQL ARE that matches exactly the strings :func:`to_re2`'s pattern matches."""
    return _translate(pattern, "postgres")


@lru_cache(maxsize=1024)
def _translate(pattern: str, target: Target) -> str:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise BadRequestData(
            f"q: patterns are limited to {MAX_PATTERN_LENGTH} characters; this one has "
            f"{len(pattern)}"
        )
    try:
        parsed = sre_parse.parse(pattern, FLAGS)
        translator = _Translator(target)
        translated = translator.seq(parsed, int(parsed.state.flags))
    except re.error as exc:
        raise BadRequestData(f"q: invalid regular expression {_shown(pattern)}: {exc}") from None
    except RecursionError:
        raise BadRequestData(
            f"q: regular expression {_shown(pattern)} nests its groups too deeply"
        ) from None
    except UnsupportedPattern as exc:
        raise BadRequestData(
            f"q: regular expression {_shown(pattern)} is not supported: {exc}"
        ) from None
    return translated


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 60 else pattern[:57] + "...")


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


# -- the translator -----------------------------------------------------------------------------

_LOOKAROUND = {
    (sre_c.ASSERT, 1): "lookahead (?=...)",
    (sre_c.ASSERT_NOT, 1): "negative lookahead (?!...)",
    (sre_c.ASSERT, -1): "lookbehind (?<=...)",
    (sre_c.ASSERT_NOT, -1): "negative lookbehind (?<!...)",
}
_UNSUPPORTED = {
    sre_c.GROUPREF: "back references (\\1, (?P=name))",
    sre_c.GROUPREF_EXISTS: "conditional groups (?(1)...)",
    sre_c.ATOMIC_GROUP: "atomic groups (?>...)",
    sre_c.POSSESSIVE_REPEAT: "possessive quantifiers (*+, ++, ?+)",
}
_LINEAR = "; a linear-time engine cannot match it, so rewrite the pattern without it"


class _Translator:
    """One parsed pattern -> the target engine's syntax, counting the expanded size."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.size = 0
        self.word_class = self.bracket(_WORD)

    def char(self, cp: int) -> str:
        """One code point, literal both inside and outside brackets."""
        if cp < 0x80 and chr(cp).isalnum():
            return chr(cp)
        if self.target == "re2":
            return f"\\x{{{cp:x}}}"
        if cp <= 0xFFFF:
            return f"\\u{cp:04x}"
        return f"\\U{cp:08x}"

    def bracket(self, ranges: Intervals) -> str:
        # Surrogates are no characters in UTF-8 (RE2) or PostgreSQL text, and PostgreSQL text
        # never holds NUL: leave them out so every escape is valid and both engines agree.
        first = 1 if self.target == "postgres" else 0
        parts: list[str] = []
        for lo, hi in _normalise(ranges):
            lo = max(lo, first)
            pieces = [(lo, hi)]
            if lo <= _SURROGATES[1] and hi >= _SURROGATES[0]:
                pieces = [(lo, _SURROGATES[0] - 1), (_SURROGATES[1] + 1, hi)]
            for a, b in pieces:
                if a > b:
                    continue
                parts.append(self.char(a) if a == b else f"{self.char(a)}-{self.char(b)}")
        if not parts:
            raise UnsupportedPattern("a character class that matches nothing")
        return "[" + "".join(parts) + "]"

    def seq(self, items: Any, flags: int, weight: int = 1) -> str:
        return "".join(self.item(op, av, flags, weight) for op, av in items)

    def count(self, weight: int) -> None:
        self.size += weight
        if self.size > MAX_PATTERN_SIZE:
            raise UnsupportedPattern(
                f"it expands to more than {MAX_PATTERN_SIZE} atoms once its repetition counts "
                "are multiplied out; use smaller counts ({m,n}) or a shorter pattern"
            )

    def item(self, op: Any, av: Any, flags: int, weight: int) -> str:
        icase = bool(flags & re.IGNORECASE)
        if op in (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN):
            self.count(weight)
        if op is sre_c.LITERAL:
            if icase:
                return self.bracket(_fold_case([(av, av)]))
            return self.char(av)
        if op is sre_c.NOT_LITERAL:
            return self.bracket(_complement(_fold_case([(av, av)]) if icase else [(av, av)]))
        if op is sre_c.ANY:
            everything = [(0, _MAX_CODEPOINT)]
            return self.bracket(everything if flags & re.DOTALL else _complement([(10, 10)]))
        if op is sre_c.IN:
            return self.bracket(self.char_set(av, icase))
        if op is sre_c.BRANCH:
            return "(?:" + "|".join(self.seq(alt, flags, weight) for alt in av[1]) + ")"
        if op is sre_c.SUBPATTERN:
            _group, add, remove, body = av
            return "(?:" + self.seq(body, (flags | add) & ~remove, weight) + ")"
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            return self.repeat(av, flags, weight)
        if op is sre_c.AT:
            return self.anchor(av, flags)
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            raise UnsupportedPattern(_LOOKAROUND[(op, av[0])] + _LINEAR)
        if op in _UNSUPPORTED:
            raise UnsupportedPattern(_UNSUPPORTED[op] + _LINEAR)
        raise UnsupportedPattern(str(op).lower().replace("_", " "))

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

    def repeat(self, av: Any, flags: int, weight: int) -> str:
        low, high, body = av
        if any(op is sre_c.AT for op, _ in body):
            raise UnsupportedPattern("a quantifier applied to an anchor")
        unbounded = high is sre_c.MAXREPEAT
        if low > _MAX_REPEAT or (not unbounded and high > _MAX_REPEAT):
            raise UnsupportedPattern(
                f"repetition counts above {_MAX_REPEAT}; use + or * for longer runs"
            )
        # An engine unrolls {m,n} into max(m, n) copies ({m,} into m + 1).
        copies = max(low + 1 if unbounded else high, 1)
        inner = self.seq(body, flags, weight * copies)
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
        re2 = self.target == "re2"
        if code is sre_c.AT_BEGINNING_STRING or (code is sre_c.AT_BEGINNING and not multiline):
            return "^"
        if code is sre_c.AT_BEGINNING:
            return "(?m:^)" if re2 else "(?:^|(?<=\\u000a))"
        if code is sre_c.AT_END_STRING or (code is sre_c.AT_END and not multiline):
            # Without (?m), $ is the end of the value (as in RE2 and PostgreSQL), not also
            # "before a final newline" as in Python: see the module docstring.
            return "$"
        if code is sre_c.AT_END:
            return "(?m:$)" if re2 else "(?=\\u000a|$)"
        if code is sre_c.AT_BOUNDARY:
            if re2:
                return "\\b"  # RE2's \b is ASCII, as \w here
            w = self.word_class
            return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
        # \B differs on the empty string between engines.
        raise UnsupportedPattern("\\B (not a word boundary)")
