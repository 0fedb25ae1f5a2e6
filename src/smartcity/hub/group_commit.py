"""Group commit: single-entity writes that arrive together share one transaction.

A transaction's fixed costs — taking the write lock, BEGIN, COMMIT (on PostgreSQL a WAL flush
that waits for the disk), the history's per-transaction lookups, waking the threads that wait —
cost more than the change itself when a request changes one attribute. Under load, writes
therefore wait for the one in progress anyway; this lets the next transaction take all of them.

It is *flat combining*: every writer queues its item and takes the combiner lock; whoever gets
it runs everything queued so far in one batch, and the writers whose items that batch carried
find them done when they get the lock in turn. A write that arrives alone runs alone, at once
(no timer, no added latency); batches grow only as far as writes queue up behind one another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_PENDING = object()


class _Slot(Generic[T]):
    __slots__ = ("item", "outcome")

    def __init__(self, item: T) -> None:
        self.item = item
        self.outcome: object = _PENDING  # None when done, or the exception to raise


class GroupCommit(Generic[T]):
    """``submit(item)`` returns once ``run`` has applied the item in some batch, raising the
    exception ``run`` reported for it. ``run(items)`` returns one outcome per item, in order:
    None for done, or an exception for that item alone."""

    def __init__(self, run: Callable[[Sequence[T]], Sequence[BaseException | None]]) -> None:
        self._run = run
        self._combiner = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Slot[T]] = []

    def submit(self, item: T) -> None:
        slot = _Slot(item)
        with self._queue_lock:
            self._queue.append(slot)
        with self._combiner:
            if slot.outcome is _PENDING:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    outcomes = self._run([s.item for s in batch])
                except BaseException as exc:  # the batch as a whole failed: so did each item
                    outcomes = [exc] * len(batch)
                for s, outcome in zip(batch, outcomes, strict=True):
                    s.outcome = outcome
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
