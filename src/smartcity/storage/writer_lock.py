"""SQLite's one writer, handed from process to process by a file lock tried every millisecond.

SQLite lets one connection write at a time. A writer that finds the database locked by another
process waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50,
100 ms in turn, trying again after each sleep. The lock is usually free again within a few
milliseconds, so the waiter oversleeps, while the process that held it, whose next write is
already queued, takes it again at once. With `smartcity serve --workers 2` that was a partial
update's p99 of 100–470 ms. An exclusive ``flock`` on a file beside the database, taken before
SQLite's own lock, is tried again at most a millisecond apart (``PAUSES_S``), so the waiting
process takes it within a millisecond of the holder letting go, and gives up after ``WAIT_S``
as SQLite's busy handler would. SQLite's own locking still guards everything: a process that
writes without this lock (an older version, the sqlite3 shell) is waited for as before.

The lock is a file of its own (``<database>-writer.lock``), never the database: SQLite's POSIX
locks on a file are dropped when the process closes any descriptor of that file. One lock per
file per process (``for_path``): ``flock`` belongs to an open file, so threads of one process
take turns on a ``threading.RLock`` first, and a thread already holding it (a write inside a
write, through a second ``Database`` of the same file) does not take the file lock again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler alone, as before
    fcntl = None  # type: ignore[assignment]

# As long as SQLite's own busy timeout (engine.py): a write that waits longer fails as it did.
WAIT_S = 30.0
# A waiting process tries the file lock again after these pauses (then every last one), so it
# takes the lock at most a millisecond after it is let go. A blocking ``flock`` would wake it at
# once but could not be given up: a process stuck inside a write (a hung disk, a debugger) would
# hang every other writer with it instead of their failing after WAIT_S.
PAUSES_S = (0.00005, 0.0001, 0.0002, 0.0005, 0.001)


class WriterLock:
    """The exclusive right to write ``path``, between this process's threads and between
    processes. Obtain it with ``for_path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0  # how deeply the holding thread has entered
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._threads.acquire(timeout=WAIT_S):
            raise OperationalError(
                "BEGIN IMMEDIATE", {}, Exception(f"database is locked (waited {WAIT_S:.0f} s)")
            )
        try:
            self._depth += 1
            fd = self._descriptor() if self._depth == 1 else None
            if fd is not None:
                _take(fd)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._threads.release()

    def _descriptor(self) -> int | None:
        """The lock file, opened once per process (a forked child opens its own)."""
        if fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(
                    self.path + "-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            except OSError:  # e.g. a read-only directory: SQLite's busy handler, as before
                return None
            self._pid = os.getpid()
        return self._fd


def _take(fd: int) -> None:
    """The file lock on ``fd``, waited for at most WAIT_S."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + WAIT_S
    tries = 0
    while True:
        time.sleep(PAUSES_S[min(tries, len(PAUSES_S) - 1)])
        tries += 1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OperationalError(
                    "BEGIN IMMEDIATE",
                    {},
                    Exception(
                        f"database is locked (another process has been writing for over "
                        f"{WAIT_S:.0f} s)"
                    ),
                ) from None


_locks: dict[str, WriterLock] = {}
_registry = threading.Lock()


def for_path(path: str) -> WriterLock:
    """This process's lock for the SQLite database at ``path`` (the same one for every
    ``Database`` of that file)."""
    key = os.path.realpath(path)
    with _registry:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = WriterLock(key)
        return lock
