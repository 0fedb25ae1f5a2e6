"""The batching writer: a bounded queue of readings drained by one thread, one transaction per
batch ("group commit").

Backpressure instead of unbounded memory: the queue holds at most ``capacity`` readings.
``offer`` with ``timeout=0`` fails at once when full (HTTP answers 503 + Retry-After); MQTT
offers with a wait, which stalls the MQTT network loop, so the broker stops sending (TCP
flow control and the session's in-flight window) until the writer catches up.

Each submission gets its outcome after its batch committed (or failed): HTTP answers then,
MQTT acknowledges then, so an accepted reading is always durable. A batch that fails with a
transient database error (locked, deadlock, connection lost) is retried with backoff; any
other failure is isolated by writing the batch's submissions one by one, so one bad
submission never takes good ones with it, and never stops the writer.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, OperationalError

from smartcity.hub.changes import Listeners
from smartcity.hub.service import EntityService
from smartcity.live.ingest.metrics import Metrics
from smartcity.live.ingest.readings import Reading
from smartcity.live.ingest.store import DUPLICATE, STALE, write_readings
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)

TRANSIENT_RETRIES = 8


@dataclass
class Outcome:
    statuses: list[str]  # per reading: written | stale | duplicate | error
    error: str | None = None
    retryable: bool = False  # a transient failure: the sender should try again later


@dataclass
class Submission:
    readings: list[Reading]
    done: Callable[[Outcome], None] = field(default=lambda _o: None)


class BatchWriter:
    def __init__(
        self,
        db: Database,
        entities: EntityService,
        metrics: Metrics,
        *,
        capacity: int = 50_000,
        max_batch: int = 5_000,
    ) -> None:
        self.db = db
        self.entities = entities
        self.metrics = metrics
        self.capacity = capacity
        self.max_batch = max_batch
        # Told the readings each batch wrote, once committed (benchmarks' probes).
        self.committed: Listeners[[Sequence[Reading], int]] = Listeners("ingestion committed")
        # Called in the writer's thread after each batch's submissions were told their outcome
        # (the MQTT subscriber sends its acknowledgements then, in one write).
        self.after_batch: Listeners[[]] = Listeners("after batch")
        self._queue: deque[Submission] = deque()
        self._pending = 0  # readings queued
        self._busy = False  # a batch is being written
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- producers -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._pending

    def offer(self, submission: Submission, timeout: float | None = 0) -> bool:
        """Queue a submission; False if the queue stayed full for ``timeout`` seconds (None:
        wait as long as it takes). A submission larger than the queue is taken when it is
        empty."""
        n = len(submission.readings)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending and self._pending + n > self.capacity and not self._stopping:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.metrics.add(overload=1)
                    return False
                self._cond.wait(remaining if remaining is not None else 1.0)
            if self._stopping:
                return False
            self._queue.append(submission)
            self._pending += n
            self._cond.notify_all()
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is committed (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _take(self) -> list[Submission]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait(1.0)
            batch: list[Submission] = []
            n = 0
            while self._queue and (not batch or n + len(self._queue[0].readings) <= self.max_batch):
                sub = self._queue.popleft()
                batch.append(sub)
                n += len(sub.readings)
            self._pending -= n
            self._busy = bool(batch)
            self._cond.notify_all()  # room for producers waiting in offer()
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self._stopping:
                    return
                continue
            # A batch allocates tens of thousands of short-lived objects while thousands of
            # queued readings are alive: the cyclic garbage collector would make many passes
            # over them meanwhile (profiled: ~25% of a batch). It is paused while a batch is
            # written and told, and runs between batches; nothing here makes cycles.
            paused = gc.isenabled()
            gc.disable()
            try:
                self._write(batch)
            except Exception:  # never let anything kill the writer
                log.exception("ingestion batch failed unexpectedly")
            finally:
                if paused:
                    gc.enable()
                self.after_batch.notify()
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # -- writing -------------------------------------------------------------------------------
    def _commit(self, readings: list[Reading]) -> tuple[list[str], int]:
        """One transaction through the hub's write pipeline: the hub's commit listeners
        (notifier, live views) are told as it commits, before the submissions are."""
        with self.entities.transaction() as tx:
            statuses = write_readings(tx, readings)
        return statuses, tx.now

    def _write(self, batch: list[Submission]) -> None:
        readings = [r for sub in batch for r in sub.readings]
        delay = 0.05
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                statuses, now = self._commit(readings)
                break
            except (OperationalError, DBAPIError) as exc:
                transient = isinstance(exc, OperationalError) or exc.connection_invalidated
                self.metrics.write_errors += 1
                if not transient:
                    return self._isolate(batch, exc)
                if attempt == TRANSIENT_RETRIES:
                    log.error("ingestion: database unavailable, giving up on a batch: %s", exc)
                    return self._fail(batch, "the database is unavailable", retryable=True)
                log.warning("ingestion: transient database error, retrying: %s", exc.orig)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                self.metrics.write_errors += 1
                return self._isolate(batch, exc)
        self._finish(batch, readings, statuses, now)

    def _isolate(self, batch: list[Submission], exc: Exception) -> None:
        if len(batch) == 1:
            log.error("ingestion: a submission could not be written: %r", exc, exc_info=exc)
            return self._fail(batch, "the readings could not be written", retryable=False)
        for sub in batch:  # write the submissions one by one; only the culprit fails
            self._write([sub])

    def _fail(self, batch: list[Submission], error: str, *, retryable: bool) -> None:
        for sub in batch:
            n = len(sub.readings)
            self.metrics.reject("write_error", n)
            _tell(sub, Outcome(["error"] * n, error, retryable))

    def _finish(
        self,
        batch: list[Submission],
        readings: list[Reading],
        statuses: list[str],
        now: int,
    ) -> None:
        duplicates = statuses.count(DUPLICATE)
        self.metrics.add_written(len(statuses) - duplicates, duplicates, statuses.count(STALE))
        start = 0
        for sub in batch:
            end = start + len(sub.readings)
            _tell(sub, Outcome(statuses[start:end]))
            start = end
        written = [r for r, s in zip(readings, statuses, strict=True) if s != DUPLICATE]
        self.committed.notify(written, now)


def _tell(sub: Submission, outcome: Outcome) -> None:
    try:
        sub.done(outcome)
    except Exception:
        log.exception("ingestion callback failed")
