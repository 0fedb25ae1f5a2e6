"""PostgreSQL reads on the event loop: one asynchronous driver connection per loop.

The hottest read (retrieve an entity by id) used to go to the thread pool, a batch at a
time, and through a pooled connection. Measured under wrk on two workers
(`scripts/cpu-per-request get`), the thread's share was 25–35 µs of CPU per retrieval (the
hop, the pool's checkout and return, the GIL handed back and forth) against 6–12 µs more on
the loop for psycopg's asynchronous connection, which waits for the answer as the loop waits
for a socket: 128–138 → 96–124 µs per retrieval in all, alternating runs (docs/performance.md).

One connection per event loop (a server has one loop per worker process), in autocommit, its
statements prepared on the server; one statement at a time on it (a lock: the callers batch
their keys anyway). A connection that fails is dropped and the next read opens another; a read
that fails on a connection opened before it is tried once more on a new one, because a server
restart or failover kills idle connections silently and a read is safe to repeat. The callers see
the driver's ``OperationalError``, which ``engine.database_unavailable`` recognises (503).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

# How these connections show in pg_stat_activity (an operator counting the hub's connections
# finds one per worker process beside the pool's).
LOOP_READS_APPLICATION = "smartcity loop reads"


class _Reader:
    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.conn: Any = None  # psycopg.AsyncConnection, opened on first use
        self.lock = asyncio.Lock()


class LoopReaders:
    """The event loops' read connections to one PostgreSQL database."""

    def __init__(self, conninfo: str, **connect_kwargs: Any) -> None:
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs
        self._readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reader] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()  # dispose() may come from another thread

    async def fetch_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of one read (``%s`` placeholders) on this loop's connection."""
        import psycopg

        loop = asyncio.get_running_loop()
        reader = self._readers.get(loop)
        if reader is None:
            with self._guard:
                reader = self._readers.setdefault(loop, _Reader())
        async with reader.lock:
            kept = reader.conn is not None
            try:
                return await self._read(reader, sql, params)
            except psycopg.OperationalError:
                if not kept:  # a connection opened for this read failed: an outage
                    raise
            return await self._read(reader, sql, params)  # once more, on a new connection

    async def _read(self, reader: _Reader, sql: str, params: tuple[Any, ...]) -> Any:
        import psycopg

        if reader.conn is None:
            reader.conn = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, **self.connect_kwargs
            )
        conn = reader.conn
        try:
            cursor = await conn.execute(sql, params, prepare=True)
            return [tuple(row) for row in await cursor.fetchall()]
        except psycopg.OperationalError:
            reader.conn = None  # the next read opens another
            await _close(conn)
            raise

    def close(self) -> None:
        """Close every loop's connection (without its loop: the socket is simply shut)."""
        with self._guard:
            readers = list(self._readers.values())
            self._readers.clear()
        for reader in readers:
            conn, reader.conn = reader.conn, None
            if conn is not None:
                conn.pgconn.finish()


async def _close(conn: Any) -> None:
    try:
        await conn.close()
    except Exception:  # it failed already; closing is only tidying up
        conn.pgconn.finish()
