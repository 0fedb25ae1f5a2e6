"""The outbox delivery loop, shared by entity notifications (``notifier.Notifier``) and
registration notifications (``federation.csub_notifier.CsubNotifier``).

A write owes a notification by inserting an outbox row in its own transaction. This loop
claims due rows, hands them, grouped by subscription, to a small pool of delivery threads,
deletes a row once delivered and updates the subscription's timesSent / timesFailed /
lastNotification / lastSuccess / lastFailure after every attempt. A subclass says how to load
a subscription and build its message (and may queue periodic notifications before a claim).

What is promised (docs/hub.md, "Delivery"):

* Nothing is dropped silently. A failed notification is retried with exponential back-off and
  jitter, capped at ``RetryPolicy.max_delay``, for as long as its subscription is active. The
  cap is what bounds how long a receiver that comes back waits for what it missed (a cap as
  long as the outage once made a receiver wait ten minutes more, until a restart).
* When the subscription has expired or been paused and the receiver still fails, the
  notification is given up but kept: ``failed_at`` is set, it is no longer retried, and it is
  listed and can be replayed or discarded through the API. Only deleting the subscription
  deletes what it is owed.
* A worker claims rows for a short lease (``next_attempt_at`` in the future, ``claimed_by``
  its id) and renews it from a separate thread while it delivers, however slow the receiver;
  a process that dies leaves its rows to the others once the lease runs out, within seconds.
  Every later change to a claimed row checks ``claimed_by``, so a worker that lost its lease
  (stalled longer than the lease) never undoes the new holder's work.
* ``notification.endpoint.cooldown``: after a failure, the subscription's next attempt waits
  at least that long (the back-off is the lower bound then).
* Order: a subscription whose oldest row is leased or backing off is skipped entirely, and
  one subscription's rows are delivered in order by one thread; a failure stops the group, so
  later notifications never overtake an earlier one being retried (a notification given up is
  set aside and no longer holds the others back). Delivery is at-least-once: a crash between
  sending and deleting sends it again, with the same notification id.
* On PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED``, so several processes never
  wait for or double-claim each other's rows; on SQLite the claim transaction is serialised
  (BEGIN IMMEDIATE), which is as safe, but SQLite is meant for one server process.

On startup, rows waiting out a retry delay (not claimed by anyone) are made due at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, or_, select, update

from smartcity.hub.subscriptions.model import Doc, cooldown_seconds, status_of
from smartcity.hub.subscriptions.senders import Message, Senders
from smartcity.hub.timeutil import now_us
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)

# One group is handed back after this long (the rest goes to the next claim), so that one
# busy subscription does not keep a delivery thread, or a shutdown, waiting.
GROUP_BUDGET_SECONDS = 60.0


@dataclass
class RetryPolicy:
    base_delay: float = 1.0  # seconds before the first retry
    max_delay: float = 60.0  # the cap: a failing notification is retried at least this often
    jitter: float = 0.5  # each delay is shortened by up to this fraction, at random

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        # The exponent is bounded: retries go on for days, and 2.0 ** 1100 overflows.
        raw = min(self.max_delay, self.base_delay * 2.0 ** min(max(0, attempts - 1), 60))
        # Jitter spreads retries of many notifications to one receiver that came back up.
        return raw * (1 - self.jitter * random.random())


class DeliveryMetrics:
    """This process's counters for one outbox (``GET /api/v1/notifications/metrics``)."""

    NAMES = ("delivered", "attemptsFailed", "failed", "takenOver")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def pending(conn: Connection, outbox: Table, tenant: str, sub_id: str) -> int:
    """How many of a subscription's notifications are still to deliver (or being retried);
    those kept as failed are set aside. A periodic notification waits while any is."""
    O = outbox  # noqa: E741
    return int(
        conn.execute(
            select(func.count())
            .select_from(O)
            .where(O.c.tenant == tenant, O.c.sub_id == sub_id, O.c.failed_at.is_(None))
        ).scalar_one()
    )


def claim_period(
    conn: Connection, subscriptions: Table, tenant: str, sub_id: str, last: int | None, now: int
) -> bool:
    """Whether this process queues a periodic subscription's next notification: a
    compare-and-set of its ``last_notification`` from ``last`` (as read) to ``now``; of
    several processes or nodes, one wins."""
    S = subscriptions
    column = S.c.last_notification
    return bool(
        conn.execute(
            update(S)
            .where(
                S.c.tenant == tenant,
                S.c.sub_id == sub_id,
                column.is_(None) if last is None else column == last,
            )
            .values(last_notification=now)
        ).rowcount
    )


def claim_window(
    conn: Connection, subscriptions: Table, tenant: str, sub_id: str, window_us: int, now: int
) -> bool:
    """Whether a throttled subscription may be notified now: a compare-and-set of its
    ``last_queued_at`` to ``now`` unless it lies within the last ``window_us``, in the write's
    own transaction. Of two nodes' writes inside one window, the second waits for the first's
    row lock, then finds the window taken; a write that rolls back takes nothing."""
    S = subscriptions
    since = now - window_us
    return bool(
        conn.execute(
            update(S)
            .where(
                S.c.tenant == tenant,
                S.c.sub_id == sub_id,
                or_(S.c.last_queued_at.is_(None), S.c.last_queued_at <= since),
            )
            .values(last_queued_at=now)
        ).rowcount
    )


def outbox_gauges(db: Database, outbox: Table) -> dict[str, int]:
    """What the outbox holds now, for every process: owed (``pending``), of which at least one
    attempt failed (``retrying``), and given up but kept (``failed``)."""
    with db.read() as conn:
        row = conn.execute(
            select(
                func.count().filter(outbox.c.failed_at.is_(None)),
                func.count().filter(outbox.c.failed_at.is_(None), outbox.c.attempts > 0),
                func.count().filter(outbox.c.failed_at.is_not(None)),
            )
        ).one()
    return {"pending": int(row[0]), "retrying": int(row[1]), "failed": int(row[2])}


class OutboxWorker:
    """Delivers one outbox table's rows; subclasses implement ``load`` and ``message``."""

    name = "outbox"  # in thread names and logs

    def __init__(
        self,
        db: Database,
        outbox: Table,
        subscriptions: Table,
        senders: Senders,
        *,
        retry: RetryPolicy | None = None,
        lease: float = 5.0,
        workers: int = 8,
        batch: int = 200,
        group_size: int = 20,
        idle_poll: float = 2.0,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.subscription_table = subscriptions
        self.senders = senders
        self.retry = retry or RetryPolicy()
        self.lease = lease
        self.workers = workers
        self.batch = batch
        self.group_size = group_size
        self.idle_poll = idle_poll
        self.worker_id = f"{self.name}-{uuid.uuid4().hex[:16]}"
        self.metrics = DeliveryMetrics()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_renewing = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewer: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        # (tenant, subscription id) -> the outbox rows one delivery thread holds for it
        self._inflight: dict[tuple[str, str], list[int]] = {}
        self._inflight_lock = threading.Lock()

    # -- what differs between entity and registration notifications ---------------------------
    def load(self, tenant: str, sub_id: str) -> Doc | None:
        """The subscription's stored document, or None once it is deleted."""
        raise NotImplementedError

    def message(self, tenant: str, sub: Doc, payload: Doc) -> Message:
        raise NotImplementedError

    def before_claim(self) -> None:
        """Runs before each claim, in the loop's thread (periodic notifications)."""

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._stop_renewing.clear()
        self._release_backoff()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"smartcity-{self.name}")
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"smartcity-{self.name}-lease", daemon=True
        )
        self._renewer.start()
        self._thread = threading.Thread(
            target=self._run, name=f"smartcity-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let deliveries in progress finish (each is bounded by its timeout);
        anything not delivered stays in the outbox for the next start or another process."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._stop_renewing.set()  # only now: deliveries finishing above still hold leases
        if self._renewer is not None:
            self._renewer.join(timeout)
            self._renewer = None
        self.senders.close()

    def wake(self) -> None:
        self._wake.set()

    def _release_backoff(self) -> None:
        now = now_us()
        O = self.outbox  # noqa: E741
        with self.db.write() as conn:
            conn.execute(
                update(O)
                .where(
                    O.c.failed_at.is_(None),
                    O.c.claimed_by.is_(None),
                    O.c.attempts > 0,
                    O.c.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                self.before_claim()
                claimed = self._dispatch()
            except Exception:  # the database may be briefly unavailable: keep going
                log.exception("%s delivery cycle failed", self.name)
            if claimed:
                continue  # there may be more due rows
            self._wake.wait(self._idle_time())

    def _idle_time(self) -> float:
        O = self.outbox  # noqa: E741
        try:
            with self.db.read() as conn:
                due = conn.execute(
                    select(func.min(O.c.next_attempt_at)).where(O.c.failed_at.is_(None))
                ).scalar()
        except Exception:
            return self.idle_poll
        if due is None:
            return self.idle_poll
        return min(self.idle_poll, max(0.01, (due - now_us()) / 1e6))

    # -- leases --------------------------------------------------------------------------------
    def _renew_loop(self) -> None:
        # A third of the lease: two renewals may fail (a busy database) before it runs out.
        while not self._stop_renewing.wait(self.lease / 3):
            try:
                self.renew()
            except Exception:
                log.exception("could not renew the %s lease", self.name)

    def renew(self) -> int:
        """Push the lease of every row this worker is delivering; how many it still holds."""
        with self._inflight_lock:
            oids = [oid for group in self._inflight.values() for oid in group]
        if not oids:
            return 0
        O = self.outbox  # noqa: E741
        with self.db.write() as conn:
            held = conn.execute(
                update(O)
                .where(O.c.oid.in_(oids), O.c.claimed_by == self.worker_id)
                .values(next_attempt_at=now_us() + int(self.lease * 1e6))
            ).rowcount
        return int(held)

    # -- claiming ------------------------------------------------------------------------------
    def _dispatch(self) -> int:
        with self._inflight_lock:
            free = self.workers - len(self._inflight)
            busy = set(self._inflight)
        if free <= 0 or self._pool is None:
            return 0
        groups = self.claim(free, busy)
        for group in groups:
            key = (group[0].tenant, group[0].sub_id)
            with self._inflight_lock:
                self._inflight[key] = [row.oid for row in group]
            future = self._pool.submit(self._deliver_group, group)
            future.add_done_callback(self._done(key, group))
        return sum(len(g) for g in groups)

    def _done(self, key: tuple[str, str], group: list[Any]) -> Any:
        def callback(future: Future[None]) -> None:
            with self._inflight_lock:
                self._inflight.pop(key, None)
            crashed = not future.cancelled() and future.exception() is not None
            if crashed:
                log.error("%s delivery crashed", self.name, exc_info=future.exception())
            if future.cancelled() or crashed:  # hand the rows back now, not at lease end
                try:
                    self._release(group)
                except Exception:
                    log.exception("could not release %s rows", self.name)
            self._wake.set()

        return callback

    def claim(self, free: int, busy: set[tuple[str, str]]) -> list[list[Any]]:
        """Lease up to ``free`` subscriptions' due rows (oldest first) to this worker."""
        now = now_us()
        O = self.outbox  # noqa: E741
        pending = O.c.failed_at.is_(None)
        with self.db.write() as conn:
            # A subscription with a row leased or backing off is blocked: its later rows wait.
            blocked = {
                (r.tenant, r.sub_id)
                for r in conn.execute(
                    select(O.c.tenant, O.c.sub_id)
                    .where(pending, O.c.next_attempt_at > now)
                    .distinct()
                )
            } | busy
            columns = (O.c.oid, O.c.tenant, O.c.sub_id, O.c.payload, O.c.attempts)
            stmt = select(*columns, O.c.last_error, O.c.claimed_by).where(
                pending, O.c.next_attempt_at <= now
            )
            blocked_ids = sorted({sub_id for _, sub_id in blocked})
            if blocked_ids and len(blocked_ids) <= 1000:
                # By id only (not tenant): may hold back a namesake briefly, never wrongly send.
                stmt = stmt.where(O.c.sub_id.not_in(blocked_ids))
            stmt = stmt.order_by(O.c.oid).limit(self.batch)
            if self.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            groups: dict[tuple[str, str], list[Any]] = {}
            for row in conn.execute(stmt):
                key = (row.tenant, row.sub_id)
                if key in blocked or (key not in groups and len(groups) >= free):
                    continue
                group = groups.setdefault(key, [])
                if len(group) < self.group_size:
                    group.append(row)
            rows = [row for group in groups.values() for row in group]
            if rows:
                conn.execute(
                    update(O)
                    .where(O.c.oid.in_([row.oid for row in rows]))
                    .values(next_attempt_at=now + int(self.lease * 1e6), claimed_by=self.worker_id)
                )
        orphans = [r for r in rows if r.claimed_by is not None and r.claimed_by != self.worker_id]
        if orphans:
            self.metrics.add("takenOver", len(orphans))
            log.warning(
                "took over %d %s notification(s) whose worker's lease ran out (%s)",
                len(orphans),
                self.name,
                ", ".join(sorted({r.claimed_by for r in orphans})),
            )
        return list(groups.values())

    # -- delivering ----------------------------------------------------------------------------
    def _deliver_group(self, rows: list[Any]) -> None:
        tenant, sub_id = rows[0].tenant, rows[0].sub_id
        sub = self.load(tenant, sub_id)
        if sub is None:  # deleted meanwhile: nothing is owed any more
            with self.db.write() as conn:
                oids = [r.oid for r in rows]
                conn.execute(delete(self.outbox).where(self.outbox.c.oid.in_(oids)))
            return
        started = time.monotonic()
        for index, row in enumerate(rows):
            if self._stopping.is_set() or time.monotonic() - started > GROUP_BUDGET_SECONDS:
                self._release(rows[index:])
                return
            status = status_of(sub, now_us())
            if row.attempts and status != "active":
                # Retries stop with the subscription; what the receiver never took is kept.
                self._give_up(sub, rows[index:], f"the subscription is {status}", error=None)
                return
            try:
                self.senders.send(self.message(tenant, sub, row.payload))
            except Exception as exc:
                self._failed(sub, row, rows[index + 1 :], str(exc) or type(exc).__name__)
                return
            self._succeeded(tenant, sub_id, row.oid)

    def _mine(self, oids: list[int]) -> Any:
        O = self.outbox  # noqa: E741
        return (O.c.oid.in_(oids)) & (O.c.claimed_by == self.worker_id)

    def _release(self, rows: list[Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(self.outbox)
                .where(self._mine([r.oid for r in rows]))
                .values(next_attempt_at=now_us(), claimed_by=None)
            )

    def _succeeded(self, tenant: str, sub_id: str, oid: int) -> None:
        now = now_us()
        with self.db.write() as conn:
            # Unconditional: even if another worker took the row over meanwhile, it is sent.
            conn.execute(delete(self.outbox).where(self.outbox.c.oid == oid))
            self._count(conn, tenant, sub_id, now, ok=True)
        self.metrics.add("delivered")

    def _failed(self, sub: Doc, row: Any, rest: list[Any], error: str) -> None:
        now = now_us()
        status = status_of(sub, now)
        if status != "active":
            self._give_up(sub, [row, *rest], f"the subscription is {status}", error=error)
            return
        attempts = row.attempts + 1
        # notification.endpoint.cooldown (clause 5.2.15): no attempt to the endpoint before it
        # has passed. What falls due meanwhile waits behind this row and goes after it, in
        # order: the hub never drops a notification silently.
        delay = max(self.retry.delay(attempts), cooldown_seconds(sub))
        log.info(
            "%s notification for subscription %s failed (attempt %d): %s",
            self.name,
            sub["id"],
            attempts,
            error,
        )
        with self.db.write() as conn:
            self._count(conn, row.tenant, row.sub_id, now, ok=False)
            conn.execute(
                update(self.outbox)
                .where(self._mine([row.oid]))
                .values(
                    attempts=attempts,
                    last_error=error[:2000],
                    last_attempt_at=now,
                    next_attempt_at=now + int(delay * 1e6),
                    claimed_by=None,
                )
            )
            if rest:  # due again, but held back behind the failed row (see claim)
                conn.execute(
                    update(self.outbox)
                    .where(self._mine([r.oid for r in rest]))
                    .values(next_attempt_at=now, claimed_by=None)
                )
        self.metrics.add("attemptsFailed")

    def _give_up(self, sub: Doc, rows: list[Any], reason: str, *, error: str | None) -> None:
        """Keep ``rows`` as failed. ``error``: the head was just attempted, and failed."""
        now = now_us()
        head = rows[0]
        with self.db.write() as conn:
            if error is not None:
                self._count(conn, head.tenant, head.sub_id, now, ok=False)
                conn.execute(
                    update(self.outbox)
                    .where(self._mine([head.oid]))
                    .values(
                        attempts=head.attempts + 1, last_error=error[:2000], last_attempt_at=now
                    )
                )
            kept = conn.execute(
                update(self.outbox)
                .where(self._mine([r.oid for r in rows]))
                .values(failed_at=now, failed_reason=reason, claimed_by=None)
            ).rowcount
        if error is not None:
            self.metrics.add("attemptsFailed")
        self.metrics.add("failed", kept)
        log.warning(
            "%d %s notification(s) for subscription %s kept as failed (%s; last error: %s); "
            "list or replay them at .../%s/failedNotifications",
            kept,
            self.name,
            sub["id"],
            reason,
            error or head.last_error,
            sub["id"],
        )

    def _count(self, conn: Connection, tenant: str, sub_id: str, now: int, *, ok: bool) -> None:
        S = self.subscription_table
        values: dict[str, Any] = {"times_sent": S.c.times_sent + 1, "last_notification": now}
        if ok:
            values["last_success"] = now
        else:
            values["times_failed"] = S.c.times_failed + 1
            values["last_failure"] = now
        conn.execute(update(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id).values(**values))
