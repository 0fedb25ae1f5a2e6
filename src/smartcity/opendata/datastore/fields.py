"""DataStore fields: their types, the database column each becomes, and how a value (from
JSON or from a text cell of a file) is turned into that type.

Types are CKAN's names, with its aliases: ``text``, ``int`` (int4, int8, integer, bigint),
``float`` (float8, numeric, double, real: a double-precision number), ``bool`` (boolean),
``date``, ``timestamp`` (no time zone: values with an offset are converted to UTC) and
``json``. On SQLite dates and timestamps are ISO text in one fixed format, so they sort and
compare as on PostgreSQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

TYPES = ("text", "int", "float", "bool", "date", "timestamp", "json")
ALIASES = {
    "int4": "int",
    "int8": "int",
    "integer": "int",
    "bigint": "int",
    "float8": "float",
    "numeric": "float",
    "number": "float",
    "double": "float",
    "real": "float",
    "boolean": "bool",
    "string": "text",
    "varchar": "text",
    "datetime": "timestamp",
    "jsonb": "json",
}
TRUE = frozenset({"true", "t", "yes", "y", "1"})
FALSE = frozenset({"false", "f", "no", "n", "0"})
_DATE = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_INT = re.compile(r"^[+-]?\d{1,18}$")
MAX_ID_BYTES = 63  # PostgreSQL's identifier limit


def canonical_type(name: str) -> str | None:
    folded = str(name).strip().lower()
    folded = ALIASES.get(folded, folded)
    return folded if folded in TYPES else None


@dataclass(frozen=True)
class Field:
    id: str
    type: str
    info: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.info:
            out["info"] = self.info
        return out


def check_field_id(name: str) -> str | None:
    """Why ``name`` cannot be a field id (CKAN's rules plus the database's), or None."""
    if not name or not name.strip():
        return "a field id may not be empty"
    if name.startswith("_"):
        return f"field id {name!r} may not start with an underscore (reserved, as _id)"
    if '"' in name or "\x00" in name or "%" in name:
        return f"field id {name!r} may not contain double quotes, % or NUL"
    if len(name.encode()) > MAX_ID_BYTES:
        return f"field id {name!r} is longer than {MAX_ID_BYTES} bytes"
    return None


def column_type(type_name: str) -> TypeEngine[Any]:
    match type_name:
        case "int":
            return BigInteger()
        case "float":
            return Double()
        case "bool":
            return Boolean()
        case "date":
            return Date()
        case "timestamp":
            return DateTime()
        case "json":
            return JSON().with_variant(JSONB(), "postgresql")
        case _:
            return Text()


class BadValue(ValueError):
    pass


def to_python(type_name: str, value: Any) -> Any:
    """``value`` (JSON or a text cell) as the field's Python value; None for empty text;
    BadValue saying what was expected otherwise."""
    if value is None:
        return None
    if isinstance(value, str) and type_name != "text" and not value.strip():
        return None
    try:
        match type_name:
            case "text":
                if isinstance(value, dict | list):
                    return orjson.dumps(value).decode()
                return value if isinstance(value, str) else _scalar_text(value)
            case "int":
                return _int(value)
            case "float":
                return _float(value)
            case "bool":
                return _bool(value)
            case "date":
                return _date(value)
            case "timestamp":
                return _timestamp(value)
            case "json":
                if isinstance(value, str):
                    try:
                        return orjson.loads(value)
                    except orjson.JSONDecodeError:
                        return value  # a plain string is JSON too
                return value
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadValue(f"{value!r} is not a valid {type_name}") from exc
    raise BadValue(f"unknown type {type_name}")


# -- the common shapes of a text cell, read fast (the loader's CSV path) --------------------
# Each gives exactly what to_python gives for the cells it accepts and raises ValueError for
# any other cell, which then takes to_python's path (and its error message).


def _fast_int(cell: str) -> int | None:
    if not cell:
        return None
    if len(cell) <= 18 and cell.isascii() and cell.isdigit():
        return int(cell)
    raise ValueError(cell)


def _fast_float(cell: str) -> float | None:
    if not cell:
        return None
    if "," in cell:
        raise ValueError(cell)
    number = float(cell)
    if not math.isfinite(number):
        raise ValueError(cell)
    return number


def _fast_date(cell: str) -> date | None:
    if not cell:
        return None
    if len(cell) == 10 and cell[4] == "-" and cell[7] == "-" and cell.isascii():
        return date.fromisoformat(cell)  # validates (2024-02-30 raises)
    raise ValueError(cell)


_ISO_DATES = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2})*")


def _int_column(cells: Sequence[str]) -> Sequence[Any]:
    joined = "".join(cells)
    if "" not in cells and joined.isascii() and joined.isdigit() and max(map(len, cells)) <= 18:
        return list(map(int, cells))  # every cell is 1-18 ASCII digits: int() reads it as _INT
    return [_fast_int(c) for c in cells]


def _float_column(cells: Sequence[str]) -> Sequence[Any]:
    if "" in cells or "," in "".join(cells):
        return [_fast_float(c) for c in cells]
    numbers = list(map(float, cells))
    if not all(map(math.isfinite, numbers)):
        raise ValueError("not finite")
    return numbers


def _date_column(cells: Sequence[str]) -> Sequence[Any]:
    if "" not in cells and set(map(len, cells)) == {10} and _ISO_DATES.fullmatch("".join(cells)):
        return list(map(date.fromisoformat, cells))  # YYYY-MM-DD each; fromisoformat validates
    return [_fast_date(c) for c in cells]


def fast_text_column(type_name: str) -> Callable[[Sequence[str]], Sequence[Any]]:
    """A converter of one column of text cells (a batch of a CSV) for a field of
    ``type_name``: what to_python gives for each cell, or ValueError when any cell is not in
    the shapes above. Whole columns at a time so that the common case runs in C (map, join)."""
    match type_name:
        case "text":
            return lambda cells: cells
        case "int":
            return _int_column
        case "float":
            return _float_column
        case "date":
            return _date_column

    def general(cells: Sequence[str]) -> Sequence[Any]:
        try:
            return [to_python(type_name, c) for c in cells]
        except BadValue as exc:
            raise ValueError(str(exc)) from exc

    return general


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    text = str(value).strip().replace(",", "")
    if not _INT.match(text):
        raise ValueError(text)
    return int(text)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value.strip().replace(",", "") if isinstance(value, str) else value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    folded = str(value).strip().lower()
    if folded in TRUE:
        return True
    if folded in FALSE:
        return False
    raise ValueError(value)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not _DATE.match(text):
        raise ValueError(text)
    year, month, day = (int(p) for p in re.split(r"[-/]", text))
    return date(year, month, day)


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if _DATE.match(text):
            return datetime.combine(_date(text), datetime.min.time())
        if not _TIMESTAMP.match(text):
            raise ValueError(text)
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if found.tzinfo is not None:
        found = found.astimezone(UTC).replace(tzinfo=None)
    return found


def to_json(value: Any) -> Any:
    """A value read from a table, as an answer shows it (PostgreSQL's numeric results of
    sum() and the like as numbers)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_text(value: Any) -> str:
    """A value read from a table, as a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


# -- inference ----------------------------------------------------------------------------

# The order types are tried in: the narrowest that reads every non-empty sampled value wins.
INFER_ORDER = ("int", "float", "bool", "date", "timestamp")


def infer_type(values: list[str]) -> str:
    """The narrowest type that reads every non-empty value of a sample; text otherwise.
    Booleans only from words (true/false, yes/no), never from 0/1, which stay numbers."""
    present = [v for v in values if v is not None and str(v).strip()]
    if not present:
        return "text"
    for candidate in INFER_ORDER:
        if candidate == "date" and any(
            isinstance(v, datetime) and v.time() != datetime.min.time() for v in present
        ):
            continue  # spreadsheet cells with a time of day are timestamps
        if candidate == "bool" and not all(
            str(v).strip().lower() in ("true", "false", "yes", "no") for v in present
        ):
            continue
        try:
            for v in present:
                to_python(candidate, v)
        except BadValue:
            continue
        return candidate
    return "text"
