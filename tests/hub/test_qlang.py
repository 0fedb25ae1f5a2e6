"""The q parser: every construct of ETSI GS CIM 009 clause 4.9, its errors, and round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.hub.errors import BadRequestData
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
    parse_q,
    to_text,
)
from smartcity.hub.query.qregex import check_pattern


def term(name: str, op: str, value: object, keys: tuple[str, ...] = ()) -> Compare:
    return Compare(tuple(name.split(".")), keys, op, value)  # type: ignore[arg-type]


# -- constructs ---------------------------------------------------------------------------------

PARSED: dict[str, QNode] = {
    # comparisons and literal kinds
    "temperature>20": term("temperature", ">", 20),
    "temperature>=-5": term("temperature", ">=", -5),
    "temperature<20.5": term("temperature", "<", 20.5),
    "temperature<=1e3": term("temperature", "<=", 1000.0),
    "temperature==-2.5E-3": term("temperature", "==", -0.0025),
    'brandName!="Mercedes"': term("brandName", "!=", "Mercedes"),
    'name=="say \\"hi\\" \\\\o/"': term("name", "==", 'say "hi" \\o/'),
    'name=="a;b|c)(d"': term("name", "==", "a;b|c)(d"),
    'name==""': term("name", "==", ""),
    "isParked==true": term("isParked", "==", True),
    "isParked!=false": term("isParked", "!=", False),
    "isParked==urn:ngsi-ld:OffStreetParking:Downtown1": term(
        "isParked", "==", Bare("uri", "urn:ngsi-ld:OffStreetParking:Downtown1")
    ),
    'isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"': term(
        "isParked", "==", "urn:ngsi-ld:OffStreetParking:Downtown1"
    ),
    "dateObserved>=2018-12-04T12:00:00Z": term(
        "dateObserved", ">=", Bare("dateTime", "2018-12-04T12:00:00Z")
    ),
    "dateObserved<2018-12-04T12:00:00.123456+02:00": term(
        "dateObserved", "<", Bare("dateTime", "2018-12-04T12:00:00.123456+02:00")
    ),
    "birthday==2000-02-29": term("birthday", "==", Bare("date", "2000-02-29")),
    "opens<08:30:00Z": term("opens", "<", Bare("time", "08:30:00Z")),
    # ranges and lists
    "temperature==20..25": term("temperature", "==", Range(20, 25)),
    "temperature!=-1.5..2e1": term("temperature", "!=", Range(-1.5, 20.0)),
    'name=="a".."m"': term("name", "==", Range("a", "m")),
    "observedAt==2018-01-01T00:00:00Z..2019-01-01T00:00:00Z": term(
        "observedAt",
        "==",
        Range(Bare("dateTime", "2018-01-01T00:00:00Z"), Bare("dateTime", "2019-01-01T00:00:00Z")),
    ),
    'color=="red","blue",3,true': term("color", "==", ValueList(("red", "blue", 3, True))),
    "owner==urn:a:1,urn:a:2": term(
        "owner", "==", ValueList((Bare("uri", "urn:a:1"), Bare("uri", "urn:a:2")))
    ),
    # patterns
    "name~=(?i)^dan": term("name", "~=", "(?i)^dan"),
    'name~="a;b|c"': term("name", "~=", "a;b|c"),
    'name!~="\\d+"': term("name", "!~=", "\\d+"),
    "name~=(a|b)[;)]x": term("name", "~=", "(a|b)[;)]x"),
    "(name~=a|b)": Or((term("name", "~=", "a"), Exists(("b",)))),
    # existence
    "isMonitoredBy": Exists(("isMonitoredBy",)),
    "!isMonitoredBy": NotExists(("isMonitoredBy",)),
    "!address[city]": NotExists(("address",), ("city",)),
    "ex:name": Exists(("ex:name",)),
    "température>1": term("température", ">", 1),
    # attribute paths, compound names, members
    'address[city]=="Berlin"': term("address", "==", "Berlin", ("city",)),
    "address[city][zip code]==10115": term("address", "==", 10115, ("city", "zip code")),
    "temperature.accuracy<0.5": term("temperature.accuracy", "<", 0.5),
    "a.b.c[d][e]==1": term("a.b.c", "==", 1, ("d", "e")),
    'name[en]=="Dan"': term("name", "==", "Dan", ("en",)),
    "temperature.observedAt>=2026-01-01T00:00:00Z": term(
        "temperature.observedAt", ">=", Bare("dateTime", "2026-01-01T00:00:00Z")
    ),
    'temperature.unitCode=="CEL"': term("temperature.unitCode", "==", "CEL"),
    # logic
    "a;b": And((Exists(("a",)), Exists(("b",)))),
    "a|b": Or((Exists(("a",)), Exists(("b",)))),
    "a|b;c": Or((Exists(("a",)), And((Exists(("b",)), Exists(("c",)))))),
    "a;b|c": Or((And((Exists(("a",)), Exists(("b",)))), Exists(("c",)))),
    "(a|b);c": And((Or((Exists(("a",)), Exists(("b",)))), Exists(("c",)))),
    "a;(b;c);d": And(tuple(Exists((n,)) for n in "abcd")),
    "((((a))))": Exists(("a",)),
    '((speed>50|rpm>3000);brandName=="Mercedes")': And(
        (Or((term("speed", ">", 50), term("rpm", ">", 3000))), term("brandName", "==", "Mercedes"))
    ),
    "(temperature>=20;temperature<=25)|capacity<=10": Or(
        (
            And((term("temperature", ">=", 20), term("temperature", "<=", 25))),
            term("capacity", "<=", 10),
        )
    ),
}


@pytest.mark.parametrize("text", list(PARSED))
def test_parses(text: str) -> None:
    node = parse_q(text)
    assert node == PARSED[text]
    assert repr(node) == repr(PARSED[text])  # distinguishes True from 1 and 1 from 1.0
    assert parse_q(to_text(node)) == node
    assert str(node) == to_text(node)


def test_canonical_text() -> None:
    assert to_text(parse_q("((a|b));(c)")) == "(a|b);c"
    assert to_text(parse_q('x==1.0,2e0,"q\\""')) == 'x==1.0,2.0,"q\\""'
    assert to_text(parse_q("x~=a\\d")) == 'x~="a\\\\d"'


# -- errors -------------------------------------------------------------------------------------

ERRORS = {
    "": "q is empty",
    "a>": "expected a value after '>' at position 3",
    "temperature>=": "expected a value after '>=' at position 14",
    "a=5": "single '=' is not an operator; use '==' for equality at position 2",
    "a==foo": "expected a value after '=='",
    "a==5x": "expected a value after '=='",
    "a==.5": "expected a value after '=='",
    'a=="x': "unterminated string",
    "(a": "unclosed '(' (opened at position 1): expected ')' at position 3",
    "a)": "unbalanced ')' at position 2",
    "a;": "expected an attribute name at position 3",
    "a||b": "expected an attribute name at position 3",
    "()": "expected an attribute name at position 2",
    ";a": "expected an attribute name at position 1",
    "a b": "expected an operator",
    "a== 1": "expected a value after '=='",
    "1a": "expected an attribute name at position 1",
    "a>true": "'>' needs a number, a quoted string or a date/time",
    "a<urn:x:y": "'<' needs a number",
    "a>1..5": "ranges (a..b) only work with == and !=",
    "a<=1,2": "value lists (a,b) only work with == and !=",
    "a==true..false": "range bounds must be numbers, strings or dates/times",
    "a==1e999": "number is out of range",
    "a==99999999999999999999": "integer is out of range",
    "!a==1": "'!a' tests absence and takes no operator",
    "!(a)": "expected an attribute name at position 2",
    "a.": "expected a sub-attribute name after '.' at position 3",
    "a.observedAt.x": "'observedAt' is an attribute member and has no sub-attributes",
    "a.unitCode[k]": "'unitCode' is an attribute member and takes no [keys]",
    "a[k].b": "sub-attributes ('.') must come before keys",
    "a[]": "expected a key inside '[...]'",
    "a[k": "unclosed '['",
    'a[k"]': "unclosed '['",
    "a~=": "expected a regular expression after '~='",
    "a~=(": "invalid regular expression",
    "a~=(x)\\1": "back references",
    "a~=\\Bx": "not supported",
    "a~=x{300}": "repetition counts above 255",
    'a~="x"y': "expected ';', '|', ')' or the end after the pattern",
    "a==1;": "expected an attribute name at position 6",
    "((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))": "nest deeper",
    "a~=(?=x)": "lookahead (?=...)",
    ";".join(["a"] * 33): "more than 32 terms at position 65",
    "a==" + ",".join(["1"] * 257): "more than 256 values at position 516",
    "a==" + ",".join(["1"] * 200) + ";b==1..2|c==" + ",".join(["1"] * 55): "256 values",
}


@pytest.mark.parametrize("text", list(ERRORS))
def test_errors_say_where_and_what(text: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    assert ERRORS[text] in info.value.detail
    assert info.value.detail.startswith("q")
    assert info.value.status == 400


def test_size_limits_admit_what_they_name() -> None:
    parse_q(";".join(["a"] * 32))
    parse_q("a==" + ",".join(["1"] * 256))


def test_length_limit() -> None:
    parse_q("a" * 4096)
    with pytest.raises(BadRequestData, match="limit is 4096"):
        parse_q("a" * 4097)
    with pytest.raises(BadRequestData, match="limit is 10"):
        parse_q("a==12345678", max_length=10)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from('ab1.;|()!=<>~"[]-:eT, \\Z') | st.characters(), max_size=20))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        node = parse_q(text)
    except BadRequestData as exc:
        assert re.search(r"position \d+|q is empty|not supported|invalid regular", exc.detail)
    else:
        assert parse_q(to_text(node)) == node


# -- round trip: random trees -> text -> the same tree ------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_:\-]{0,5}", fullmatch=True) | st.sampled_from(
    ["température", "名前", "ex:speed", "true", "id", "observedAt"]
)
sub_names = names.filter(lambda n: n not in INSTANCE_MEMBERS)
keys = st.text(
    st.characters(min_codepoint=32, exclude_characters='[]"\\', exclude_categories=("Cs",)),
    min_size=1,
    max_size=5,
)


def two(n: int) -> str:
    return f"{n:02d}"


datetimes = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: (
        f"{y:04d}-{two(mo)}-{two(d)}T{two(h)}:{two(mi)}:{two(s)}" + frac + zone
    ),
    st.integers(0, 9999),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", ".5", ".123456", ".000000001"]),
    st.sampled_from(["Z", "+02:00", "-05:30"]),
)
bare_values = st.one_of(
    datetimes.map(lambda t: Bare("dateTime", t)),
    st.sampled_from(["2026-01-01", "1999-12-31"]).map(lambda t: Bare("date", t)),
    st.sampled_from(["12:00:00Z", "23:59:59.5", "00:00:00"]).map(lambda t: Bare("time", t)),
    st.from_regex(r"[a-z][a-z0-9+.\-]{0,4}:[A-Za-z0-9:/._~%!$&'*+=@\-]{0,8}", fullmatch=True).map(
        lambda t: Bare("uri", t)
    ),
)
numbers = st.integers(-(2**63) + 1, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
strings = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
comparables: st.SearchStrategy[Scalar] = st.one_of(
    numbers, strings, bare_values.filter(lambda b: b.kind != "uri")
)
scalars: st.SearchStrategy[Scalar] = st.one_of(numbers, strings, st.booleans(), bare_values)


def _valid_pattern(text: str) -> bool:
    try:
        check_pattern(text)
    except BadRequestData:
        return False
    return True


patterns = st.sampled_from(["(?i)^dan", r"\d+", "a|b", "[;)]", "", '"', "\\\\"]) | strings.filter(
    _valid_pattern
)


@st.composite
def attributes(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    path = [draw(names), *draw(st.lists(sub_names, max_size=2))]
    if draw(st.booleans()) and len(path) > 1:
        path[-1] = draw(st.sampled_from(sorted(INSTANCE_MEMBERS)))
        return tuple(path), ()
    return tuple(path), tuple(draw(st.lists(keys, max_size=2)))


@st.composite
def terms(draw: st.DrawFn) -> QNode:
    path, keys_ = draw(attributes())
    kind = draw(st.sampled_from(["exists", "not", "eq", "order", "pattern"]))
    if kind == "exists":
        return Exists(path, keys_)
    if kind == "not":
        return NotExists(path, keys_)
    if kind == "pattern":
        return Compare(path, keys_, draw(st.sampled_from(["~=", "!~="])), draw(patterns))
    if kind == "order":
        return Compare(
            path, keys_, draw(st.sampled_from([">", ">=", "<", "<="])), draw(comparables)
        )
    value = draw(
        scalars
        | st.builds(Range, comparables, comparables)
        | st.lists(scalars, min_size=2, max_size=4).map(lambda v: ValueList(tuple(v)))
    )
    return Compare(path, keys_, draw(st.sampled_from(["==", "!="])), value)


def _canonical(kind: type[And] | type[Or], items: list[QNode]) -> QNode:
    # Canonical trees never nest And directly in And (or Or in Or): the parser flattens them.
    flat: list[QNode] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


trees = st.recursive(
    terms(),
    lambda inner: (
        st.lists(inner, min_size=2, max_size=3).map(lambda i: _canonical(And, i))
        | st.lists(inner, min_size=2, max_size=3).map(lambda i: _canonical(Or, i))
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_round_trip(node: QNode) -> None:
    text = to_text(node)
    parsed = parse_q(text, max_length=100_000)
    assert parsed == node, text
    assert repr(parsed) == repr(node), text
