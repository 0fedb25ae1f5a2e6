"""Compile a parsed q tree into a SQL WHERE clause over ``entities.doc``.

The result selects exactly the documents :func:`smartcity.hub.query.qeval.matches` accepts,
on SQLite (JSON text; ``json_each``/``json_type``) and on PostgreSQL (JSONB;
``jsonb_array_elements``/``jsonb_typeof``). Read ``qeval`` first: this module mirrors it rule
by rule (each mirror says so in its docstring), and the tests compare the two on random
documents and queries.

How the SQL is shaped, and why:

* "any instance", "any list element" and "any language" are correlated ``EXISTS`` subqueries
  over the JSON array or object being searched.
* Nothing that can raise (a cast, JSON-parsing a bare string, ``jsonb_array_elements`` on a
  non-array) is reachable except through ``CASE``: databases evaluate the parts of an ``AND``
  in any order, but ``CASE`` in order.
* ``!=`` and ``!~=`` compile to ``exists AND NOT COALESCE(any, FALSE)`` so that SQL's
  three-valued logic never turns a Python ``True`` into ``NULL``.
* User text only ever reaches the database as bound parameters.

SQLite needs :func:`register_sqlite_functions` on every connection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    FromClause,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.qeval import (
    DATETIME_PATTERN,
    VALUE_KEY,
    Kind,
    datetime_key,
    equality_literals,
    is_equality,
    scalar_str,
)
from smartcity.hub.query.qlang import (
    INSTANCE_MEMBERS,
    And,
    Compare,
    Exists,
    NotExists,
    Or,
    QNode,
    Range,
    Scalar,
    ValueList,
)
from smartcity.hub.query.qregex import compile_pattern, to_postgres

Bool: TypeAlias = ColumnElement[bool]
Expand: TypeAlias = Callable[[str], str]


# -- SQLite user functions ----------------------------------------------------------------------


def _sqlite_regexp(pattern: Any, value: Any) -> bool:
    if not isinstance(pattern, str) or not isinstance(value, str):
        return False
    try:
        compiled = compile_pattern(pattern)  # cached; RE2, linear in the value's length
    except BadRequestData:
        return False
    return compiled.search(value)


def _sqlite_datetime_key(value: Any) -> int | None:
    return datetime_key(value) if isinstance(value, str) else None


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Install the functions q needs on a sqlite3 connection (call it from the engine's
    ``connect`` event): ``regexp(pattern, value)`` with :mod:`qregex` semantics, and
    ``q_datetime_key(text)``, :func:`qeval.datetime_key` itself."""
    dbapi_connection.create_function("regexp", 2, _sqlite_regexp, deterministic=True)
    dbapi_connection.create_function("q_datetime_key", 1, _sqlite_datetime_key, deterministic=True)


# -- JSON navigation, one class per backend -----------------------------------------------------
#
# A node is one JSON value somewhere in the document, possibly absent. The compiler is written
# only in terms of this small vocabulary.


class _Node:
    def exists(self) -> Bool:
        raise NotImplementedError

    def is_kind(self, kind: str) -> Bool:
        """kind: array, object, string, number, true or false."""
        raise NotImplementedError

    def text(self) -> ColumnElement[str]:
        """The string; meaningful only where ``is_kind("string")``, harmless elsewhere."""
        raise NotImplementedError

    def number_compare(self, op: str, number: int | float) -> Bool:
        """``self op number``; meaningful only where ``is_kind("number")``."""
        raise NotImplementedError

    def number_among(self, numbers: Sequence[int | float]) -> Bool:
        """``self`` equals one of ``numbers``; meaningful only where ``is_kind("number")``."""
        raise NotImplementedError

    def member(self, key: str) -> _Node:
        """Member ``key``; absent unless this is an object with that key."""
        raise NotImplementedError

    def member_by_type(self, keys: Mapping[str, str]) -> _Node:
        """Member ``keys[self["type"]]``; absent if the type is not in ``keys``."""
        raise NotImplementedError

    def children(self, kind: Literal["array", "object"]) -> tuple[FromClause, _Node]:
        """A FROM item with a row per element (array) or member value (object), and the node
        for that row. Callers must also require ``is_kind(kind)``."""
        raise NotImplementedError


_SQLITE_KIND = {
    "array": ("array",),
    "object": ("object",),
    "string": ("text",),
    "number": ("integer", "real"),
    "true": ("true",),
    "false": ("false",),
}


def _label(key: str) -> str:
    # SQLite 3.40 matches a quoted path label against the *escaped* JSON text of object keys
    # and cannot escape a quote inside it: names with '"' or '\' have no exact path.
    if '"' in key or "\\" in key:
        raise BadRequestData(f"q: the name {key!r} contains '\"' or '\\', which cannot be queried")
    return '."' + key + '"'


@dataclass(frozen=True)
class _SqlitePath(_Node):
    """The value at JSON path ``path`` inside the JSON text ``src`` (either may be NULL)."""

    src: ColumnElement[Any]
    path: ColumnElement[str]

    def exists(self) -> Bool:
        return func.json_type(self.src, self.path).is_not(None)

    def is_kind(self, kind: str) -> Bool:
        return func.json_type(self.src, self.path).in_(_SQLITE_KIND[kind])

    def text(self) -> ColumnElement[str]:
        return func.json_extract(self.src, self.path)

    def number_compare(self, op: str, number: int | float) -> Bool:
        return _apply(op, func.json_extract(self.src, self.path), literal(number))

    def number_among(self, numbers: Sequence[int | float]) -> Bool:
        return func.json_extract(self.src, self.path).in_([literal(n) for n in numbers])

    def member(self, key: str) -> _Node:
        return _SqlitePath(self.src, self.path.concat(literal(_label(key), String)))

    def member_by_type(self, keys: Mapping[str, str]) -> _Node:
        type_text = func.json_extract(self.src, self.path.concat(literal(_label("type"))))
        suffix = case({t: literal(_label(k), String) for t, k in keys.items()}, value=type_text)
        return _SqlitePath(self.src, self.path.concat(suffix))  # NULL path: absent

    def children(self, kind: Literal["array", "object"]) -> tuple[FromClause, _Node]:
        rows = func.json_each(self.src, self.path).table_valued("type", "atom", "value").alias()
        return rows, _SqliteRow(rows)


@dataclass(frozen=True)
class _SqliteRow(_Node):
    """A row of ``json_each``: primitives expose ``atom``, containers their JSON text."""

    rows: Any

    def exists(self) -> Bool:
        return true()

    def is_kind(self, kind: str) -> Bool:
        return self.rows.c.type.in_(_SQLITE_KIND[kind])

    def text(self) -> ColumnElement[str]:
        return self.rows.c.atom

    def number_compare(self, op: str, number: int | float) -> Bool:
        return _apply(op, self.rows.c.atom, literal(number))

    def number_among(self, numbers: Sequence[int | float]) -> Bool:
        return self.rows.c.atom.in_([literal(n) for n in numbers])

    def _as_json(self) -> _SqlitePath:
        # For a string row, "value" is the bare text, not JSON: never hand it to a JSON
        # function (it might even parse, as a different value).
        container = self.rows.c.type.in_(("object", "array"))
        return _SqlitePath(case((container, self.rows.c.value), else_=None), literal("$", String))

    def member(self, key: str) -> _Node:
        return self._as_json().member(key)

    def member_by_type(self, keys: Mapping[str, str]) -> _Node:
        return self._as_json().member_by_type(keys)

    def children(self, kind: Literal["array", "object"]) -> tuple[FromClause, _Node]:
        return self._as_json().children(kind)


_PG_KIND = {
    "array": "array",
    "object": "object",
    "string": "string",
    "number": "number",
    "true": "boolean",
    "false": "boolean",
}


def _pg_number(number: int | float) -> ColumnElement[Any]:
    # JSONB numbers compare as exact numerics; repr() is the shortest exact float form.
    return cast(literal(repr(number), String), JSONB)


def _text_param(value: str) -> ColumnElement[str]:
    return cast(literal(value, String), Text)


@dataclass(frozen=True)
class _PgNode(_Node):
    """A JSONB expression: SQL NULL when absent (JSON null is a present value)."""

    expr: ColumnElement[Any]

    def exists(self) -> Bool:
        return self.expr.is_not(None)

    def is_kind(self, kind: str) -> Bool:
        typed = func.jsonb_typeof(self.expr) == _PG_KIND[kind]
        if kind in ("true", "false"):
            return and_(typed, self.text() == kind)
        return typed

    def text(self) -> ColumnElement[str]:
        return self.expr.op("#>>", return_type=Text)(literal_column("'{}'::text[]"))

    def number_compare(self, op: str, number: int | float) -> Bool:
        return _apply(op, self.expr, _pg_number(number))

    def number_among(self, numbers: Sequence[int | float]) -> Bool:
        return self.expr.in_([_pg_number(n) for n in numbers])

    def member(self, key: str) -> _Node:
        # '->' with a text key is NULL on arrays and scalars: exactly "keys into objects".
        return _PgNode(self.expr.op("->", return_type=JSONB)(_text_param(key)))

    def member_by_type(self, keys: Mapping[str, str]) -> _Node:
        type_text = self.expr.op("->>", return_type=Text)(_text_param("type"))
        key = case({t: _text_param(k) for t, k in keys.items()}, value=type_text)
        return _PgNode(self.expr.op("->", return_type=JSONB)(key))

    def children(self, kind: Literal["array", "object"]) -> tuple[FromClause, _Node]:
        # The CASE keeps jsonb_array_elements/jsonb_each from raising on other kinds.
        guarded = case((func.jsonb_typeof(self.expr) == kind, self.expr), else_=None)
        if kind == "array":
            rows = func.jsonb_array_elements(guarded).table_valued("value").alias()
        else:
            rows = func.jsonb_each(guarded).table_valued("key", "value").alias()
        return rows, _PgNode(type_coerce(rows.c.value, JSONB))


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _apply(op: str, left: Any, right: Any) -> Bool:
    return _OPERATORS[op](left, right)


def _exists(rows: FromClause, where: Bool) -> Bool:
    return select(literal_column("1")).select_from(rows).where(where).exists()


# -- the compiler -------------------------------------------------------------------------------


def to_sql(
    node: QNode, doc_col: ColumnElement[Any], dialect_name: str, expand: Expand
) -> ColumnElement[bool]:
    """A WHERE clause over ``doc_col`` (``entities.doc``) equivalent to ``qeval.matches``.

    ``dialect_name`` is ``engine.dialect.name``: ``"sqlite"`` or ``"postgresql"``. Raises
    :class:`BadRequestData` for names SQLite cannot address (containing ``"`` or ``\\``).
    Clauses are kept (``_compiled``): building one was a quarter of a query's CPU.
    """
    return _compiled.get(node, doc_col, dialect_name, expand)


def _compile(
    node: QNode, doc_col: ColumnElement[Any], dialect_name: str, expand: Expand
) -> ColumnElement[bool]:
    if dialect_name == "sqlite":
        root: _Node = _SqlitePath(doc_col, literal("$", String))
    elif dialect_name == "postgresql":
        root = _PgNode(doc_col)
    else:
        raise ValueError(f"q cannot be compiled for the {dialect_name!r} database")
    return _Compiler(root, dialect_name, expand).node(node)


class _CompiledClauses:
    """The clauses built for recent q expressions, reused by the requests that repeat them.

    Building the SQLAlchemy expression (a table-valued alias for each ``jsonb_array_elements``)
    cost ~25 % of a ``type+q`` query's CPU on PostgreSQL (py-spy), more than running it. A
    clause depends on the expression, the column, the dialect and how each attribute name
    was expanded by the request's @context: the key is the first three (``repr`` of the
    tree: ``==``/hash would take ``true`` for ``1``), and each kept clause records the
    expansions it was built with, reused only when the request expands every one the same.
    SQLAlchemy expressions are immutable once built, so threads may share them."""

    def __init__(self, size: int = 512, per_key: int = 4) -> None:
        self._size, self._per_key = size, per_key
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, list[tuple[tuple[tuple[str, str], ...], Any]]] = (
            OrderedDict()
        )

    def get(
        self, node: QNode, doc_col: ColumnElement[Any], dialect_name: str, expand: Expand
    ) -> ColumnElement[bool]:
        # id: a column's == builds SQL; a kept clause holds its column, so the id stays its own
        key = (repr(node), id(doc_col), dialect_name)
        with self._lock:
            kept = list(self._entries.get(key, ()))
        for expansions, clause in kept:
            if all(expand(name) == iri for name, iri in expansions):
                return clause
        seen: dict[str, str] = {}

        def recording(name: str) -> str:
            seen[name] = iri = expand(name)
            return iri

        clause = _compile(node, doc_col, dialect_name, recording)
        with self._lock:
            entries = self._entries.setdefault(key, [])
            entries.insert(0, (tuple(seen.items()), clause))
            del entries[self._per_key :]
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return clause


_compiled = _CompiledClauses()


class _Compiler:
    def __init__(self, root: _Node, dialect: str, expand: Expand) -> None:
        self.root = root
        self.dialect = dialect
        self.expand = expand

    def node(self, node: QNode) -> Bool:
        if isinstance(node, And):
            return and_(*(self.node(item) for item in node.items))
        if isinstance(node, Or):
            return or_(*(self.node(item) for item in node.items))
        if isinstance(node, NotExists):
            return not_(self.exists(node))
        if isinstance(node, Exists):
            return self.exists(node)
        return self.compare(node)

    # locating values -----------------------------------------------------------------------
    def any_instance(self, name: str, where: Callable[[_Node], Bool]) -> Bool:
        """Mirror of ``qeval._instances``: some instance of the attribute satisfies ``where``."""
        attribute = self.root.member("attrs").member(self.expand(name))
        rows, inst = attribute.children("array")
        return _exists(rows, and_(attribute.is_kind("array"), where(inst)))

    def walk(self, inst: _Node, rest: tuple[str, ...]) -> tuple[_Node, bool]:
        """Mirror of ``qeval._walk``: (node, whether it is an instance member)."""
        node = inst
        for name in rest:
            if name in INSTANCE_MEMBERS:
                return node.member(name), True
            node = node.member(self.expand(name))
        return node, False

    @staticmethod
    def navigate(value: _Node, keys: tuple[str, ...]) -> _Node:
        for key in keys:
            value = value.member(key)
        return value

    def exists(self, node: Exists | NotExists) -> Bool:
        """Mirror of ``qeval._exists``."""
        path, keys = node.attr_path, node.keys

        def where(inst: _Node) -> Bool:
            if len(path) == 1 and not keys:
                return true()
            found, is_member = self.walk(inst, path[1:])
            if is_member or not keys:
                return found.exists()
            return self.navigate(found.member_by_type(VALUE_KEY), keys).exists()

        return self.any_instance(path[0], where)

    # comparisons ---------------------------------------------------------------------------
    def compare(self, node: Compare) -> Bool:
        """Mirror of ``qeval._compare`` and ``qeval._compared``."""

        def where(inst: _Node) -> Bool:
            found, is_member = self.walk(inst, node.attr_path[1:])
            if is_member:
                return self.comparand(found, "plain", node)
            if node.keys:
                value = self.navigate(found.member_by_type(VALUE_KEY), node.keys)
                return self.comparand(value, "plain", node)
            # Language maps, and vocabularies under equality, are compared differently.
            special: dict[str, Kind] = {"LanguageProperty": "lang"}
            if is_equality(node):
                special["VocabProperty"] = "vocab"
            plain = {t: key for t, key in VALUE_KEY.items() if t not in special}
            branches = [self.comparand(found.member_by_type(plain), "plain", node)]
            for attr_type, kind in special.items():
                value = found.member_by_type({attr_type: VALUE_KEY[attr_type]})
                branches.append(self.comparand(value, kind, node))
            return or_(*branches)

        return self.any_instance(node.attr_path[0], where)

    def comparand(self, value: _Node, kind: Kind, node: Compare) -> Bool:
        test = self.atom_test(node, vocab=kind == "vocab")
        hit = self.any_atom(value, kind, test)
        if node.op in ("!=", "!~="):
            return and_(value.exists(), not_(func.coalesce(hit, false())))
        return hit

    def any_atom(self, value: _Node, kind: Kind, test: Callable[[_Node], Bool]) -> Bool:
        """Mirror of ``qeval.atoms``: the value itself or any of its list elements; for a
        language map, any atom of any member."""
        if kind == "lang":
            rows, member = value.children("object")
            inner = self.any_atom(member, "plain", test)
            return and_(value.is_kind("object"), _exists(rows, inner))
        rows, element = value.children("array")
        return or_(test(value), and_(value.is_kind("array"), _exists(rows, test(element))))

    # atoms ---------------------------------------------------------------------------------
    def atom_test(self, node: Compare, *, vocab: bool) -> Callable[[_Node], Bool]:
        """Mirror of ``qeval.atom_test``."""
        value = node.value
        if node.op in ("~=", "!~="):
            assert isinstance(value, str)
            return lambda atom: and_(atom.is_kind("string"), self.regexp(atom.text(), value))
        if isinstance(value, Range):
            low, high = value.low, value.high
            return lambda atom: and_(
                self.atom_compare(atom, ">=", low), self.atom_compare(atom, "<=", high)
            )
        if node.op in ("==", "!="):
            literals = equality_literals(value, self.expand if vocab else None)
            return lambda atom: self.equals_any(atom, literals)
        assert not isinstance(value, ValueList)
        op = node.op
        return lambda atom: self.atom_compare(atom, op, value)

    def equals_any(self, atom: _Node, literals: Sequence[Scalar]) -> Bool:
        """Mirror of ``any(qeval._compare_atom("==", atom, lit) for lit in literals)``, with one
        IN list per kind of literal: a value list costs one comparison, not one per value."""
        numbers: list[int | float] = []
        plain: list[str] = []
        instants: list[str] = []
        branches: list[Bool] = []
        for lit in literals:
            if isinstance(lit, bool):
                branches.append(self.atom_compare(atom, "==", lit))
            elif isinstance(lit, int | float):
                numbers.append(lit)
            else:
                text = scalar_str(lit)
                assert text is not None
                (plain if datetime_key(text) is None else instants).append(text)
        # Deduplicated per kind only: in Python True == 1, but not in q.
        numbers = list(dict.fromkeys(numbers))
        plain = list(dict.fromkeys(plain))
        instants = list(dict.fromkeys(instants))
        if len(numbers) == 1:
            branches.append(self.atom_compare(atom, "==", numbers[0]))
        elif numbers:
            branches.append(and_(atom.is_kind("number"), atom.number_among(numbers)))
        if plain:
            branches.append(and_(atom.is_kind("string"), self.string_among(atom.text(), plain)))
        if instants:
            branches.append(
                and_(atom.is_kind("string"), self.datetime_among(atom.text(), instants))
            )
        return or_(*branches)

    def atom_compare(self, atom: _Node, op: str, literal_value: Scalar) -> Bool:
        """Mirror of ``qeval._compare_atom``."""
        if isinstance(literal_value, bool):
            if op != "==":
                return false()
            return atom.is_kind("true" if literal_value else "false")
        if isinstance(literal_value, int | float):
            return and_(atom.is_kind("number"), atom.number_compare(op, literal_value))
        text = scalar_str(literal_value)
        assert text is not None
        key = datetime_key(text)
        if key is None:
            return and_(atom.is_kind("string"), self.string_compare(atom.text(), op, text))
        return and_(atom.is_kind("string"), self.datetime_compare(atom.text(), op, text, key))

    # dialect differences -------------------------------------------------------------------
    def string_compare(self, stored: ColumnElement[str], op: str, text: str) -> Bool:
        if self.dialect == "postgresql":
            stored = stored.collate("C")  # code-point order, as in Python
        return _apply(op, stored, literal(text, String))

    def string_among(self, stored: ColumnElement[str], texts: Sequence[str]) -> Bool:
        """``stored`` equals one of ``texts`` (by code point, as ``string_compare``)."""
        if len(texts) == 1:
            return self.string_compare(stored, "==", texts[0])
        if self.dialect == "postgresql":
            stored = stored.collate("C")
        return stored.in_([literal(t, String) for t in texts])

    def datetime_among(self, stored: ColumnElement[str], texts: Sequence[str]) -> Bool:
        """Mirror of ``any(qeval._str_compare("==", stored, t) for t in texts)`` for literals
        that are all date-times."""
        if len(texts) == 1:
            key = datetime_key(texts[0])
            assert key is not None
            return self.datetime_compare(stored, "==", texts[0], key)
        keys = [literal(datetime_key(t), BigInteger) for t in texts]
        if self.dialect == "sqlite":
            stored_key = func.q_datetime_key(stored)
            return case(
                (stored_key.is_not(None), stored_key.in_(keys)),
                else_=self.string_among(stored, texts),
            )
        column = func.unnest(postgresql.array([stored])).column_valued()
        compared = case(
            (_pg_datetime_shaped(column), _pg_datetime_key(column).in_(keys)),
            else_=self.string_among(column, texts),
        )
        return select(literal_column("1")).where(compared).exists()

    def datetime_compare(self, stored: ColumnElement[str], op: str, text: str, key: int) -> Bool:
        """Mirror of ``qeval._str_compare`` for a literal that is a date-time."""
        bound_key = literal(key, BigInteger)
        if self.dialect == "sqlite":
            stored_key = func.q_datetime_key(stored)
            return case(
                (stored_key.is_not(None), _apply(op, stored_key, bound_key)),
                else_=self.string_compare(stored, op, text),
            )
        # PostgreSQL: bind the string once (the arithmetic reads it a dozen times), check
        # the shape with a regex, then do qeval.datetime_key's arithmetic in SQL.
        column = func.unnest(postgresql.array([stored])).column_valued()
        compared = case(
            (_pg_datetime_shaped(column), _apply(op, _pg_datetime_key(column), bound_key)),
            else_=self.string_compare(column, op, text),
        )
        return select(literal_column("1")).where(compared).exists()

    def regexp(self, text: ColumnElement[str], pattern: str) -> Bool:
        if self.dialect == "sqlite":
            return type_coerce(func.regexp(literal(pattern, String), text), Boolean)
        translated = literal(to_postgres(pattern), String)
        return text.collate("C").op("~", return_type=Boolean)(translated)


def _pg_datetime_shaped(text: ColumnElement[str]) -> Bool:
    return text.op("~", return_type=Boolean)(literal(r"\A(?:" + DATETIME_PATTERN + r")\Z", String))


def _pg_datetime_key(text: ColumnElement[str]) -> ColumnElement[int]:
    """``qeval.datetime_key`` in SQL, for a string already known to have the right shape."""

    def number(start: Any, length: int) -> ColumnElement[int]:
        return cast(func.substr(text, start, length), BigInteger)

    n = func.length(text)
    year, month, day = number(1, 4), number(6, 2), number(9, 2)
    hour, minute, second = number(12, 2), number(15, 2), number(18, 2)
    utc = func.substr(text, n, 1) == "Z"
    zone_len = case((utc, 1), else_=6)
    fraction = case(
        (func.substr(text, 20, 1) == ".", func.substr(text, 21, n - 20 - zone_len)),
        else_="",
    )
    micros = cast(func.substr(fraction.concat("000000"), 1, 6), BigInteger)
    sign = case((func.substr(text, n - 5, 1) == "-", -1), else_=1)
    offset = case((utc, 0), else_=sign * (number(n - 4, 2) * 60 + number(n - 1, 2)))
    y = year + 400 - case((month <= 2, 1), else_=0)
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = 365 * y + y // 4 - y // 100 + y // 400 + doy
    return (((days * 24 + hour) * 60 + minute - offset) * 60 + second) * 1_000_000 + micros
