"""Evaluate a parsed q tree against one stored entity document (used for subscriptions).

This module is the *definition* of what q means in this hub; :mod:`qsql` compiles the same
rules to SQL and the tests check both agree on random entities and queries. The rules:

* A term holds if ANY instance of the attribute satisfies it; a missing attribute fails
  every term except ``!attr``.
* The compared value is the instance's ``value``/``object``/``vocab``/``json``/``valueList``/
  ``objectList``; a LanguageProperty offers every string of its ``languageMap`` (``name[en]``
  picks one language). ``attr.sub`` walks sub-attributes; ``attr.observedAt`` (and the other
  :data:`~smartcity.hub.query.qlang.INSTANCE_MEMBERS`) reads the instance's own member;
  ``attr[k1][k2]`` walks into JSON objects (into anything else it finds nothing).
* If that value is a list, its elements are compared one by one ("any element"). ``!=`` and
  ``!~=`` are the negations, per instance, of ``==`` and ``~=``: no element equals / matches.
  Either still needs the compared value to exist.
* Numbers compare with numbers, strings with strings, booleans with booleans (``==``/``!=``
  only); anything else is simply unequal. Two strings that are both date-times (see
  :func:`datetime_key`) compare as instants, so ``...T10:00:00Z`` equals
  ``...T12:00:00.000+02:00``; other strings compare by code point.
* For a VocabProperty a string is also tried in its expanded form (``expand(s)``) with
  ``==``, ``!=`` and value lists, since vocab values are stored as IRIs.
* Patterns use :mod:`qregex` (Python syntax, RE2 semantics, ASCII classes; "matches
  anywhere", as ``re.search``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias

from smartcity.hub.entity import VALUE_KEY
from smartcity.hub.errors import NgsiError
from smartcity.hub.query.qlang import (
    INSTANCE_MEMBERS,
    And,
    Bare,
    Compare,
    Exists,
    NotExists,
    Or,
    QNode,
    Range,
    Scalar,
    ValueList,
)
from smartcity.hub.query.qregex import compile_pattern

# A strict ISO 8601 date-time with a zone: the only strings compared as instants. Shared with
# the SQL compiler, which checks it with the database's regex engine before doing arithmetic.
DATETIME_PATTERN = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_DATETIME = re.compile(DATETIME_PATTERN, re.ASCII)

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

Kind: TypeAlias = Literal["plain", "lang", "vocab"]
Expand: TypeAlias = Callable[[str], str]


def datetime_key(text: str) -> int | None:
    """Microseconds on a private, monotonic time line, or None if ``text`` is not a date-time.

    Deliberately plain integer arithmetic (no calendar validation beyond field ranges, so
    Feb 30 is Mar 2) because the SQL compiler must reproduce it on both databases.
    Fractions beyond microseconds are truncated.
    """
    if _DATETIME.fullmatch(text) is None:
        return None
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    zone_len = 1 if text.endswith("Z") else 6
    fraction = text[20 : len(text) - zone_len] if text[19] == "." else ""
    micros = int((fraction + "000000")[:6])
    offset = 0
    if zone_len == 6:
        sign = -1 if text[-6] == "-" else 1
        offset = sign * (int(text[-5:-3]) * 60 + int(text[-2:]))
    # Days from a fixed origin (Howard Hinnant's days_from_civil, shifted 400 years so that
    # every quantity stays non-negative and integer division truncates the same everywhere).
    y = year + 400 - (1 if month <= 2 else 0)
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = 365 * y + y // 4 - y // 100 + y // 400 + doy
    return (((days * 24 + hour) * 60 + minute - offset) * 60 + second) * 1_000_000 + micros


# -- atom comparisons ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def scalar_str(value: Scalar) -> str | None:
    """The string a literal compares as, or None for numbers and booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, Bare):
        return value.text
    return None


def _str_compare(op: str, stored: str, literal: str) -> bool:
    left, right = datetime_key(stored), datetime_key(literal)
    if left is not None and right is not None:
        return _CMP[op](left, right)
    return _CMP[op](stored, literal)


def _compare_atom(op: str, atom: Any, literal: Scalar) -> bool:
    """``atom op literal`` for one of == > >= < <=; never raises on mismatched types."""
    if isinstance(literal, bool):
        return op == "==" and isinstance(atom, bool) and atom is literal
    if _is_number(literal):
        return _is_number(atom) and _CMP[op](atom, literal)
    text = scalar_str(literal)
    return isinstance(atom, str) and text is not None and _str_compare(op, atom, text)


def vocab_form(literal: Scalar, expand: Expand) -> str | None:
    """The expanded IRI a string literal also matches in a VocabProperty, if it differs."""
    text = scalar_str(literal)
    if text is None:
        return None
    try:
        expanded = expand(text)
    except NgsiError:  # no @vocab and no term: the literal has no expanded form
        return None
    return expanded if expanded != text else None


def equality_literals(value: Scalar | ValueList, expand: Expand | None) -> tuple[Scalar, ...]:
    """What ``==``/``!=`` compare atoms with: the literal or list items, plus (``expand``
    given, i.e. for VocabProperty values) their expanded forms."""
    items: tuple[Scalar, ...] = value.items if isinstance(value, ValueList) else (value,)
    literals = list(items)
    if expand is not None:
        extra = [vocab_form(item, expand) for item in literals]
        literals.extend(form for form in extra if form is not None and form not in literals)
    return tuple(literals)


def atom_test(node: Compare, vocab: Expand | None) -> Callable[[Any], bool]:
    """The positive per-atom test of a comparison (== for !=, ~= for !~=). ``vocab`` is the
    expander when testing VocabProperty values of an equality comparison."""
    value = node.value
    if node.op in ("~=", "!~="):
        assert isinstance(value, str)
        pattern = compile_pattern(value)
        return lambda atom: isinstance(atom, str) and pattern.search(atom)
    if isinstance(value, Range):
        low, high = value.low, value.high
        return lambda atom: _compare_atom(">=", atom, low) and _compare_atom("<=", atom, high)
    if node.op in ("==", "!="):
        literals = equality_literals(value, vocab)
        return lambda atom: any(_compare_atom("==", atom, lit) for lit in literals)
    assert not isinstance(value, ValueList)  # the parser allows lists only with == and !=
    op = node.op
    return lambda atom: _compare_atom(op, atom, value)


def is_equality(node: Compare) -> bool:
    """Whether the comparison is == / != against scalars or a list (not a range or pattern):
    the only comparisons where VocabProperty values also try expanded literals."""
    return node.op in ("==", "!=") and not isinstance(node.value, Range)


# -- locating the compared value ----------------------------------------------------------------

_MISSING = object()


def _instances(doc: Mapping[str, Any], iri: str) -> list[Any]:
    attrs = doc.get("attrs")
    found = attrs.get(iri) if isinstance(attrs, dict) else None
    return found if isinstance(found, list) else []


def _walk(inst: Any, rest: tuple[str, ...], expand: Expand) -> tuple[Any, bool]:
    """Follow sub-attribute names from an instance: (node, is_member) or (_MISSING, False)."""
    node = inst
    for name in rest:
        if not isinstance(node, dict):
            return _MISSING, False
        key = name if name in INSTANCE_MEMBERS else expand(name)
        if key not in node:
            return _MISSING, False
        node = node[key]
        if name in INSTANCE_MEMBERS:
            return node, True  # the parser guarantees a member ends the path
    return node, False


def _compared(inst: Any, keys: tuple[str, ...]) -> tuple[Any, Kind]:
    """The value an (sub-)attribute instance offers for comparison, after ``[keys]``."""
    if not isinstance(inst, dict):
        return _MISSING, "plain"
    attr_type = inst.get("type")
    key = VALUE_KEY.get(attr_type) if isinstance(attr_type, str) else None
    if key is None or key not in inst:
        return _MISSING, "plain"
    value = inst[key]
    if keys:
        for k in keys:
            if not isinstance(value, dict) or k not in value:
                return _MISSING, "plain"
            value = value[k]
        return value, "plain"
    return value, ("lang" if key == "languageMap" else "vocab" if key == "vocab" else "plain")


def _target(inst: Any, node: Compare, expand: Expand) -> tuple[Any, Kind]:
    found, is_member = _walk(inst, node.attr_path[1:], expand)
    if found is _MISSING or is_member:
        return found, "plain"
    return _compared(found, node.keys)


def atoms(value: Any, kind: Kind) -> Iterable[Any]:
    """The individual things compared: list elements, or every string of a language map."""
    if kind == "lang":
        if isinstance(value, dict):
            for text in value.values():
                yield from atoms(text, "plain")
        return
    if isinstance(value, list):
        yield from value
    else:
        yield value


# -- public entry point -------------------------------------------------------------------------


def matches(node: QNode, doc: Mapping[str, Any], expand: Expand) -> bool:
    """Whether the stored entity document satisfies the q tree."""
    if isinstance(node, And):
        return all(matches(item, doc, expand) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, doc, expand) for item in node.items)
    if isinstance(node, NotExists):
        return not _exists(node, doc, expand)
    if isinstance(node, Exists):
        return _exists(node, doc, expand)
    return _compare(node, doc, expand)


def _exists(node: Exists | NotExists, doc: Mapping[str, Any], expand: Expand) -> bool:
    instances = _instances(doc, expand(node.attr_path[0]))
    if len(node.attr_path) == 1 and not node.keys:
        return bool(instances)
    for inst in instances:
        found, is_member = _walk(inst, node.attr_path[1:], expand)
        if found is _MISSING:
            continue
        if is_member or not node.keys or _compared(found, node.keys)[0] is not _MISSING:
            return True
    return False


def _compare(node: Compare, doc: Mapping[str, Any], expand: Expand) -> bool:
    plain = atom_test(node, None)
    vocab = atom_test(node, expand) if is_equality(node) else plain
    negated = node.op in ("!=", "!~=")
    for inst in _instances(doc, expand(node.attr_path[0])):
        value, kind = _target(inst, node, expand)
        if value is _MISSING:
            continue
        test = vocab if kind == "vocab" else plain
        hit = any(test(atom) for atom in atoms(value, kind))
        if hit != negated:
            return True
    return False
