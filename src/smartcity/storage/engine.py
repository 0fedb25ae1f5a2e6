"""Database engines for the two backends, tuned once here so every caller gets the same setup."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.pool import QueuePool

from smartcity.storage import replicas, writer_lock
from smartcity.storage.checkpoint import BACKSTOP_PAGES, WalCheckpointer
from smartcity.storage.loop_reads import LOOP_READS_APPLICATION, LoopReaders

# SQLite calls a bounded read's progress handler every this many virtual-machine steps: about
# every 1-10 ms of work (7 million steps/s measured on JSON-heavy q queries), so a deadline is
# overshot by milliseconds while the handler (which must take the GIL) costs nothing measurable.
PROGRESS_STEPS = 50_000
CONNECT_TIMEOUT_S = 5
# A replica that does not answer is skipped (its reads go to the primary), so waiting long
# for it only delays the read that found out.
REPLICA_CONNECT_TIMEOUT_S = 2


# Rows sampled per index by SQLite's ANALYZE (refresh_statistics): enough for the planner to
# tell a table of 100 rows from one of 100,000, in milliseconds rather than a full pass.
SQLITE_ANALYSIS_LIMIT = 1000


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or went away (restart,
    failover, connection lost, pool exhausted, SQLite busy) rather than a bad statement: a
    request failing so is worth retrying later (503 + Retry-After)."""
    if isinstance(exc, SATimeoutError):  # no pooled connection free within the pool timeout
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        return not _cancelled(exc)  # a statement stopped for its budget is not an outage
    # The driver's own, from the reads that bypass SQLAlchemy (fetch_all, fetch_all_async).
    return type(exc).__module__.startswith("psycopg") and _driver_unavailable(exc)


class QueryTimeout(Exception):
    """A bounded read (``Database.read(budget=...)``) ran past its budget and was stopped."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"the statement ran longer than {budget:g} s and was cancelled")
        self.budget = budget


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# psycopg converts each query's %s placeholders to PostgreSQL's $n with a regular expression,
# and keeps the conversion (and prepares the statement) only for queries of at most 4,096
# characters. An entity query with a q (hub/query/qsql.py) compiles to ~5,000: converting it
# anew cost ~0.4 ms of a ~1.3 ms query (cProfile, 2026-12-07). The limit is a module constant
# of psycopg's, read at each call; raised here, and left alone if a later psycopg drops it.
# psycopg's cache holds at most 128 queries: a few MB at most with this limit.
PSYCOPG_CACHED_QUERY_CHARS = 32_768


def _keep_long_queries() -> None:
    try:
        from psycopg import _queries
    except ImportError:
        return
    limit = getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", None)
    if isinstance(limit, int) and limit < PSYCOPG_CACHED_QUERY_CHARS:
        _queries.MAX_CACHED_STATEMENT_LENGTH = PSYCOPG_CACHED_QUERY_CHARS


def normalise_url(url: str) -> str:
    """Accept the URLs people type (``postgresql://``) and pick the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Database:
    """An engine plus the few things that differ between SQLite and PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        pre_ping: bool = False,
        connect_timeout: int = CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.is_postgres = self.url.startswith("postgresql")
        if not (self.is_sqlite or self.is_postgres):
            raise ValueError(
                f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
            )
        kwargs: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["poolclass"] = QueuePool
            kwargs["pool_size"] = pool_size
        else:
            _keep_long_queries()
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # No pre-ping: it costs a round trip per request; a connection the server dropped
            # fails once, is invalidated by SQLAlchemy, and the pool reconnects.
            kwargs["pool_recycle"] = 3600
            # PostgreSQL estimates 100 rows for every jsonb_array_elements(), so q-queries look
            # expensive and JIT compilation (~0.5 s) would dwarf queries that take 0.1 ms.
            # connect_timeout: a database host that does not answer (network, failover) fails
            # a request in seconds (503, hub/errors.py) instead of holding it.
            kwargs["connect_args"] = {"options": "-c jit=off", "connect_timeout": connect_timeout}
            # Replicas ping (storage/replicas.py): one stopped or restarted is expected, and a
            # dead pooled connection found at checkout can still send the read elsewhere.
            kwargs["pool_pre_ping"] = pre_ping
        self.engine: Engine = create_engine(self.url, **kwargs)
        # Reads run in autocommit on PostgreSQL: a single SELECT needs no BEGIN/ROLLBACK
        # round trips (psycopg switches autocommit client-side). Each statement still sees a
        # consistent snapshot.
        self._read_engine: Engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.is_postgres
            else self.engine
        )
        # SQLite allows one writer at a time; serialising writers in-process avoids the
        # busy-wait/retry storms SQLite's own locking produces under a thread pool.
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._checkpointer: WalCheckpointer | None = None
        # Between processes and between this file's Databases (storage/writer_lock.py).
        self._writer_lock: writer_lock.WriterLock | None = None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
            path = self.engine.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                self._checkpointer = WalCheckpointer(path)
                self._writer_lock = writer_lock.for_path(path)
        self._has_postgis: bool | None = None
        self._setups: list[Callable[[Any], None]] = []
        self._pg_sql: dict[str, str] = {}
        # SQLite's hottest reads (``fetch_all``) run on a connection each thread keeps out of
        # the pool: the pool's checkout and return cost more than the SELECT (~25 of ~40 µs).
        # ``_generation`` changes when connections must be reopened (``prepare_connection``);
        # ``_held`` is every such connection, closed by ``dispose``.
        self._readers = threading.local()
        self._generation = 0
        self._held: list[Any] = []
        # PostgreSQL's reads from the event loop (``fetch_all_async``): a connection per loop.
        self._loop_readers: LoopReaders | None = None
        if self.is_postgres:
            self._loop_readers = LoopReaders(
                self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                options="-c jit=off",
                connect_timeout=connect_timeout,
                application_name=LOOP_READS_APPLICATION,
            )
        self._held_lock = threading.Lock()
        # Streaming replicas for reads that tolerate a short lag (use_replicas); None on
        # SQLite and on a PostgreSQL without them: every read on this database then.
        self._replicas: replicas.ReplicaSet | None = None

    # -- read replicas (storage/replicas.py) ---------------------------------------------------
    def use_replicas(self, urls: list[str], *, max_lag: float, probe_interval: float) -> None:
        """Send the reads a request declares lag-tolerant (``replicas.lag_tolerant``) to these
        streaming replicas of this database while they are healthy, and start their probe."""
        if not self.is_postgres:
            raise ValueError("read replicas need a PostgreSQL primary (--database postgresql://)")
        members = []
        for url in urls:
            db = Database(
                url, pool_size=4, pre_ping=True, connect_timeout=REPLICA_CONNECT_TIMEOUT_S
            )
            if not db.is_postgres:
                raise ValueError(f"a read replica must be PostgreSQL, not {url!r}")
            for setup in self._setups:
                db.prepare_connection(setup)
            name = db.engine.url.render_as_string(hide_password=True)
            members.append(replicas.Replica(db=db, name=name))
        self._replicas = replicas.ReplicaSet(
            self, members, max_lag=max_lag, probe_interval=probe_interval
        )
        self._replicas.start()

    def replica_status(self) -> list[dict[str, Any]] | None:
        """Each replica's state and lag (for /healthz); None without replicas."""
        return None if self._replicas is None else self._replicas.status()

    @property
    def has_replicas(self) -> bool:
        return self._replicas is not None

    def current_lsn(self) -> str | None:
        """The primary's WAL position now (after a write: at or past its commit), which a
        client sends back so that its next reads see that write (read-your-writes)."""
        if not self.is_postgres:
            return None
        with replicas.primary_only():
            row = self.fetch_one(replicas.PRIMARY_POSITION, ())
        return str(row[0]) if row else None

    def _replica(self) -> replicas.Replica | None:
        """The replica this read may use, or None for the primary. Costs one context-variable
        lookup when there are no replicas or the request did not declare its reads lag-tolerant."""
        if self._replicas is None:
            return None
        policy = replicas.current()
        if policy is None:
            return None
        return self._replicas.pick(policy)

    @contextmanager
    def _routed(
        self, open_on: Callable[[Database], AbstractContextManager[Connection]]
    ) -> Iterator[Connection]:
        """A read connection on a replica when the request allows one, else on the primary. A
        replica that cannot be reached at checkout is marked down and the read goes to the
        primary; one lost during the read fails this read (it cannot be run twice from here)
        and is marked down, so the reads after it go elsewhere."""
        replica = self._replica()
        with ExitStack() as stack:
            conn: Connection | None = None
            if replica is not None:
                try:
                    conn = stack.enter_context(open_on(replica.db))
                except (DBAPIError, SATimeoutError) as exc:
                    if not database_unavailable(exc):
                        raise
                    assert self._replicas is not None
                    self._replicas.failed(replica, exc)
                    replica = None
            if conn is None:
                conn = stack.enter_context(open_on(self))
            try:
                yield conn
            except (DBAPIError, SATimeoutError) as exc:
                if replica is not None and self._replicas and database_unavailable(exc):
                    self._replicas.failed(replica, exc)
                raise

    def prepare_connection(self, setup: Callable[[Any], None]) -> None:
        """Run ``setup(dbapi_connection)`` on every connection of this database (Datasette's
        ``prepare_connection`` hook): how the layers above add what their SQL needs (the hub's
        SQLite functions for the q language) without storage importing them. Connections
        already pooled were opened without it, so the pool is emptied once."""
        if setup in self._setups:
            return
        self._setups.append(setup)
        event.listen(self.engine, "connect", lambda dbapi_conn, _record: setup(dbapi_conn))
        self.engine.dispose()
        self._generation += 1  # the threads' reader connections too

    def fetch_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a read, straight through the driver (``?`` placeholders).

        For the hottest reads (retrieve an entity by id): a SQLAlchemy ``Connection`` costs
        about ten times the SELECT itself (events, transaction bookkeeping, result processing:
        ~390 µs against ~40 µs per retrieval, profiled with the pool's raw connection), so
        these take a pooled driver connection and run the statement in autocommit."""
        rows = self.fetch_all(sql, params, one=True)
        return rows[0] if rows else None

    def fetch_all(
        self, sql: str, params: tuple[Any, ...], *, one: bool = False
    ) -> list[tuple[Any, ...]]:
        """The rows of a read, straight through the driver (see ``fetch_one``)."""
        replica = self._replica()
        if replica is not None:
            try:
                return replica.db.fetch_all(sql, params, one=one)
            except Exception as exc:
                if not (database_unavailable(exc) or _driver_unavailable(exc)):
                    raise
                # A read is safe to run again: on the primary, once the replica is skipped.
                assert self._replicas is not None
                self._replicas.failed(replica, exc)
        if self.is_postgres:
            sql = self._pg_sql.get(sql) or self._pg_sql.setdefault(sql, sql.replace("?", "%s"))
        if self.is_sqlite:
            # fetchall: the statement runs to its end, so no read transaction stays open on
            # the kept connection (it would hold back WAL checkpoints).
            return [tuple(row) for row in self._sqlite_reader().execute(sql, params).fetchall()]
        raw = self.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            driver.autocommit = True  # one statement: no BEGIN/ROLLBACK round trips
            try:
                cursor = driver.execute(sql, params)
                rows = [cursor.fetchone()] if one else cursor.fetchall()
            finally:
                driver.autocommit = False
        finally:
            raw.close()  # back to the pool
        return [tuple(row) for row in rows if row is not None]

    async def fetch_all_async(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """``fetch_all`` from the event loop. PostgreSQL reads run on the loop's own
        connection (storage/loop_reads.py), without the thread pool, unless the request may
        read from a replica (that routing stays with ``fetch_all``, in a thread). SQLite reads
        take tens of microseconds, less than any hop: they run as they are. Plain SELECTs
        only: the loop's connections do not run the ``prepare_connection`` setups."""
        if self._loop_readers is None:
            return self.fetch_all(sql, params)
        if self._replica() is not None:
            return await asyncio.to_thread(self.fetch_all, sql, params)
        sql = self._pg_sql.get(sql) or self._pg_sql.setdefault(sql, sql.replace("?", "%s"))
        return await self._loop_readers.fetch_all(sql, params)

    def _sqlite_reader(self) -> Any:
        """This thread's SQLite connection for ``fetch_all`` (autocommit: each SELECT sees the
        latest commit, as a pooled one would). Opened through the pool, so it is set up as
        every connection is (pragmas, ``prepare_connection``), then detached from it."""
        held = getattr(self._readers, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        raw = self.engine.raw_connection()
        driver = raw.driver_connection
        raw.detach()
        with self._held_lock:
            if held is not None and held[2] in self._held:  # before prepare_connection
                self._held.remove(held[2])
                held[2].close()
            self._held.append(raw)
        self._readers.held = (self._generation, driver, raw)
        return driver

    @contextmanager
    def read(self, *, budget: float | None = None) -> Iterator[Connection]:
        """A connection for reads. With a ``budget`` (seconds), a statement that runs past it
        is cancelled and :class:`QueryTimeout` raised (see ``_bounded``): for reads whose cost
        the client controls. On a replica when the request allows it (storage/replicas.py)."""
        if self._replicas is not None:
            with self._routed(lambda db: db._read_here(budget)) as conn:
                yield conn
            return
        with self._read_here(budget) as conn:
            yield conn

    @contextmanager
    def _read_here(self, budget: float | None) -> Iterator[Connection]:
        if budget is not None:
            with self._bounded(budget) as conn:
                yield conn
            return
        with self._read_engine.connect() as conn:
            yield conn

    @contextmanager
    def snapshot(self, *, budget: float | None = None) -> Iterator[Connection]:
        """A read-only transaction: several statements see one snapshot (a page and its
        count), and server-side cursors work on PostgreSQL. ``budget`` and replicas as for
        ``read``."""
        if self._replicas is not None:
            with self._routed(lambda db: db._snapshot_here(budget)) as conn:
                yield conn
            return
        with self._snapshot_here(budget) as conn:
            yield conn

    @contextmanager
    def _snapshot_here(self, budget: float | None) -> Iterator[Connection]:
        if budget is not None:
            with self._bounded(budget) as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _bounded(self, budget: float) -> Iterator[Connection]:
        """A read transaction whose statements stop ``budget`` seconds after it starts.

        PostgreSQL: ``SET LOCAL statement_timeout`` (each statement gets the whole budget;
        the transaction ends with the block, and with it the setting). SQLite: a progress
        handler that interrupts the running statement once the deadline has passed (installed
        for this block only, so other reads pay nothing)."""
        with self.engine.connect() as conn:
            driver: Any = None
            try:
                if self.is_postgres:
                    millis = max(1, round(budget * 1000))  # 0 would mean "no limit"
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
                else:
                    deadline = time.monotonic() + budget
                    driver = conn.connection.driver_connection
                    driver.set_progress_handler(
                        lambda: 1 if time.monotonic() > deadline else 0, PROGRESS_STEPS
                    )
                yield conn
            except OperationalError as exc:
                if _cancelled(exc):
                    raise QueryTimeout(budget) from exc
                raise
            finally:
                if driver is not None:
                    driver.set_progress_handler(None, 0)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_lock is not None:
            between = self._writer_lock.held() if self._writer_lock is not None else nullcontext()
            with self._write_lock, between, self.engine.connect() as conn:
                # Take the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
                # later needs to write fails at once with SQLITE_BUSY if another process writes.
                conn.info["sqlite_immediate"] = True
                try:
                    with conn.begin():
                        yield conn
                finally:
                    conn.info.pop("sqlite_immediate", None)
            if self._checkpointer is not None:
                self._checkpointer.notify()
        else:
            with self.engine.begin() as conn:
                yield conn

    def refresh_statistics(self) -> None:
        """Give SQLite's planner statistics (``ANALYZE``), as PostgreSQL's autovacuum does for
        it. Without them SQLite guesses every table's size and, for a search's words, walked
        all 10,000 datasets probing each in the tokens' lists instead of starting from the
        smaller side. ``analysis_limit`` samples about that many rows per index, so a
        database of any size takes a fraction of a second. Run at server start (``smartcity
        serve``) and after ``smartcity db upgrade``, not per ``Database``: tests make many."""
        if self.is_postgres:
            return  # autovacuum keeps PostgreSQL's statistics
        with self.write() as conn:
            conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            conn.exec_driver_sql("ANALYZE")

    @property
    def has_postgis(self) -> bool:
        if self._has_postgis is None:
            if not self.is_postgres:
                self._has_postgis = False
            else:
                from sqlalchemy import text

                with self.read() as conn:
                    self._has_postgis = bool(
                        conn.execute(
                            text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
                        ).scalar()
                    )
        return self._has_postgis

    def dispose(self) -> None:
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._held_lock:
            for raw in self._held:
                raw.close()
            self._held.clear()
        self._generation += 1
        if self._loop_readers is not None:
            self._loop_readers.close()
        self.engine.dispose()


def _driver_unavailable(exc: BaseException) -> bool:
    """``database_unavailable`` for the driver's own exceptions (``fetch_all`` talks to psycopg
    directly): the connection failed or was lost, not a statement stopped for its budget."""
    import psycopg

    return isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) != "57014"


def _cancelled(exc: OperationalError) -> bool:
    """Whether the database stopped a statement for its budget: PostgreSQL's query_canceled
    (57014, which statement_timeout raises) or SQLite's "interrupted"."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "57014":
        return True
    return type(orig).__module__ == "sqlite3" and str(orig) == "interrupted"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash or power loss
    # can lose the last transactions. FULL would halve write throughput.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    # Checkpoints run on their own thread (storage.checkpoint); a commit checkpoints by
    # itself only once the log is this large.
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("sqlite_immediate") else "BEGIN")
