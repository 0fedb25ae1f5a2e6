"""Periodic jobs that run once per cluster: leases in the ``cluster_leases`` table.

Every node of a cluster (``smartcity serve`` processes on one PostgreSQL database) registers
the same jobs (the silent-device sweep, ledger pruning, archive runs, periodic notifications,
...) with its ``Scheduler``. A job runs only on the node holding its lease, a row of
``cluster_leases``:

* A node takes a lease that is free or expired with one conditional UPDATE (``holder`` set to
  its id, ``expires_at`` ``lease`` seconds ahead), and renews it every ``lease / 3`` seconds
  from a thread of its own, whatever its jobs are doing: two renewals may fail (a busy or
  restarting database) before the lease runs out.
* Nodes not holding a lease try to take it every ``lease / 3`` seconds, so when its holder dies
  (SIGKILL, power, network) another node holds it within ``lease + lease / 3`` seconds (plus
  the nodes' clock difference, which NTP keeps far below a second). A node that stops cleanly
  gives its leases back at once.
* The period is the cluster's, not the node's: ``last_run_at`` is kept in the row, so a node
  that takes a job over runs it when it is due, not again at once.
* Why a table and not ``pg_try_advisory_lock`` on a held connection: the lock would be
  released only when PostgreSQL notices the dead connection (TCP keepalive, minutes to hours
  after a host vanishes), and the holder that lost its connection would not know. A lease
  expires at a known time, is the same idea as the notification outbox's claims
  (hub/subscriptions/outbox.py), and works on SQLite too.
* A job that stalls longer than the lease may overlap with its new holder once; every job
  registered here is written to be safe when run twice (a sweep, a prune, a snapshot that
  keeps a version only when it changed, a compare-and-set).

On SQLite (one machine, one server) the scheduler does not touch the table: every job runs
locally, as it always did (``Scheduler(db, shared=True)`` forces leases, for tests).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from smartcity.storage.engine import Database
from smartcity.storage.schema import cluster_leases

log = logging.getLogger(__name__)
L = cluster_leases.c

DEFAULT_LEASE_S = 15.0

Stop = Callable[[], None]


def _now_us() -> int:
    return time.time_ns() // 1000


def node_id() -> str:
    """This process's name in ``cluster_leases.holder``: host, pid and a random part (a pid
    is reused after a restart; the lease of the process before must not look like ours)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(eq=False)
class Job:
    name: str
    period_s: float
    run: Callable[[], object]
    delay_s: float  # before this node's first attempt (e.g. not during start-up)
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    held: bool = False  # this node holds the lease (as of the last acquire or renewal)
    last_run_at: int | None = None  # the cluster's last run, as read with the lease
    runs: int = 0  # runs on this node


@dataclass(frozen=True)
class LeaseRow:
    """A job's lease as the cluster sees it (``smartcity db jobs``)."""

    name: str
    holder: str | None  # None: free (given back, or never taken)
    expires_in_s: float | None  # seconds; negative: expired (its holder is gone)
    last_run_at: int | None  # microseconds since the epoch
    last_holder: str | None  # the node that ran it last
    runs: int


def lease_rows(db: Database) -> list[LeaseRow]:
    now = _now_us()
    with db.read() as conn:
        rows = conn.execute(select(cluster_leases).order_by(L.name)).all()
    return [
        LeaseRow(
            r.name,
            r.holder,
            (r.expires_at - now) / 1e6 if r.holder else None,
            r.last_run_at,
            r.last_holder,
            int(r.runs),
        )
        for r in rows
    ]


class Scheduler:
    """Runs registered jobs every ``period`` seconds, once per cluster (see the module
    docstring). ``every`` returns a handle that stops the job and gives its lease back."""

    def __init__(
        self,
        db: Database,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        shared: bool | None = None,
        node: str | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"the job lease must be positive (got {lease_s} s)")
        self.db = db
        self.lease_s = lease_s
        self.shared = db.is_postgres if shared is None else shared
        self.node = node or node_id()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def takeover_bound_s(self) -> float:
        """How long after its holder died a job's lease is held by another node, at most."""
        return self.lease_s + self.lease_s / 3

    # -- registering ---------------------------------------------------------------------------
    def every(
        self, name: str, period_s: float, run: Callable[[], object], *, delay_s: float = 0.0
    ) -> Stop:
        """Run ``run`` every ``period_s`` seconds on whichever node holds ``name``'s lease."""
        if period_s <= 0:
            raise ValueError(f"job {name!r}: the period must be positive (got {period_s} s)")
        job = Job(name, period_s, run, delay_s)
        with self._lock:
            if name in self._jobs:
                raise ValueError(f"job {name!r} is registered already")
            self._jobs[name] = job
            self._closing.clear()
            if self.shared and (self._renewer is None or not self._renewer.is_alive()):
                self._renewer = threading.Thread(
                    target=self._renew_loop, name="smartcity-leases", daemon=True
                )
                self._renewer.start()
        job.thread = threading.Thread(target=self._job_loop, args=(job,), name=f"job-{name}")
        job.thread.daemon = True
        job.thread.start()
        return lambda: self._stop_job(job)

    def holds(self, name: str) -> bool:
        """Whether this node runs ``name`` now (always, when jobs run locally): for work done
        in a loop of its own that only the lease holder should do."""
        if not self.shared:
            return True
        with self._lock:
            job = self._jobs.get(name)
        return job is not None and job.held

    def jobs(self) -> dict[str, dict[str, object]]:
        """This node's view of its jobs (for /healthz and logs)."""
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            j.name: {"held": j.held or not self.shared, "runs": j.runs, "period": j.period_s}
            for j in jobs
        }

    def close(self) -> None:
        """Stop every job and give their leases back."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._stop_job(job)
        self._closing.set()
        if self._renewer is not None:
            self._renewer.join(5)
            self._renewer = None

    def _stop_job(self, job: Job) -> None:
        job.stop_event.set()
        if job.thread is not None and job.thread is not threading.current_thread():
            job.thread.join(30)  # a run in progress finishes (each job's run is bounded)
        with self._lock:
            if self._jobs.get(job.name) is job:
                del self._jobs[job.name]
        if self.shared and job.held:
            job.held = False
            try:
                self._release(job.name)
            except Exception:  # the lease then runs out by itself
                log.warning("could not give the %s lease back", job.name, exc_info=True)

    # -- the job's thread ----------------------------------------------------------------------
    def _job_loop(self, job: Job) -> None:
        if job.stop_event.wait(job.delay_s):
            return
        retry = self.lease_s / 3
        while not job.stop_event.is_set():
            wait = job.period_s
            try:
                wait = self._step(job, retry)
            except Exception:  # the database may be briefly away: try again soon
                log.exception("scheduled job %s failed", job.name)
                wait = min(job.period_s, retry) if self.shared else job.period_s
            if job.stop_event.wait(max(0.01, wait)):
                return

    def _step(self, job: Job, retry: float) -> float:
        """One look at the job: take or keep the lease, run it if due; seconds to the next."""
        if not self.shared:
            self._run(job)
            return job.period_s
        job.held, job.last_run_at = self._acquire(job.name)
        if not job.held:
            return retry  # someone else runs it; be ready to take over
        now = _now_us()
        due = (job.last_run_at or 0) + int(job.period_s * 1e6)
        if now < due:
            return min(retry, (due - now) / 1e6)
        self._run(job)
        self._record_run(job.name, now)
        return min(retry, job.period_s)

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        job.run()
        job.runs += 1
        log.debug("job %s ran on %s in %.3f s", job.name, self.node, time.monotonic() - started)

    # -- the lease rows ------------------------------------------------------------------------
    def _insert_ignore(self, name: str) -> None:
        dialect = postgresql if self.db.is_postgres else sqlite
        with self.db.write() as conn:
            conn.execute(
                dialect.insert(cluster_leases)
                .values(name=name, holder=None, expires_at=0, runs=0)
                .on_conflict_do_nothing(index_elements=["name"])
            )

    def _acquire(self, name: str) -> tuple[bool, int | None]:
        """Take or renew ``name``'s lease if it is free, expired or ours."""
        for _ in range(2):
            now = _now_us()
            with self.db.write() as conn:
                taken = conn.execute(
                    update(cluster_leases)
                    .where(
                        L.name == name,
                        (L.holder == self.node) | L.holder.is_(None) | (L.expires_at < now),
                    )
                    .values(holder=self.node, expires_at=now + int(self.lease_s * 1e6))
                    .returning(L.holder, L.last_run_at, L.expires_at)
                ).first()
                if taken is not None:
                    return True, taken.last_run_at
                exists = conn.execute(select(L.name).where(L.name == name)).first()
            if exists is not None:
                return False, None
            self._insert_ignore(name)  # the job's first run anywhere
        return False, None

    def _record_run(self, name: str, started: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(cluster_leases)
                .where(L.name == name, L.holder == self.node)
                .values(last_run_at=started, runs=L.runs + 1, last_holder=self.node)
            )

    def _release(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(cluster_leases)
                .where(L.name == name, L.holder == self.node)
                .values(holder=None, expires_at=0)
            )

    def _renew_loop(self) -> None:
        # A third of the lease: two renewals may fail before it runs out.
        while not self._closing.wait(self.lease_s / 3):
            with self._lock:
                held = [j for j in self._jobs.values() if j.held]
            if not held:
                continue
            try:
                now = _now_us()
                with self.db.write() as conn:
                    kept = {
                        row.name
                        for row in conn.execute(
                            update(cluster_leases)
                            .where(
                                L.name.in_([j.name for j in held]),
                                L.holder == self.node,
                            )
                            .values(expires_at=now + int(self.lease_s * 1e6))
                            .returning(L.name)
                        )
                    }
            except Exception:
                log.warning("could not renew this node's job leases", exc_info=True)
                continue
            for job in held:
                if job.name not in kept:  # taken over while this node stalled
                    log.warning("lost the %s lease to another node", job.name)
                    job.held = False
