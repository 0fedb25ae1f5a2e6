"""Keys for statements kept per shape of query, so that a repeated query skips building them.

Building an entity query's statements in SQLAlchemy (the WHERE clauses, the page's deferred
join, the count) and computing their cache key took ~0.7 ms of a ``type+q`` query's ~1 ms in
process on SQLite (cProfile, 2026-12-07): more than running it. A city's dashboards ask the
same few queries again and again, paging with other limits and offsets, so
``repository.query`` keeps the statements per shape (``functools.lru_cache``) with the page as
bound parameters; SQLAlchemy then finds the compiled form under the statement's own memoised
cache key. SQLAlchemy statements are immutable once built, so threads may share them.

Parts of a shape that are SQL expressions (a q clause, kept per q text by ``query.qsql``) are
compared by identity (``Same``): an expression's ``==`` builds SQL rather than comparing, and
an expression built anew for each request simply misses.
"""

from __future__ import annotations

from typing import Any


class Same:
    """An object in a key, equal only to itself. The key holds it, so its id stays its own."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


class Shaped:
    """A value for ``functools.lru_cache`` that is hashed and compared by its ``shape`` alone,
    so the cached function can build from ``parts`` what the shape stands for."""

    __slots__ = ("parts", "shape")

    def __init__(self, shape: tuple[Any, ...], *parts: Any) -> None:
        self.shape, self.parts = shape, parts

    def __hash__(self) -> int:
        return hash(self.shape)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shaped) and other.shape == self.shape
