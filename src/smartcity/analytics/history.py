"""``smartcity history export``: the hub's history as Parquet, so analytics never load the
transactional database.

Layout: ``OUT/type=<entity type>/date=<YYYY-MM-DD>/part-<seq>.parquet`` (hive partitioning;
the date is the city's, Hong Kong time, so a day's analysis reads one folder), one row per
attribute instance (columns in ``history_rows.SCHEMA``), plus ``OUT/_state.json``.

Incremental: ``attr_history`` only grows at the top of its key (``iid``), so the state keeps a
watermark, the last key exported, and a run reads the rows above it in key order, a chunk at a
time (keyset pagination: one short read per chunk, never the whole history in memory nor one
long transaction). A run with ``--types`` moves only those types' watermarks.

Crash-safe: each chunk's files are written under a hidden temporary name, flushed and renamed
into place (readers never see a partial file), then the state is replaced the same way with
the chunk's sequence number and the new watermark. A crash between the two leaves files whose
sequence number is above the state's: the next run deletes them before it starts, and writes
those rows again, so no row is ever there twice once a run has finished.

PostgreSQL hands out keys when rows are inserted but they become visible when their
transaction commits, so a long transaction can commit a key below one already exported. A run
therefore stops at the first row the hub accepted less than ``settle`` seconds ago (default 120
s on PostgreSQL: safe while every write transaction lasts under half that; SQLite has one
writer at a time, so 0 there). Those rows are exported by the next run.

Not followed: corrections and deletions of past instances through the Temporal API (rare,
by hand); ``--rebuild`` exports everything again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from sqlalchemy import Select, Text, cast, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB, array

from smartcity.analytics.history_rows import (
    DAY_US,
    RowBuffer,
    expand,
    local_date,
    partition_key,
    short_name,
    split_value,
)
from smartcity.storage import schema
from smartcity.storage.engine import Database

H = schema.history_entities
AH = schema.attr_history

STATE = "_state.json"
LOCK = "_lock"
# Written by ``smartcity history retain`` in its archive folder (analytics/retain.py): an
# export must not write there (it would remove the archive's files as uncommitted ones).
ARCHIVE_MARK = "_archive.json"
FORMAT = 1
HONG_KONG_OFFSET_US = 8 * 3_600_000_000  # UTC+8 all year (no daylight saving since 1979)
DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_PG_SETTLE_S = 120.0


class ExportError(Exception):
    """The export cannot run as asked (the message says what to do)."""


@dataclass
class ExportResult:
    rows: int = 0
    files: int = 0
    partitions: set[tuple[str, str]] = field(default_factory=set)
    watermark: int = 0
    held_back: bool = False  # stopped at rows younger than the settle time


@dataclass
class _State:
    watermark: int = 0  # every type is exported up to this key
    types: dict[str, int] = field(default_factory=dict)  # IRI -> key, for types beyond it
    seq: int = 0  # the last committed chunk
    rows: int = 0
    # The highest key when the last run began, and when that was (microseconds): once the
    # settle time has passed, every key up to it is visible (see ``export_history``).
    probe: tuple[int, int] | None = None

    @classmethod
    def load(cls, out: Path) -> _State:
        path = out / STATE
        if not path.exists():
            return cls()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ExportError(
                    f"{path} is format {doc.get('format')!r}, this version writes {FORMAT}: "
                    "export again with --rebuild"
                )
            probe = doc.get("probe")
            return cls(
                int(doc["watermark"]),
                dict(doc["types"]),
                int(doc["seq"]),
                int(doc["rows"]),
                (int(probe[0]), int(probe[1])) if probe else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path} is unreadable ({exc}): export again with --rebuild"
            raise ExportError(msg) from None

    def save(self, out: Path) -> None:
        doc = {
            "format": FORMAT,
            "watermark": self.watermark,
            "types": self.types,
            "seq": self.seq,
            "rows": self.rows,
            "probe": self.probe,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _atomic_write(out / STATE, json.dumps(doc, indent=2).encode())

    def start(self, types: Sequence[str] | None) -> int:
        """The key above which a run over ``types`` (None: all) has rows to read."""
        if types is None:
            return self.watermark
        return min(max(self.watermark, self.types.get(t, 0)) for t in types)

    def done(self, iri: str) -> int:
        return max(self.watermark, self.types.get(iri, 0))

    def advance(self, types: Sequence[str] | None, key: int) -> None:
        if types is None:
            self.watermark = max(self.watermark, key)
            self.types = {t: k for t, k in self.types.items() if k > self.watermark}
        else:
            for t in types:
                self.types[t] = max(self.done(t), key)


def export_history(
    db: Database,
    out: Path,
    *,
    since_us: int | None = None,
    types: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    settle_s: float | None = None,
    rebuild: bool = False,
    date_offset_us: int = HONG_KONG_OFFSET_US,
    progress: Callable[[int, int, int], None] | None = None,
    after_file: Callable[[Path], None] | None = None,
) -> ExportResult:
    """Export the history rows not yet in ``out``; see the module's docstring.

    ``types`` are short names or IRIs (an entity matches if it has any of them). ``progress``
    is called after each chunk with (keys done, keys to do, rows written); ``after_file``
    after each file is in place (tests use it to stop a run half-way)."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / ARCHIVE_MARK).exists():
        raise ExportError(
            f"{out} is an archive of `smartcity history retain`: export to a folder of its own"
        )
    iris = sorted({expand(t) for t in types}) if types else None
    if settle_s is None:
        settle_s = DEFAULT_PG_SETTLE_S if db.is_postgres else 0.0
    with _locked(out):
        if rebuild:
            _remove_exported(out)
        state = _State.load(out)
        _remove_uncommitted(out, state.seq)
        result = ExportResult(watermark=state.watermark)
        start = state.start(iris)
        with db.read() as conn:
            top = conn.execute(select(func.max(AH.c.iid))).scalar() or 0
        now_us = int(time.time() * 1_000_000)
        cutoff = now_us - int(settle_s * 1_000_000) if settle_s > 0 else None
        key = start
        dialect = "postgresql" if db.is_postgres else "sqlite"
        while True:
            with db.read() as conn:
                rows = conn.execute(_chunk(key, iris, since_us, chunk_rows, dialect)).all()
            if not rows:
                break
            if cutoff is not None:
                young = next((i for i, r in enumerate(rows) if r.created_at > cutoff), None)
                if young is not None:
                    rows = rows[:young]
                    result.held_back = True
            if rows:
                key = rows[-1].iid
                state.seq += 1
                written = _write_chunk(out, state, rows, iris, date_offset_us, after_file)
                result.rows += written.rows
                result.files += written.files
                result.partitions |= written.partitions
                state.rows += written.rows
                state.advance(iris, key)
                state.save(out)  # the commit point of the chunk
            if progress is not None:
                progress(key - start, max(top - start, key - start), result.rows)
            if result.held_back or len(rows) < chunk_rows:
                break
        # The rows read up to a settled key and not exported did not match (--types, --since):
        # the next run need not read them again. With one writer (SQLite) every key up to
        # ``top`` is settled; on PostgreSQL a key below ``top`` may still be in a transaction,
        # but not one below the previous run's ``top`` once the settle time has passed since.
        settled = top
        if cutoff is not None:
            settled = state.probe[0] if state.probe and state.probe[1] <= cutoff else 0
        if key < settled:
            state.advance(iris, settled)
        state.probe = (top, now_us)
        state.save(out)
        result.watermark = state.start(iris)
        return result


def read_columns(history: Any) -> tuple[Any, ...]:
    """The columns ``group_rows`` takes, from ``history`` (``attr_history`` or a table like
    it, such as a detached partition) joined with ``history_entities``."""
    return (
        history.c.iid,
        history.c.attr,
        history.c.dataset_id,
        history.c.instance_id,
        history.c.observed_at,
        history.c.created_at,
        history.c.num,
        cast(history.c.value, Text).label("value_text"),
        history.c.deleted_at,
        H.c.tenant,
        H.c.entity_id,
        cast(H.c.types, Text).label("types_text"),
    )


def _chunk(
    after: int, iris: Sequence[str] | None, since_us: int | None, n: int, dialect: str
) -> Select[Any]:
    stmt = (
        select(*read_columns(AH))
        .join(H, H.c.hid == AH.c.hid)
        .where(AH.c.iid > after)
        .order_by(AH.c.iid)
        .limit(n)
    )
    if since_us is not None:
        stmt = stmt.where(AH.c.observed_at >= since_us)
    if iris:
        stmt = stmt.where(_has_any_type(iris, dialect))
    return stmt


def _has_any_type(iris: Sequence[str], dialect: str) -> Any:
    """The history entity has (had) one of these types: ``types`` is a JSON array of IRIs."""
    if dialect == "postgresql":
        return type_coerce(H.c.types, JSONB).has_any(array(list(iris)))
    each = func.json_each(H.c.types).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(list(iris))))


@dataclass
class _Written:
    rows: int = 0
    files: int = 0
    partitions: set[tuple[str, str]] = field(default_factory=set)


def _write_chunk(
    out: Path,
    state: _State,
    rows: Sequence[Any],
    iris: Sequence[str] | None,
    offset_us: int,
    after_file: Callable[[Path], None] | None,
) -> _Written:
    groups = group_rows(rows, iris, offset_us, state.done)
    written = _Written()
    for (tkey, day), buf in sorted(groups.items()):
        folder = out / f"type={tkey}" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{state.seq:010d}.parquet"
        tmp = folder / f".{final.name}.tmp"  # hidden: no reader's glob or listing takes it
        pq.write_table(buf.table(), tmp, compression="zstd")
        _fsync(tmp)
        os.replace(tmp, final)
        written.rows += len(buf)
        written.files += 1
        written.partitions.add((tkey, day))
        if after_file is not None:
            after_file(final)
    return written


def group_rows(
    rows: Sequence[Any],
    iris: Sequence[str] | None,
    offset_us: int,
    done: Callable[[str], int] | None = None,
) -> dict[tuple[str, str], RowBuffer]:
    """Rows read by ``read_columns`` as typed Parquet rows, by (type partition, date): the
    layout of the export, which ``smartcity history retain`` writes too. ``done(type IRI)``
    is the key up to which a type's rows were exported already (left out here)."""
    groups: dict[tuple[str, str], RowBuffer] = {}
    # What rows of one entity, one attribute or one day share is worked out once per chunk.
    homes: dict[Any, tuple[str, str, str, int]] = {}
    names: dict[str, str] = {}
    days: dict[int, str] = {}
    for (
        iid,
        attr,
        dataset_id,
        instance_id,
        observed_at,
        created_at,
        number,
        value_text,
        deleted_at,
        tenant,
        entity_id,
        types_text,
    ) in rows:
        home = homes.get(types_text)
        if home is None:
            types = sorted(_json(types_text))
            # An entity keeps every type it ever had; it is filed under the first of those
            # asked for (or of all), in IRI order, so a row has one home.
            etype = ([t for t in types if iris is None or t in iris] or types)[0]
            tshort = short_name(etype)
            # Rows up to here were exported by an earlier run over one of its types alone.
            upto = max(done(t) for t in types) if done is not None else -1
            home = homes[types_text] = (etype, tshort, partition_key(tshort), upto)
        etype, tshort, tkey, upto = home
        if iid <= upto:
            continue
        value = _json(value_text)
        deleted = deleted_at is not None
        num, text, flag, blob = split_value(value, number, deleted)
        day_number = (observed_at + offset_us) // DAY_US
        day = days.get(day_number)
        if day is None:
            day = days[day_number] = local_date(observed_at, offset_us)
        attribute = names.get(attr)
        if attribute is None:
            attribute = names[attr] = short_name(attr)
        buf = groups.get((tkey, day))
        if buf is None:
            buf = groups[(tkey, day)] = RowBuffer()
        buf.rows.append(
            (
                tenant,
                entity_id,
                tshort,
                etype,
                attribute,
                attr,
                value.get("type", "Property"),
                dataset_id or None,
                instance_id,
                observed_at,
                num,
                text,
                flag,
                blob,
                value.get("unitCode"),
                created_at,
                deleted,
            )
        )
    return groups


def _json(value: Any) -> Any:
    """A JSON column read as text (``_chunk`` casts it: one orjson call per value is faster than
    the drivers' and SQLAlchemy's per-column processing)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _parts(out: Path) -> Iterator[Path]:
    yield from out.glob("type=*/date=*/part-*.parquet")
    yield from out.glob("type=*/date=*/.part-*.parquet.tmp")


def _remove_uncommitted(out: Path, seq: int) -> None:
    """Files of a run that stopped before its state was saved: their rows come again."""
    for path in _parts(out):
        number = path.name.lstrip(".").removeprefix("part-").split(".", 1)[0]
        if path.name.endswith(".tmp") or not number.isdigit() or int(number) > seq:
            path.unlink(missing_ok=True)


def _remove_exported(out: Path) -> None:
    for path in _parts(out):
        path.unlink(missing_ok=True)
    (out / STATE).unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be synced
        _fsync(path)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One export at a time per directory (a second one would write the same rows)."""
    with open(out / LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportError(f"another export is writing {out}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
