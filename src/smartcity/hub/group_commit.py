"""Group commit: single-entity writes that arrive together share one transaction.

A transaction's fixed costs — taking the write lock, BEGIN, COMMIT (on PostgreSQL a WAL flush
that waits for the disk), the history's per-transaction lookups, waking the threads that wait —
cost more than the change itself when a request changes one attribute. Under load, writes
therefore wait for the one in progress anyway; this lets the next transaction take all of them.

Two doors lead in. Threads (``GroupCommit.submit``) use *flat combining*: every writer queues
its item and takes the combiner lock; whoever gets it runs everything queued so far in one
batch, and the writers whose items that batch carried find them done when they get the lock
in turn. A write that arrives alone runs alone, at once
(no timer, no added latency); batches grow only as far as writes queue up behind one another.
The server's requests (``AsyncBatcher.submit``, on the event loop) queue on the loop and
go to the thread pool a batch at a time: one thread hop per batch rather than per request
(the hop and the lock hand-offs were most of a partial update's cost, profiled with py-spy).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
R = TypeVar("R")

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


class _LoopQueue(Generic[T, R]):
    __slots__ = ("pending", "running", "task")

    def __init__(self) -> None:
        self.pending: list[tuple[T, asyncio.Future[R]]] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None  # held: the loop keeps only weak ones


class AsyncBatcher(Generic[T, R]):
    """``await submit(item)`` from the event loop: items queued while a batch is in the thread
    pool go together in the next one. ``run(items)`` returns one result per item, in order, or
    the exception for that item alone. Serves group commit (results None) and batched reads.
    With ``on_loop``, ``run`` is a coroutine function awaited on the loop itself (reads that
    wait on the loop's own connection, storage/loop_reads.py): no thread, the same batching."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], Sequence[R | BaseException]]
        | Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        on_loop: bool = False,
    ) -> None:
        self._run = run
        self._on_loop = on_loop
        # One queue per event loop (a server has one per worker; tests start several).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        done: asyncio.Future[R] = loop.create_future()
        queue.pending.append((item, done))
        if not queue.running:
            queue.running = True
            queue.task = loop.create_task(self._drain(queue))
        return await done

    async def _drain(self, queue: _LoopQueue[T, R]) -> None:
        try:
            while queue.pending:
                batch, queue.pending = queue.pending, []
                outcomes: Sequence[R | BaseException]
                items = [item for item, _ in batch]
                try:
                    if self._on_loop:
                        outcomes = await self._run(items)  # type: ignore[misc]
                    else:
                        outcomes = await run_in_threadpool(self._run, items)  # type: ignore[arg-type]
                except BaseException as exc:
                    outcomes = [exc] * len(batch)
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():  # the request went away
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            queue.running = False
