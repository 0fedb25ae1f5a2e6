"""Readings for an analysis, as one long Arrow table: ``entity_id, attr, t, value``.

From the hub's history through its temporal service, in process (the hub keeps every reading
the devices sent, with its ``observedAt``), or from Parquet: ``smartcity history export``'s
files (analytics/history.py), or files of these four columns. The
analyses then register the table with an engine and ask their questions in SQL, so where the
readings came from makes no difference to them.

Numeric values only: an analysis of counts, speeds and flows has no use for text, and a
reading that is not a number is left out (``value`` is a double).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from smartcity.hub.contexts import city_context
from smartcity.hub.querying import EntityQuery
from smartcity.hub.temporal.service import TemporalQuery, TemporalService

SCHEMA = pa.schema(
    [
        ("entity_id", pa.string()),
        ("attr", pa.string()),  # the city context's short name (peopleCount, inflow...)
        ("t", pa.timestamp("us", tz="UTC")),
        ("value", pa.float64()),
    ]
)
# Entities per temporal query page (only their ids are asked for at first).
PAGE = 500


def from_hub(
    temporal: TemporalService,
    entity_type: str,
    attrs: Sequence[str],
    start_us: int,
    end_us: int,
    *,
    ids: Sequence[str] | None = None,
    tenant: str = "",
    windows: Sequence[tuple[int, int]] | None = None,
) -> pa.Table:
    """Every numeric reading of ``attrs`` (short names) of the entities of ``entity_type`` (or
    just ``ids``) observed in [start, end); with ``windows``, only in those [lo, hi) ranges
    inside it (the water analysis reads 02:00-04:00 of each night, a twelfth of the day)."""
    ctx = city_context()
    iris = {ctx.expand(a): a for a in attrs}
    wanted = _entities(temporal, ctx.expand(entity_type), list(iris), start_us, end_us, ids, tenant)
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    ranges = [(max(lo, start_us), min(hi, end_us)) for lo, hi in windows or [(start_us, end_us)]]
    for entity_id in wanted:
        for first, last in ranges:
            if first < last:
                _read(temporal, tenant, entity_id, iris, first, last, columns)
    return pa.table(columns, schema=SCHEMA)


def _read(
    temporal: TemporalService,
    tenant: str,
    entity_id: str,
    iris: dict[str, str],
    lo: int,
    hi: int,
    columns: dict[str, list[object]],
) -> None:
    seen: set[tuple[str, int]] = set()
    while True:  # pages, when the server's instance limit cuts one entity's evolution
        tq = TemporalQuery(timerel="between", time_at=lo, end_time_at=hi)
        result = temporal.retrieve(tenant, entity_id, tq, attrs=list(iris))
        for entity in result.entities:
            for iri, instances in entity.instances.items():
                for inst in instances:
                    value = inst.value.get("value")
                    key = (iri, inst.t)
                    if key in seen or isinstance(value, bool):
                        continue
                    if not isinstance(value, int | float):
                        continue
                    seen.add(key)
                    columns["entity_id"].append(entity_id)
                    columns["attr"].append(iris[iri])
                    columns["t"].append(inst.t)
                    columns["value"].append(float(value))
        if result.partial is None or result.partial[1] <= lo:
            return
        lo = result.partial[1]


def with_micros(readings: pa.Table) -> pa.Table:
    """``readings`` plus ``t_us``: the time as µs since the epoch (int64), so the analyses' SQL
    does integer arithmetic on time and needs no engine's date functions (it transpiles to
    Spark as it is)."""
    if "t_us" in readings.column_names:
        return readings
    return readings.append_column("t_us", readings.column("t").cast(pa.int64()))


def from_parquet(paths: str | Path | Sequence[str | Path]) -> pa.Table:
    """Readings from Parquet: files or folders (hive partitions) of ``smartcity history
    export`` (one row per attribute instance: ``entity_id, attribute, observed_at, value_num,
    deleted``...), or of this module's four columns (``entity_id, attr, t, value``)."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    tables = []
    for f in files:
        path = Path(f)
        if path.is_dir():
            table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table()
        else:
            table = pq.read_table(str(path))
        tables.append(_as_readings(table, str(path)))
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


# The columns of the history export (analytics/history_rows.py) that make a reading.
EXPORT_COLUMNS = ("entity_id", "attribute", "observed_at", "value_num")


def _as_readings(table: pa.Table, where: str) -> pa.Table:
    names = set(table.column_names)
    if table.num_rows == 0 and not names - {"type", "date"}:
        return SCHEMA.empty_table()  # a folder with nothing exported yet
    if set(SCHEMA.names) <= names:
        return table.select(SCHEMA.names).cast(SCHEMA)
    if set(EXPORT_COLUMNS) <= names:
        if "deleted" in names:
            table = table.filter(pc.invert(table.column("deleted")))
        table = table.filter(pc.is_valid(table.column("value_num")))
        return pa.table(
            {
                "entity_id": table.column("entity_id"),
                "attr": table.column("attribute"),
                "t": table.column("observed_at"),
                "value": table.column("value_num"),
            }
        ).cast(SCHEMA)
    raise ValueError(
        f"{where}: not readings; expected the history export's columns "
        f"({', '.join(EXPORT_COLUMNS)}) or {', '.join(SCHEMA.names)}"
    )


def _entities(
    temporal: TemporalService,
    type_iri: str,
    attr_iris: list[str],
    start_us: int,
    end_us: int,
    ids: Sequence[str] | None,
    tenant: str,
) -> list[str]:
    """The ids of the entities with a reading in the range (their newest one is enough)."""
    out: list[str] = []
    offset = 0
    tq = TemporalQuery(timerel="between", time_at=start_us, end_time_at=end_us, last_n=1)
    query = EntityQuery(types=[frozenset({type_iri})], ids=list(ids) if ids else None)
    while True:
        result = temporal.query(tenant, query, tq, attrs=attr_iris, limit=PAGE, offset=offset)
        out.extend(e.entity_id for e in result.entities if any(e.instances.values()))
        if len(result.entities) < PAGE:
            return out
        offset += PAGE
