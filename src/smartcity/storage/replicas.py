"""Read replicas: which reads may go to a PostgreSQL streaming replica, and which replica.

Whether a read may lag is a property of the request, not of the SQL: the same
``EntityService.find`` serves a client's query (a second-old answer is fine) and a write's
own checks (which must see the latest state). So the layer that knows the request (the app,
hub/api/read_routing.py) declares it with ``lag_tolerant(...)``, a context variable that
follows the request into the thread pool, and ``Database.read()`` / ``snapshot()`` /
``fetch_*`` consult it in one place (storage/engine.py). Without a declaration (background
jobs, writes, sign-in sessions, API keys) every read stays on the primary, as do all writes.

Replica health is measured by a background probe (``ReplicaSet``), not per request: every
``probe_interval`` seconds it reads the primary's WAL position, then each replica's replay
position. A replica's lag is how long ago the primary had written WAL the replica has not
replayed yet, from the probe's own samples of the primary's position. Unlike
``now() - pg_last_xact_replay_timestamp()`` this does not grow while the primary is idle,
and unlike a distance in bytes it is a time an operator can bound.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("smartcity.replicas")


# -- which reads may lag ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReadPolicy:
    """A request's reads may be served by a replica that has replayed the WAL up to
    ``min_lsn`` (the position of the client's own last write; 0 when it sent none)."""

    min_lsn: int = 0


_policy: contextvars.ContextVar[ReadPolicy | None] = contextvars.ContextVar(
    "smartcity_read_policy", default=None
)


def current() -> ReadPolicy | None:
    """The policy of the running request's reads (None: the primary)."""
    return _policy.get()


@contextmanager
def lag_tolerant(min_lsn: int = 0) -> Iterator[None]:
    """Within the block, reads may go to a replica that has replayed up to ``min_lsn``."""
    token = _policy.set(ReadPolicy(min_lsn))
    try:
        yield
    finally:
        _policy.reset(token)


@contextmanager
def using(policy: ReadPolicy | None) -> Iterator[None]:
    """Within the block, reads follow ``policy`` (a batch run for several requests)."""
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


@contextmanager
def primary_only() -> Iterator[None]:
    """Within the block, reads go to the primary whatever the request declared: for reads
    that must see a write someone else just made (an API key created a second ago)."""
    token = _policy.set(None)
    try:
        yield
    finally:
        _policy.reset(token)


def strictest(policies: Iterable[ReadPolicy | None]) -> ReadPolicy | None:
    """The one policy that satisfies every request of a batch read together: the primary if
    any of them needs it, else the furthest position any of them asks for."""
    most = 0
    for policy in policies:
        if policy is None:
            return None
        most = max(most, policy.min_lsn)
    return ReadPolicy(most)


# -- WAL positions ----------------------------------------------------------------------------


def parse_lsn(text: str | None) -> int | None:
    """PostgreSQL's ``pg_lsn`` text (``16/B374D848``) as an integer; None if it is not one."""
    if not text or len(text) > 17:
        return None
    high, sep, low = text.strip().partition("/")
    if not sep:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


# -- the replicas and their probe -------------------------------------------------------------


class Target(Protocol):
    """What the probe needs of a database (storage.engine.Database)."""

    url: str

    def fetch_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None: ...

    def dispose(self) -> None: ...


PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
# pg_last_wal_replay_lsn() is NULL on a server that is not in recovery (a promoted replica).
REPLICA_POSITION = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"


@dataclass
class Replica:
    db: Any  # storage.engine.Database; Any to keep this module free of the engine
    name: str  # the URL without its password, for /healthz and logs
    state: str = "starting"  # starting | ok | lagging | down | not-a-replica
    lag: float | None = None  # seconds behind the primary, at the last probe
    replay_lsn: int = 0
    error: str | None = None
    since: float = 0.0  # time.time() of the last change of state

    def status(self) -> dict[str, Any]:
        return {
            "url": self.name,
            "state": self.state,
            "lag_seconds": None if self.lag is None else round(self.lag, 3),
            "replayed": format_lsn(self.replay_lsn) if self.replay_lsn else None,
            "since": self.since,
            **({"error": self.error} if self.error else {}),
        }


class ReplicaSet:
    """The replicas of one primary, their health (probed on a thread of their own) and the
    choice of one for a read."""

    def __init__(
        self,
        primary: Target,
        replicas: list[Replica],
        *,
        max_lag: float,
        probe_interval: float,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag = max_lag
        self.probe_interval = probe_interval
        self._turn = itertools.count()
        # (monotonic time, primary's WAL position) at each probe, kept long enough to date
        # any replica position within twice the bound: further behind is "lagging" anyway.
        self._samples: deque[tuple[float, int]] = deque()
        self._horizon = 2 * max_lag + 2 * probe_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- choosing --------------------------------------------------------------------------
    def pick(self, policy: ReadPolicy) -> Replica | None:
        """A healthy replica that has replayed up to the policy's position, taking turns;
        None sends the read to the primary. The position is the probe's (at most one
        interval old): a replica that has just caught up is used from the next probe on."""
        healthy = [r for r in self.replicas if r.state == "ok" and r.replay_lsn >= policy.min_lsn]
        if not healthy:
            return None
        return healthy[next(self._turn) % len(healthy)]

    def failed(self, replica: Replica, exc: BaseException) -> None:
        """A read on ``replica`` could not reach it: skip it until the probe finds it again
        (rather than letting every request meanwhile find out the same way)."""
        if replica.state != "down":
            log.warning("read replica %s is unreachable: %s", replica.name, exc)
            self._set(replica, "down", error=_short(exc))
            replica.db.dispose()  # its pooled connections are dead too

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.replicas]

    # -- probing ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="smartcity-replica-probe", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for replica in self.replicas:
            replica.db.dispose()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
            except Exception:  # a probe that fails must not end the probing
                log.exception("replica probe failed")
            self._stop.wait(self.probe_interval)

    def probe(self, now: Callable[[], float] = time.monotonic) -> None:
        """One round: the primary's position, then each replica's state and lag."""
        try:
            row = self.primary.fetch_one(PRIMARY_POSITION, ())
            primary_lsn = parse_lsn(row[0] if row else None)
        except Exception as exc:
            # Without the primary's position no lag can be dated; replicas keep their state
            # (reads on them still work while the primary restarts).
            log.warning("replica probe: primary unreachable: %s", _short(exc))
            return
        t = now()
        if primary_lsn is not None:
            self._samples.append((t, primary_lsn))
        while self._samples and self._samples[0][0] < t - self._horizon:
            self._samples.popleft()
        for replica in self.replicas:
            self._probe_one(replica, t)

    def _probe_one(self, replica: Replica, t: float) -> None:
        try:
            row = replica.db.fetch_one(REPLICA_POSITION, ())
        except Exception as exc:
            replica.lag = None
            if replica.state != "down":
                log.warning("read replica %s is down: %s", replica.name, _short(exc))
                self._set(replica, "down", error=_short(exc))
            replica.db.dispose()
            return
        in_recovery, replayed = (row or (False, None))[:2]
        lsn = parse_lsn(replayed)
        if not in_recovery or lsn is None:
            # Promoted (a failover) or not a standby at all: it no longer follows this
            # primary, so what it holds may be missing this primary's writes.
            replica.lag = None
            self._set(replica, "not-a-replica", error="not in recovery: not a streaming replica")
            return
        replica.replay_lsn = lsn
        replica.lag = self._lag(lsn, t)
        state = "ok" if replica.lag <= self.max_lag else "lagging"
        if state != replica.state:
            log.warning("read replica %s is %s (lag %.1f s)", replica.name, state, replica.lag)
        self._set(replica, state)

    def _lag(self, replayed: int, t: float) -> float:
        """How long ago the primary first held WAL beyond ``replayed`` (0: caught up)."""
        for sampled_at, position in self._samples:
            if position > replayed:
                return max(0.0, t - sampled_at)
        return 0.0

    @staticmethod
    def _set(replica: Replica, state: str, *, error: str | None = None) -> None:
        if state != replica.state:
            replica.since = time.time()
        replica.state = state
        replica.error = error


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
