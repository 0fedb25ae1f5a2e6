"""Statements kept per shape of query, so that a repeated query skips building them.

Building an entity query's statements in SQLAlchemy (the WHERE clauses, the page's deferred
join, the count) and computing their cache key took ~0.7 ms of a ``type+q`` query's ~1 ms in
process on SQLite (cProfile, 2026-12-07): more than running it. A city's dashboards ask the
same few queries again and again, paging with other limits and offsets, so the statements are
kept per shape with the page as bound parameters; SQLAlchemy then finds the compiled form under
the statement's own memoised cache key. SQLAlchemy statements are immutable once built, so
threads may share them.

Parts of a shape that are SQL expressions (a q clause, kept per q text by ``query.qsql``) are
compared by identity (``Same``): an expression's ``==`` builds SQL rather than comparing, and
an expression built anew for each request simply misses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Same:
    """An object in a key, equal only to itself. The key holds it, so its id stays its own."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


class Kept(Generic[V]):
    """At most ``size`` values by key, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
                return value
        value = build()  # outside the lock: two threads may build one shape, both correct
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
