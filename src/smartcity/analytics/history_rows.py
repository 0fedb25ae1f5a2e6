"""One attribute instance of the hub's history as one flat, typed row of the analytics Parquet.

The hub keeps each instance as JSON (``attr_history.value``), whatever its kind; analyses want
columns they can aggregate without parsing JSON, so the value is split by what it holds:
numbers in ``value_num``, strings and relationship targets in ``value_text``, booleans in
``value_bool``, and anything structured (GeoJSON, language maps, lists, JSON) as JSON text in
``value_json``. Names are given twice: the short name of the city @context (what analyses
write in their SQL: ``attribute = 'averageVehicleSpeed'``) and the full IRI.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import Any

import orjson
import pyarrow as pa

from smartcity.hub.contexts import city_context
from smartcity.hub.entity import VALUE_KEY

UTC_TS = pa.timestamp("us", tz="UTC")

# The columns of every file, in this order (the partition keys, ``type`` and ``date``, are in
# the directory names only; readers with hive partitioning get them as columns too).
SCHEMA = pa.schema(
    [
        pa.field("tenant", pa.string(), nullable=False),  # "" is the default tenant
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("entity_type", pa.string(), nullable=False),  # short name, else the IRI
        pa.field("entity_type_iri", pa.string(), nullable=False),
        pa.field("attribute", pa.string(), nullable=False),  # short name, else the IRI
        pa.field("attribute_iri", pa.string(), nullable=False),
        pa.field("attribute_type", pa.string(), nullable=False),  # Property, Relationship, ...
        pa.field("dataset_id", pa.string()),  # null for the default instance
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("observed_at", UTC_TS, nullable=False),  # observedAt, else when accepted
        pa.field("value_num", pa.float64()),
        pa.field("value_text", pa.string()),
        pa.field("value_bool", pa.bool_()),
        pa.field("value_json", pa.string()),
        pa.field("unit_code", pa.string()),
        pa.field("created_at", UTC_TS, nullable=False),  # when the hub accepted it
        # The record of a deletion (the Temporal API's urn:ngsi-ld:null): no value.
        pa.field("deleted", pa.bool_(), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def short_name(iri: str) -> str:
    """The city @context's term for ``iri`` (or its default-vocabulary name), else the IRI."""
    name = city_context().compact(iri)
    return iri if ":" in name else name


def expand(name: str) -> str:
    """A type or attribute as users type it (short name or IRI) to its IRI."""
    return city_context().expand(name)


def partition_key(short: str) -> str:
    """A directory-safe name for a type: the short name when it is one already; an IRI (a type
    the city @context does not name) becomes its last segment made safe plus 8 hex digits of
    its SHA-1, so two IRIs never share a partition and the name still says what it is."""
    if short and _SAFE.search(short) is None and not short.startswith((".", "_")):
        return short
    tail = re.split(r"[/#:]", short.rstrip("/#:"))[-1]
    slug = _SAFE.sub("_", tail).strip("._") or "type"
    return f"{slug[:60]}-{hashlib.sha1(short.encode()).hexdigest()[:8]}"


def local_date(t_us: int, offset_us: int) -> str:
    """The calendar date of ``t_us`` (microseconds since the epoch, UTC) at a fixed offset."""
    return (_EPOCH + timedelta(days=(t_us + offset_us) // DAY_US)).isoformat()


def split_value(
    instance: dict[str, Any], num: float | None, deleted: bool
) -> tuple[float | None, str | None, bool | None, str | None]:
    """(value_num, value_text, value_bool, value_json) of a stored instance."""
    if deleted:
        return None, None, None, None
    kind = instance.get("type", "Property")
    value = instance.get(VALUE_KEY.get(kind, "value"))
    if num is not None:
        return num, None, None, None
    if isinstance(value, bool):
        return None, None, value, None
    if isinstance(value, int | float):  # num is only missing for rows written before it
        return float(value), None, None, None
    if isinstance(value, str):
        return None, value, None, None
    if isinstance(value, dict) and isinstance(value.get("@value"), str) and kind == "Property":
        return None, value["@value"], None, None  # a typed literal: {"@type": "DateTime", ...}
    if value is None:
        return None, None, None, None
    return None, None, None, orjson.dumps(value).decode()


class RowBuffer:
    """Rows (tuples in ``COLUMNS`` order) on their way to one Parquet file."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def table(self) -> pa.Table:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(COLUMNS)
        return pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)],
            schema=SCHEMA,
        )
