"""Measures with their progress in one flat schema, as CSV or JSON (Decidim Accountability's
import/export model): what ``blueprint export`` writes, ``blueprint import`` reads back and
``GET /api/v1/measures.csv`` serves.

One row per measure; texts as ``title/en``, ``title/zh-Hant`` ... columns; nested values
(target, milestones, live links) as JSON in their cell. In JSON the rows are objects with the
same keys, nested values as JSON values. ``rolled_up_progress`` is informative and ignored on
import (it is computed). An import validates every row first and applies nothing if any row
is wrong; it never deletes measures missing from the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartcity.portal.blueprint.model import LANGS, AreaId, LiveLink, Target, Text
from smartcity.portal.measures.schemas import MeasureView

LANG_KEYS = LANGS
COLUMNS = (
    "id",
    "area",
    "strategy",
    "is_new",
    *(f"title/{lang}" for lang in LANG_KEYS),
    *(f"text/{lang}" for lang in LANG_KEYS),
    "target",
    "owners",
    "status",
    "progress",
    "start_date",
    "end_date",
    "weight",
    "parent",
    "milestones",
    "live",
    "rolled_up_progress",
)
JSON_COLUMNS = ("target", "milestones", "live")
MAX_ROWS = 5000


class MilestoneRow(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date: dt.date
    title: Text
    description: Text | None = None
    done: bool = False


class MeasureRow(BaseModel):
    """One row of the flat schema, validated."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z]+-\d{2,3}$")
    area: AreaId
    strategy: str = Field(pattern=r"^[a-z]+-s\d{1,2}$")
    is_new: bool
    title: Text
    text: Text
    target: Target | None = None
    owners: list[str] = Field(default_factory=list)
    status: str = Field(min_length=1)
    progress: float | None = Field(default=None, ge=0, le=100)  # empty: the status's default
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    weight: float = Field(default=1.0, ge=0, le=1000)
    parent: str | None = Field(default=None, pattern=r"^[a-z]+-\d{2,3}$")
    milestones: list[MilestoneRow] = Field(default_factory=list)
    live: list[LiveLink] = Field(default_factory=list)
    rolled_up_progress: float | None = None  # ignored on import


@dataclass(frozen=True)
class RowError:
    row: int  # CSV: the spreadsheet row (the header is row 1); JSON: 1-based position
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


class ImportFailed(Exception):
    """Nothing was applied; ``errors`` says what to fix."""

    def __init__(self, errors: list[RowError]) -> None:
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} error(s), nothing imported: {shown}{more}")
        self.errors = errors


# -- export ---------------------------------------------------------------------------------


def _dump(model: BaseModel | None) -> Any:
    return model.model_dump(mode="json", by_alias=True) if model is not None else None


def to_record(m: MeasureView) -> dict[str, Any]:
    """A measure as a flat JSON record (the JSON format's row)."""
    rec: dict[str, Any] = {"id": m.id, "area": m.area, "strategy": m.strategy, "is_new": m.is_new}
    for name, text in (("title", m.title), ("text", m.text)):
        for lang in LANG_KEYS:
            rec[f"{name}/{lang}"] = text.get(lang)
    rec |= {
        "target": _dump(m.target),
        "owners": list(m.owners),
        "status": m.status,
        "progress": m.own_progress,
        "start_date": m.start.isoformat() if m.start else None,
        "end_date": m.end.isoformat() if m.end else None,
        "weight": m.weight,
        "parent": m.parent,
        "milestones": [
            {
                "date": x.date.isoformat(),
                "title": _dump(x.title),
                "description": _dump(x.description),
                "done": x.done,
            }
            for x in m.milestones
        ],
        "live": [_dump(x) for x in m.live],
        "rolled_up_progress": m.progress,
    }
    return rec


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in JSON_COLUMNS:
        return "" if value == [] else orjson.dumps(value).decode()
    if column == "owners":
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def to_csv(measures: Iterable[MeasureView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for m in measures:
        rec = to_record(m)
        writer.writerow([_cell(c, rec[c]) for c in COLUMNS])
    return out.getvalue()


def to_json(measures: Iterable[MeasureView]) -> bytes:
    return orjson.dumps([to_record(m) for m in measures], option=orjson.OPT_INDENT_2)


# -- import: parsing and row validation ------------------------------------------------------


def read_csv(data: str) -> list[tuple[int, dict[str, Any]]]:
    """(row number, record) pairs; cells parsed back to JSON values. Raises ImportFailed for
    a missing/unknown header or a malformed JSON cell."""
    reader = csv.reader(io.StringIO(data.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        raise ImportFailed([RowError(1, "*", "the file is empty; expected a header row")])
    errors = _check_header(header)
    if errors:
        raise ImportFailed(errors)
    records: list[tuple[int, dict[str, Any]]] = []
    for number, cells in enumerate(reader, 2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(
                RowError(number, "*", f"{len(cells)} cells, the header has {len(header)}")
            )
            continue
        rec: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=True):
            try:
                rec[column] = _parse_cell(column, cell)
            except ValueError as exc:
                errors.append(RowError(number, column, str(exc)))
        records.append((number, rec))
    if errors:
        raise ImportFailed(errors)
    return records


def read_json(data: bytes | str) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ImportFailed([RowError(0, "*", f"not JSON: {exc}")]) from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise ImportFailed([RowError(0, "*", "expected a JSON array of objects, one per measure")])
    errors: list[RowError] = []
    for number, rec in enumerate(doc, 1):
        errors += [RowError(number, e.column, e.message) for e in _check_header(list(rec))]
    if errors:
        raise ImportFailed(errors)
    return list(enumerate(doc, 1))


def _check_header(columns: list[str]) -> list[RowError]:
    unknown = [c for c in columns if c not in COLUMNS]
    required = {"id", "area", "strategy", "status"}
    missing = [c for c in COLUMNS if c in required and c not in columns]
    out = [RowError(1, c, "unknown column; columns are: " + ", ".join(COLUMNS)) for c in unknown]
    out += [RowError(1, c, "required column missing") for c in missing]
    return out


def _parse_cell(column: str, cell: str) -> Any:
    if column.startswith(("title/", "text/")):
        return cell or None  # texts verbatim: the round trip must be exact
    cell = cell.strip()
    if cell == "":
        return [] if column in ("owners", "milestones", "live") else None
    if column in JSON_COLUMNS:
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    if column == "owners":
        return [o.strip() for o in cell.split(";") if o.strip()]
    if column == "is_new":
        lowered = cell.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise ValueError(f"{cell!r} is not true or false")
    return cell  # numbers and dates: Pydantic parses and checks them


def validate(number: int, rec: dict[str, Any]) -> tuple[MeasureRow | None, list[RowError]]:
    """Validate one flat record; errors name the flat column (``title/en``, ``progress``)."""
    nested: dict[str, Any] = {}
    for key, value in rec.items():
        name, _, lang = key.partition("/")
        if lang:
            nested.setdefault(name, {})[lang] = value
        else:
            nested[key] = value
    for name in ("title", "text"):
        if isinstance(nested.get(name), dict):
            nested[name] = {k: v for k, v in nested[name].items() if v is not None}
    try:
        return MeasureRow.model_validate(nested), []
    except ValidationError as exc:
        return None, [_row_error(number, e) for e in exc.errors()]


def _row_error(number: int, error: Any) -> RowError:
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] in ("title", "text") and len(loc) > 1:
        column, rest = f"{loc[0]}/{loc[1]}", loc[2:]
    else:
        column, rest = (loc[0] if loc else "*"), loc[1:]
    where = f" (at {'.'.join(rest)})" if rest else ""
    if error["type"] == "missing" and len(loc) > 1 and loc[0] in ("title", "text"):
        return RowError(number, column, "required; give the text in all three languages")
    return RowError(number, column, f"{error['msg']}{where}")
