"""Loading a file into a resource's DataStore table: CSV, TSV, XLSX, JSON.

* **Streaming.** Rows are read, converted and written in batches: memory holds the type
  sample (the first ``SAMPLE_ROWS`` rows) and one batch, whatever the file's size. A JSON
  array is the exception (parsed whole, so bounded by the upload limit); JSON Lines stream.
* **Encodings** (CSV, TSV, JSON): a byte-order mark decides (UTF-8, UTF-16 LE/BE); else
  UTF-8 if the sample decodes as UTF-8; else UTF-16 without a BOM if every other byte of the
  sample is NUL; else charset-normalizer's guess, where Big5 is read as Big5-HKSCS (Big5
  plus Hong Kong's characters). An explicit encoding overrides all of it.
* **Types** are inferred from the sample (``fields.infer_type``) unless given; the headers
  become field ids (blank or repeated ones are named ``column_N`` / ``name_2``).
* **Bad rows** (a value that is not of its column's type, too many cells) are skipped and
  reported with their line number; every good row is loaded.
* **All or nothing.** The table is replaced in the same transaction that fills it: a load
  that fails leaves the previous table (or none) and no half-written rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from charset_normalizer import from_bytes

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.datastore import physical
from smartcity.opendata.datastore.fields import (
    BadValue,
    Field,
    canonical_type,
    check_field_id,
    fast_text_column,
    infer_type,
    to_python,
)
from smartcity.opendata.datastore.store import DataStore
from smartcity.opendata.datastore.tables import loads
from smartcity.opendata.errors import ValidationFailed

SAMPLE_BYTES = 256 * 1024
SAMPLE_ROWS = 10_000
# Small batches: a batch of rows is thousands of live lists, and the cyclic collector walks
# every live container each time it runs; 20,000-row batches spent half a load in it.
BATCH_ROWS = 1_000
MAX_BAD_ROWS_KEPT = 1_000
TABULAR_FORMATS = {"CSV", "TSV", "TXT", "XLSX", "JSON"}

Progress = Callable[[int], None]  # bytes read so far


class LoadError(Exception):
    """The file cannot be loaded at all (not tabular, no header, unreadable)."""


@dataclass
class LoadReport:
    rows_loaded: int = 0
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    bad_row_count: int = 0
    encoding: str | None = None
    fields: list[Field] = field(default_factory=list)

    def bad(self, line: int, error: str) -> None:
        self.bad_row_count += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append({"line": line, "error": error})


# -- encodings ------------------------------------------------------------------------------


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # the sample cut a character in two
    if len(sample) >= 4:
        evens, odds = sample[0::2], sample[1::2]
        if odds.count(0) > len(odds) * 0.4 and evens.count(0) < len(evens) * 0.1:
            return "utf-16-le"
        if evens.count(0) > len(evens) * 0.4 and odds.count(0) < len(odds) * 0.1:
            return "utf-16-be"
    best = from_bytes(sample).best()
    if best is None:
        raise LoadError("cannot tell the file's text encoding: give it (--encoding)")
    name = codecs.lookup(best.encoding).name
    if name in ("big5", "cp950", "big5hkscs"):
        return "big5hkscs"
    return name


class _Counting(io.RawIOBase):
    """A binary file that reports how far it has been read (the progress bar)."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self.raw, self.progress, self.done = raw, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.done += n
        if self.progress is not None:
            self.progress(self.done)
        return n


# -- readers: (line number, cells) after a header ------------------------------------------


Rows = Iterator[tuple[int, list[Any]]]


def _csv_rows(text: IO[str], delimiter: str) -> tuple[list[str], Rows]:
    reader = csv.reader(text, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise LoadError("the file is empty: the first line must name the columns")

    def rows() -> Rows:
        line = reader.line_num + 1
        for cells in reader:
            if "".join(cells).strip():  # not a blank line (one C call, not a generator per row)
                yield line, cells
            line = reader.line_num + 1

    return header, rows()


def _xlsx_rows(path: Path) -> tuple[list[str], Rows]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise LoadError(f"cannot read the XLSX file: {exc}") from None
    sheet = book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    first = next(it, None)
    if first is None:
        raise LoadError("the first sheet is empty: its first row must name the columns")
    header = ["" if v is None else str(v) for v in first]

    def rows() -> Rows:
        for line, cells in enumerate(it, start=2):
            values = ["" if v is None else v for v in cells]
            if any(str(v).strip() for v in values):
                yield line, values
        book.close()

    return header, rows()


def _json_rows(text: IO[str]) -> tuple[list[str], Rows]:
    head = text.read(1)
    while head and head.isspace():
        head = text.read(1)
    if head == "[":
        try:
            records = orjson.loads(head + text.read())
        except orjson.JSONDecodeError as exc:
            raise LoadError(f"the JSON file is not valid JSON: {exc}") from None
        numbered: Iterator[tuple[int, Any]] = enumerate(records, start=1)
    else:
        lines = itertools.chain([head + text.readline()], text)
        numbered = ((n, _json_line(line)) for n, line in enumerate(lines, start=1) if line.strip())
    peeked: list[tuple[int, Any]] = []
    header: list[str] = []
    for item in numbered:
        peeked.append(item)
        if isinstance(item[1], dict):
            header = list(item[1])
            break
    if not header:
        raise LoadError("the JSON holds no objects: send [{...}, ...] or one object per line")

    def rows() -> Rows:
        for line, record in itertools.chain(peeked, numbered):
            if not isinstance(record, dict):
                yield line, [_NotAnObject(record)]
                continue
            for key in record:
                if key not in header:
                    header.append(key)  # later keys: reported as bad rows (not in the fields)
            yield line, [record.get(k) for k in header]

    return header, rows()


class _NotAnObject:
    def __init__(self, value: Any) -> None:
        self.value = value


def _json_line(line: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _NotAnObject(line.strip()[:40])


# -- the load -------------------------------------------------------------------------------


def field_ids(header: list[str]) -> list[str]:
    """Headers as field ids: trimmed, blanks named column_N, repeats suffixed, a leading
    underscore (reserved) dropped, anything else unusable replaced."""
    ids: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(header, start=1):
        name = str(raw).replace("\ufeff", "").strip().lstrip("_").replace('"', "'")
        name = name.replace("%", " percent").replace("\x00", "")
        while len(name.encode()) > 63:
            name = name[:-1]
        if not name or check_field_id(name) is not None:
            name = f"column_{position}"
        base, n = name, 2
        while name.lower() in seen:
            name = f"{base[:55]}_{n}"
            n += 1
        seen.add(name.lower())
        ids.append(name)
    return ids


def format_of(path: Path, declared: str | None) -> str:
    fmt = (declared or path.suffix.lstrip(".")).upper()
    if fmt in ("JSONL", "NDJSON"):
        fmt = "JSON"
    if fmt not in TABULAR_FORMATS:
        raise LoadError(
            f"{fmt or 'a file without an extension'} is not tabular: load CSV, TSV, XLSX or JSON"
        )
    return fmt


def load_file(
    store: DataStore,
    resource_id: str,
    path: Path,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    types: dict[str, str] | None = None,
    primary_key: list[str] | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    """Replace the resource's table with the file's rows (one transaction). Raises LoadError
    when nothing can be loaded; bad rows are in the report."""
    kind = format_of(path, fmt)
    report = LoadReport()
    with path.open("rb") as raw_file:
        counting = _Counting(raw_file, progress)
        binary = io.BufferedReader(counting, buffer_size=1024 * 1024)
        if kind == "XLSX":
            header, rows = _xlsx_rows(path)
            if progress is not None:
                progress(path.stat().st_size)
        else:
            report.encoding = encoding or detect_encoding(binary.peek(SAMPLE_BYTES)[:SAMPLE_BYTES])
            try:
                codecs.lookup(report.encoding)
            except LookupError:
                raise LoadError(f"unknown encoding {report.encoding!r}") from None
            text = io.TextIOWrapper(binary, encoding=report.encoding, errors="strict", newline="")
            if kind == "JSON":
                header, rows = _json_rows(text)
            else:
                header, rows = _csv_rows(
                    text, "\t" if kind == "TSV" else _delimiter(binary, report.encoding)
                )
        try:
            _load_rows(
                store,
                resource_id,
                header,
                rows,
                report,
                types or {},
                primary_key,
                text_cells=kind in ("CSV", "TSV", "TXT"),
            )
        except UnicodeDecodeError as exc:
            raise LoadError(
                f"the file is not {report.encoding} throughout ({exc.reason} at byte "
                f"{exc.start} of a chunk): give the encoding (--encoding big5hkscs ...)"
            ) from None
        except csv.Error as exc:
            raise LoadError(f"the file is not readable CSV: {exc}") from None
    return report


def _delimiter(binary: Any, encoding: str) -> str:
    sample = binary.peek(64 * 1024)[: 64 * 1024].decode(encoding, errors="ignore")
    try:
        return csv.Sniffer().sniff(sample.split("\n", 20)[0] if sample else ",", ",;\t|").delimiter
    except csv.Error:
        return ","


def _load_rows(
    store: DataStore,
    resource_id: str,
    header: list[str],
    rows: Rows,
    report: LoadReport,
    types: dict[str, str],
    primary_key: list[str] | None,
    *,
    text_cells: bool = False,
) -> None:
    ids = field_ids(header)
    sample = list(itertools.islice(rows, SAMPLE_ROWS))
    fields: list[Field] = []
    for position, name in enumerate(ids):
        wanted = types.get(name)  # by field id (a repeated header is name_2)
        if wanted is not None:
            type_name = canonical_type(wanted)
            if type_name is None:
                raise ValidationFailed.one("types", f"{name}: unknown type {wanted!r}")
        else:
            type_name = infer_type(
                [
                    c[position]
                    for _, c in sample
                    if position < len(c) and not isinstance(c[position], _NotAnObject)
                ]
            )
        fields.append(Field(name, type_name))
    report.fields = fields
    width = len(fields)
    kinds = [f.type for f in fields]

    def checked(line: int, cells: list[Any]) -> list[Any] | None:
        """The row's values, or None after reporting why the row is bad."""
        if cells and isinstance(cells[0], _NotAnObject):
            report.bad(line, f"not a JSON object: {cells[0].value!r}")
            return None
        if len(cells) > width and any(str(c).strip() for c in cells[width:]):
            report.bad(line, f"{len(cells)} values for {width} columns")
            return None
        try:
            return [
                to_python(kind, cells[i] if i < len(cells) else None)
                for i, kind in enumerate(kinds)
            ]
        except BadValue as exc:
            bad_at = next(
                i
                for i, kind in enumerate(kinds)
                if not _reads(kind, cells[i] if i < len(cells) else None)
            )
            report.bad(line, f"column {ids[bad_at]!r}: {exc}")
            return None

    def converted() -> Iterator[list[Any]]:
        for line, cells in itertools.chain(sample, rows):
            values = checked(line, cells)
            if values is not None:
                yield values

    def text_batches() -> Iterator[Sequence[Sequence[Any]]]:
        # CSV cells are all text: a batch is converted a column at a time by narrow
        # converters (fields.fast_text_column) that give what to_python gives or raise
        # ValueError; a batch they cannot read goes row by row through the general path,
        # which decides and reports. Per-cell dispatch was two thirds of a load (cProfile).
        convert = [fast_text_column(kind) for kind in kinds]
        source = itertools.chain(sample, rows)
        while chunk := list(itertools.islice(source, BATCH_ROWS)):
            cells = [c for _, c in chunk]
            if width and set(map(len, cells)) == {width}:
                try:
                    by_column = zip(*cells, strict=True)
                    columns = [f(col) for f, col in zip(convert, by_column, strict=True)]
                    yield list(zip(*columns, strict=True))
                    continue
                except ValueError:
                    pass
            yield [v for line, c in chunk if (v := checked(line, c)) is not None]

    with store.db.write() as conn:
        found = store.define(conn, resource_id, fields, primary_key or [], [], replace=True)
        batches = text_batches() if text_cells else _batches(converted(), BATCH_ROWS)
        # One stream of rows: one COPY on PostgreSQL (a COPY per batch waited for the server
        # a thousand times a million rows), executemany chunks on SQLite.
        values = itertools.chain.from_iterable(batches)
        report.rows_loaded += physical.insert_rows(conn, found.table, fields, values)


def _reads(kind: str, value: Any) -> bool:
    try:
        to_python(kind, value)
        return True
    except BadValue:
        return False


def _batches(items: Iterator[list[Any]], size: int) -> Iterator[list[list[Any]]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


# -- the load's record (datastore_info's meta.load) ------------------------------------------


def record_load(
    store: DataStore, resource_id: str, state: str, report: LoadReport | None, message: str | None
) -> None:
    now = repo.now_us()
    values = {
        "state": state,
        "message": message,
        "encoding": report.encoding if report else None,
        "rows_loaded": report.rows_loaded if report else 0,
        "bad_rows": report.bad_rows if report else [],
        "bad_row_count": report.bad_row_count if report else 0,
        "finished_at": None if state in ("pending", "running") else now,
    }
    with store.db.write() as conn:
        exists = conn.execute(loads.select().where(loads.c.resource_id == resource_id)).first()
        if exists is None:
            conn.execute(loads.insert().values(resource_id=resource_id, started_at=now, **values))
        else:
            changes = values if state != "running" else {**values, "started_at": now}
            conn.execute(loads.update().where(loads.c.resource_id == resource_id).values(**changes))
