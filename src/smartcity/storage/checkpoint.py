"""SQLite's write-ahead log copied into the database file on a thread of its own.

SQLite runs a checkpoint inside the commit that takes the log past ``wal_autocheckpoint``
pages, so whichever writer commits then pays for copying everybody's pages into the database
file: 11 % of the ingestion writer's time (py-spy --native: ``sqlite3WalDefaultHook``). A
PASSIVE checkpoint from another connection runs beside the writers (SQLite allows one
checkpointer next to one writer, and the sqlite3 module releases the GIL while it works), so
that work moves to the machine's other core. The commit's own checkpoint stays as a backstop,
at a larger log (``BACKSTOP_PAGES``), should this thread ever fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000  # ~40 MB of log before a commit checkpoints by itself
INTERVAL_S = 0.25  # at most four checkpoints a second


class WalCheckpointer:
    """Checkpoints ``path`` after writes (``notify``), at most every ``INTERVAL_S``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.checkpoints = 0

    def notify(self) -> None:
        """A write committed: checkpoint soon (starts the thread on first use)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._dirty.set()

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no background checkpoints for %s: %s", self.path, exc)
            return
        try:
            while True:
                self._dirty.wait()
                if self._stop.is_set():
                    return
                self._dirty.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # e.g. the file was removed; writers carry on
                    log.warning("background checkpoint of %s failed: %s", self.path, exc)
                if self._stop.wait(INTERVAL_S):
                    return
        finally:
            conn.close()
