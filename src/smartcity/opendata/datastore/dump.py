"""``/datastore/dump/{resource_id}?format=csv|tsv|json|xlsx``: a resource's table, streamed.

CSV, TSV and JSON are written row by row as the database cursor yields them (bounded
memory); XLSX through openpyxl's write-only workbook into a temporary file that is then
streamed. Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) get a leading apostrophe in CSV, TSV and XLSX
(OWASP's advice against CSV injection); JSON carries the values as they are.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Any

import orjson

from smartcity.opendata.datastore.fields import to_json, to_text

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def delimited(
    rows: Iterator[tuple[list[str], list[Any]]], names: list[str], *, tab: bool, bom: bool
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t" if tab else ",", lineterminator="\r\n")
    writer.writerow([neutralise(n) for n in names])
    yield ("\ufeff" if bom else "").encode() + _take(buffer)
    for count, (_, values) in enumerate(rows, start=1):
        writer.writerow(
            [neutralise(to_text(v)) if isinstance(v, str) else to_text(v) for v in values]
        )
        if count % 1000 == 0:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> bytes:
    out = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return out.encode()


def json_lines(
    rows: Iterator[tuple[list[str], list[Any]]], fields: list[dict[str, Any]]
) -> Iterator[bytes]:
    """CKAN's JSON dump: ``{"fields": [...], "records": [[...], ...]}``."""
    yield b'{"fields": ' + orjson.dumps(fields) + b', "records": ['
    first = True
    chunk: list[bytes] = []
    for _, values in rows:
        chunk.append((b"" if first else b",") + orjson.dumps([to_json(v) for v in values]))
        first = False
        if len(chunk) >= 1000:
            yield b"\n".join(chunk)
            chunk = []
    if chunk:
        yield b"\n".join(chunk)
    yield b"]}\n"


def xlsx(rows: Iterator[tuple[list[str], list[Any]]], names: list[str]) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([neutralise(n) for n in names])
    for _, values in rows:
        sheet.append([_cell(v) for v in values])
    with tempfile.TemporaryFile() as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(256 * 1024):
            yield chunk


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return neutralise(orjson.dumps(value).decode())
    return neutralise(value)
