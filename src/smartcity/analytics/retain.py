"""``smartcity history retain --keep 400d --archive DIR``: old months of history out of the
database into Parquet, nothing lost.

Every whole UTC month that ended before ``now - keep`` is written to ``DIR`` in the layout of
``smartcity history export`` (``type=<entity type>/date=<Hong Kong date>/part-...parquet``,
the columns of ``history_rows.SCHEMA``), so the analytics read an archive as they read an
export (``smartcity analytics sql --history DIR``). The files are checked (their row count
against the database's), and only then do the rows leave the database: on PostgreSQL the
month's partition (already detached) is dropped, with the rollup's; on SQLite the rows are
deleted in batches.

Crash-safe and idempotent, through one row per (month, batch) in ``history_archives``:

1. the row is written first (state ``archiving``): from then on the Temporal API refuses
   queries over the month (410), so no client sees it half gone;
2. PostgreSQL: the month's partitions are detached (rows of the month that arrive later go to
   the default partition, and become the month's next batch); SQLite: the batch is the
   month's rows up to the highest key at that moment (``upto_key``);
3. the files are written under hidden temporary names, counted, renamed into place;
4. the row becomes ``archived`` with its row count; then the rows are removed.

A run that stops anywhere is completed by the next: an ``archiving`` batch is written again
from the start (its rows are all still in the database; its files are replaced), an
``archived`` one only has its leftovers removed. A second run finds nothing to do.

Files are named ``part-YYYY-MM-b<batch>.parquet``; ``_archive.json`` lists the months.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import Connection, column, delete, func, insert, select, table, text, update
from sqlalchemy.exc import OperationalError

from smartcity.analytics.history import (
    ARCHIVE_MARK,
    HONG_KONG_OFFSET_US,
    STATE,
    _atomic_write,
    _fsync,
    _fsync_dir,
    group_rows,
    read_columns,
)
from smartcity.analytics.history_rows import SCHEMA, local_date
from smartcity.storage import partitions as parts
from smartcity.storage import schema
from smartcity.storage.engine import Database

H = schema.history_entities
AH = schema.attr_history
HR = schema.attr_history_hourly
A = schema.history_archives
READ_ROWS = 50_000
DELETE_BATCH = 5_000
LOCK = "_archive.lock"


class RetainError(Exception):
    """Retention cannot run as asked (the message says what to do)."""


@dataclass
class MonthPlan:
    month: int
    rows: int  # rows to archive (0: an empty partition, dropped without a record)
    batch: int
    resume: bool = False  # a batch an earlier run began
    upto_key: int | None = None  # SQLite: the batch's highest key

    @property
    def label(self) -> str:
        return parts.month_label(self.month)


@dataclass
class MonthDone:
    month: str
    batch: int
    rows: int
    files: int
    bytes: int


@dataclass
class RetainResult:
    keep_from: str  # the first month kept, YYYY-MM
    planned: list[MonthPlan] = field(default_factory=list)
    archived: list[MonthDone] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # leftovers of earlier runs removed


Progress = Callable[[str, int, int], None]  # (month, rows done, rows in the month)


def first_kept_month(keep_us: int, now_us: int | None = None) -> int:
    """The month holding ``now - keep``: every month before it is archived."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    return parts.month_of(now - keep_us)


def retain(
    db: Database,
    archive: Path,
    *,
    keep_us: int,
    now_us: int | None = None,
    dry_run: bool = False,
    offset_us: int = HONG_KONG_OFFSET_US,
    progress: Progress | None = None,
) -> RetainResult:
    """Archive every whole month older than ``keep_us``; see the module's docstring."""
    first_kept = first_kept_month(keep_us, now_us)
    result = RetainResult(keep_from=parts.month_label(first_kept))
    archive = archive.expanduser().resolve()
    if (archive / STATE).exists():
        raise RetainError(
            f"{archive} holds a `smartcity history export`: archive to a folder of its own"
        )
    if dry_run:
        with db.read() as conn:
            result.planned = _plan(conn, first_kept)
        return result
    archive.mkdir(parents=True, exist_ok=True)
    with _locked(archive), _cluster_lock(db):
        result.finished = _finish_leftovers(db)
        with db.read() as conn:
            result.planned = _plan(conn, first_kept)
        for plan in result.planned:
            try:
                done = _archive_month(db, archive, plan, offset_us, progress)
            except OperationalError as exc:
                if "lock timeout" not in str(exc):
                    raise
                raise RetainError(
                    f"{plan.label}: the history tables stayed busy for 10 s (a long query?), "
                    "so the month was not detached; nothing was lost. Run again."
                ) from None
            if done is not None:
                result.archived.append(done)
                _note_manifest(archive, done)
    return result


# -- what to do --------------------------------------------------------------------------------
def _latest_batches(conn: Connection) -> dict[int, Any]:
    latest: dict[int, Any] = {}
    for row in conn.execute(select(schema.history_archives).order_by(A.c.month, A.c.batch)):
        latest[parts.parse_month(row.month)] = row
    return latest


def _plan(conn: Connection, first_kept: int) -> list[MonthPlan]:
    latest = _latest_batches(conn)
    plans: dict[int, MonthPlan] = {}
    for month, row in latest.items():
        if row.state == "archiving":
            plans[month] = MonthPlan(month, 0, row.batch, resume=True, upto_key=row.upto_key)
    before = parts.month_start(first_kept)
    if parts.is_partitioned(conn, "attr_history"):
        candidates = {m for m in parts.attached(conn, "attr_history") if m < first_kept}
        candidates |= set(parts.months_in_default(conn, "attr_history", before))
        candidates |= set(parts.detached(conn, "attr_history"))
        for month in sorted(candidates):
            lo, hi = parts.month_bounds(month)
            n = _count(conn, "attr_history", month, lo, hi)
            plan = plans.get(month)
            if plan is not None:
                plan.rows = n
                continue
            previous = latest.get(month)
            plans[month] = MonthPlan(month, n, previous.batch + 1 if previous else 1)
        for month in parts.attached(conn, "attr_history_hourly"):  # rollup partitions alone
            if month < first_kept and month not in plans:
                plans[month] = MonthPlan(month, 0, 0)
    else:
        for label, n in conn.execute(
            text(
                "SELECT strftime('%Y-%m', observed_at / 1000000.0, 'unixepoch') AS m, count(*) "
                "FROM attr_history WHERE observed_at < :before GROUP BY m"
            ),
            {"before": before},
        ):
            month = parts.parse_month(label)
            plan = plans.get(month)
            previous = latest.get(month)
            if plan is None:
                plans[month] = MonthPlan(month, int(n), previous.batch + 1 if previous else 1)
        for plan in plans.values():
            if plan.resume:
                lo, hi = parts.month_bounds(plan.month)
                plan.rows = _sqlite_count(conn, lo, hi, plan.upto_key)
    return [plans[m] for m in sorted(plans)]


def _count(conn: Connection, history: str, month: int, lo: int, hi: int) -> int:
    """The rows of ``month`` in its partition (attached or detached) and the default one."""
    n = 0
    name = parts.partition_name(history, month)
    if parts.exists(conn, name):
        n += int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
    key = parts.PARTITIONED[history]
    n += int(
        conn.execute(
            text(
                f"SELECT count(*) FROM {parts.default_name(history)} "
                f"WHERE {key} >= {lo} AND {key} < {hi}"
            )
        ).scalar_one()
    )
    return n


def _sqlite_count(conn: Connection, lo: int, hi: int, upto: int | None) -> int:
    where = [AH.c.observed_at >= lo, AH.c.observed_at < hi]
    if upto is not None:
        where.append(AH.c.iid <= upto)
    return int(conn.execute(select(func.count()).select_from(AH).where(*where)).scalar_one())


# -- one month ---------------------------------------------------------------------------------
def _archive_month(
    db: Database, archive: Path, plan: MonthPlan, offset_us: int, progress: Progress | None
) -> MonthDone | None:
    lo, hi = parts.month_bounds(plan.month)
    postgres = db.is_postgres and _partitioned(db)
    if plan.rows == 0 and not plan.resume:
        if postgres:  # an empty partition (made ahead, no reading came): just drop it
            with db.write() as conn:
                _lock_timeout(conn)
                for history in parts.PARTITIONED:
                    _detach_month(conn, history, plan.month)
            _drop_detached(db, plan.month)
        return None
    if not plan.resume:
        with db.write() as conn:
            upto = None
            if not postgres:
                upto = conn.execute(select(func.max(AH.c.iid))).scalar()
                plan.upto_key = upto
            conn.execute(
                insert(A).values(
                    month=plan.label,
                    batch=plan.batch,
                    lo_us=lo,
                    hi_us=hi,
                    location=str(archive),
                    state="archiving",
                    upto_key=upto,
                    started_at=time.time_ns() // 1000,
                )
            )
    if postgres:
        with db.write() as conn:
            _lock_timeout(conn)
            for history in parts.PARTITIONED:
                # A month without a partition (its rows in the default one: late readings of
                # an archived month, or a month the migration left there) gets one first.
                # Once the partition is detached, rows of the month that arrive go to the
                # default partition and wait for the next batch.
                if not parts.exists(conn, parts.partition_name(history, plan.month)):
                    parts.ensure_month(conn, history, plan.month)
                _detach_month(conn, history, plan.month)
        source: Any = _table(parts.partition_name("attr_history", plan.month))
        where: list[Any] = []
    else:
        source = AH
        where = [AH.c.observed_at >= lo, AH.c.observed_at < hi]
        if plan.upto_key is not None:
            where.append(AH.c.iid <= plan.upto_key)
    name = f"part-{plan.label}-b{plan.batch}.parquet"
    _remove_files(archive, name)
    with db.snapshot() as conn:
        expected = int(
            conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one()
        )
        stmt = (
            select(*read_columns(source))
            .join(H, H.c.hid == source.c.hid)
            .where(*where)
            .order_by(source.c.observed_at, source.c.iid)
        )
        result = conn.execution_options(stream_results=True, yield_per=READ_ROWS).execute(stmt)
        written, files = _write(result, archive, name, offset_us, plan, expected, progress)
    counted = sum(pq.read_metadata(tmp).num_rows for tmp, _ in files)
    if not written == counted == expected:
        for tmp, _ in files:
            tmp.unlink(missing_ok=True)
        raise RetainError(
            f"{plan.label}: {expected} rows in the database but {counted} in the files written "
            f"({written} read); nothing was removed. Run again."
        )
    size = 0
    for tmp, final in files:
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        size += final.stat().st_size
    with db.write() as conn:
        conn.execute(
            update(A)
            .where(A.c.month == plan.label, A.c.batch == plan.batch)
            .values(state="archived", rows=expected, finished_at=time.time_ns() // 1000)
        )
    if postgres:
        _drop_detached(db, plan.month)
    else:
        _delete_sqlite(db, lo, hi, plan.upto_key)
    return MonthDone(plan.label, plan.batch, expected, len(files), size)


def _write(
    result: Any,
    archive: Path,
    name: str,
    offset_us: int,
    plan: MonthPlan,
    expected: int,
    progress: Progress | None,
) -> tuple[int, list[tuple[Path, Path]]]:
    """Stream the month's rows (in observedAt order) into one file per type and day; the
    files of a day are closed once the rows have passed it. Returns (rows, [(tmp, final)])."""
    writers: dict[tuple[str, str], tuple[pq.ParquetWriter, Path, Path]] = {}
    files: list[tuple[Path, Path]] = []
    n = 0

    def close(key: tuple[str, str]) -> None:
        writer, tmp, final = writers.pop(key)
        writer.close()
        _fsync(tmp)
        files.append((tmp, final))

    try:
        for chunk in result.partitions():
            for (tkey, day), buf in group_rows(chunk, None, offset_us).items():
                entry = writers.get((tkey, day))
                if entry is None:
                    folder = archive / f"type={tkey}" / f"date={day}"
                    folder.mkdir(parents=True, exist_ok=True)
                    final = folder / name
                    tmp = folder / f".{name}.tmp"
                    writer = pq.ParquetWriter(tmp, SCHEMA, compression="zstd")
                    entry = writers[(tkey, day)] = (writer, tmp, final)
                entry[0].write_table(buf.table())
            n += len(chunk)
            today = local_date(chunk[-1].observed_at, offset_us)
            for key in [k for k in writers if k[1] < today]:
                close(key)
            if progress is not None:
                progress(plan.label, n, expected)
        for key in list(writers):
            close(key)
    finally:
        for writer, _tmp, _final in writers.values():
            writer.close()
    return n, files


def _remove_files(archive: Path, name: str) -> None:
    for path in archive.glob(f"type=*/date=*/{name}"):
        path.unlink()
    for path in archive.glob(f"type=*/date=*/.{name}.tmp"):
        path.unlink()


def _delete_sqlite(db: Database, lo: int, hi: int, upto: int | None) -> None:
    """The batch's rows, a few thousand per transaction (writers wait for one batch at most),
    then the month's rollup."""
    with db.read() as conn:
        where = [AH.c.observed_at >= lo, AH.c.observed_at < hi]
        if upto is not None:
            where.append(AH.c.iid <= upto)
        keys = list(conn.execute(select(AH.c.iid).where(*where)).scalars())
    for start in range(0, len(keys), DELETE_BATCH):
        with db.write() as conn:
            conn.execute(delete(AH).where(AH.c.iid.in_(keys[start : start + DELETE_BATCH])))
    with db.write() as conn:
        conn.execute(delete(HR).where(HR.c.hour >= lo, HR.c.hour < hi))


# -- PostgreSQL partitions ---------------------------------------------------------------------
def _partitioned(db: Database) -> bool:
    with db.read() as conn:
        return parts.is_partitioned(conn, "attr_history")


def _lock_timeout(conn: Connection) -> None:
    # DETACH takes the table's strongest lock for a moment: behind a long query it would make
    # every write wait; give up instead (the next run goes on from here).
    conn.execute(text("SET LOCAL lock_timeout = '10s'"))


def _detach_month(conn: Connection, history: str, month: int) -> None:
    name = parts.partition_name(history, month)
    if month in parts.attached(conn, history):
        conn.execute(text(f"ALTER TABLE {history} DETACH PARTITION {name}"))


def _drop_detached(db: Database, month: int) -> None:
    with db.write() as conn:
        for history in parts.PARTITIONED:
            if month in parts.detached(conn, history):
                conn.execute(text(f"DROP TABLE {parts.partition_name(history, month)}"))


def _finish_leftovers(db: Database) -> list[str]:
    """Remove the rows of batches archived by a run that stopped before removing them."""
    done: list[str] = []
    with db.read() as conn:
        latest = _latest_batches(conn)
        postgres = parts.is_partitioned(conn, "attr_history")
        left = {
            m: row
            for m, row in latest.items()
            if row.state == "archived"
            and (
                (postgres and m in parts.detached(conn, "attr_history"))
                or (not postgres and _sqlite_count(conn, row.lo_us, row.hi_us, row.upto_key) > 0)
            )
        }
    for month, row in sorted(left.items()):
        if postgres:
            _drop_detached(db, month)
        else:
            _delete_sqlite(db, row.lo_us, row.hi_us, row.upto_key)
        done.append(parts.month_label(month))
    return done


def _table(name: str) -> Any:
    """A detached partition, for SQLAlchemy: ``attr_history``'s columns under its name."""
    return table(name, *(column(c.name, c.type) for c in AH.c))


# -- the archive folder ------------------------------------------------------------------------
def _note_manifest(archive: Path, done: MonthDone) -> None:
    path = archive / ARCHIVE_MARK
    doc: dict[str, Any] = {"format": 1, "months": {}}
    if path.exists():
        with contextlib.suppress(ValueError):
            doc = json.loads(path.read_text(encoding="utf-8"))
    batches = doc.setdefault("months", {}).setdefault(done.month, {})
    batches[str(done.batch)] = {"rows": done.rows, "files": done.files, "bytes": done.bytes}
    _atomic_write(path, json.dumps(doc, indent=2, sort_keys=True).encode())


@contextlib.contextmanager
def _locked(archive: Path) -> Iterator[None]:
    with open(archive / LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetainError(f"another retain run is writing {archive}") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _cluster_lock(db: Database) -> Iterator[None]:
    """One retain run per database (PostgreSQL: a session advisory lock, released if the run's
    process dies, so a crashed run never blocks the next)."""
    if not db.is_postgres:
        yield
        return
    with db.engine.connect() as conn:
        conn.execute(text("SET application_name = 'smartcity history retain'"))
        taken = conn.execute(text("SELECT pg_try_advisory_lock(hashtext('history.retain'))"))
        if not taken.scalar():
            raise RetainError("another `smartcity history retain` is running on this database")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('history.retain'))"))
            conn.commit()
