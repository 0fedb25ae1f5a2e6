"""The platform's central event: ``Change``, one entity changed by one write, and the change
feed that tells the rest of the platform about it in two phases.

1. **In the transaction** (``ChangeFeed.on_change``): hooks run with the open connection before
   the commit, so what they write (subscription matching → the notification outbox) commits or
   rolls back with the change itself. A hook that raises undoes the write.
2. **After the commit** (``ChangeFeed.on_commit``): listeners learn of what is now durable
   (waking the notifier, the dashboard's live view). A listener that raises is logged and never
   undoes an accepted write.

Every registration returns an unsubscribe handle (as Home Assistant's event bus does), so a
feature that goes away (a test's app, a stopped subscriber) leaves nothing behind.

Writers never call the phases themselves: ``EntityService.transaction()`` runs them in order
(history → hooks → commit → listeners) for every write, the hub's own and ingestion's batches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec

from sqlalchemy import Connection

from smartcity.hub.entity import Instance

log = logging.getLogger(__name__)

P = ParamSpec("P")
Unsubscribe = Callable[[], None]


@dataclass
class Change:
    """One entity changed by one operation (for history, subscriptions and live listeners)."""

    tenant: str
    entity_id: str
    before: dict[str, Any] | None  # None: the entity was created
    after: dict[str, Any] | None  # None: the entity was deleted
    written: dict[str, list[Instance]] = field(default_factory=dict)  # iri -> new instances
    removed: list[str] = field(default_factory=list)  # iris of deleted attributes


class Listeners(Generic[P]):
    """A list of callbacks with unsubscribe handles.

    Iterating takes a snapshot, so a callback may unsubscribe (itself or another) while the
    list is being called; adding and removing are safe from any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: tuple[Callable[P, Any], ...] = ()
        self._lock = threading.Lock()

    def add(self, callback: Callable[P, Any]) -> Unsubscribe:
        with self._lock:
            self._items = (*self._items, callback)

        def unsubscribe() -> None:
            with self._lock:
                items = list(self._items)
                if callback in items:
                    items.remove(callback)
                    self._items = tuple(items)

        return unsubscribe

    def __iter__(self) -> Iterator[Callable[P, Any]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every callback in turn; one that raises propagates (the caller decides)."""
        for callback in self._items:
            callback(*args, **kwargs)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every callback; one that raises is logged and the others still run."""
        for callback in self._items:
            try:
                callback(*args, **kwargs)
            except Exception:
                log.exception("%s: a listener failed", self.name)


class ChangeFeed:
    """The two phases of every write (see the module's docstring)."""

    def __init__(self) -> None:
        self.hooks: Listeners[[Connection, Sequence[Change]]] = Listeners("change hook")
        self.listeners: Listeners[[Sequence[Change]]] = Listeners("commit listener")

    def on_change(self, hook: Callable[[Connection, Sequence[Change]], Any]) -> Unsubscribe:
        """``hook(conn, changes)`` inside the write transaction, before the commit."""
        return self.hooks.add(hook)

    def on_commit(self, listener: Callable[[Sequence[Change]], Any]) -> Unsubscribe:
        """``listener(changes)`` after the commit, with the changes that are now durable."""
        return self.listeners.add(listener)

    def in_transaction(self, conn: Connection, changes: Sequence[Change]) -> None:
        if changes:
            self.hooks.call(conn, changes)

    def committed(self, changes: Sequence[Change]) -> None:
        if changes:
            self.listeners.notify(changes)
