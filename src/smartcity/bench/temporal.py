"""Temporal aggregation benchmark: avg and max per hour over 30 days of 1-minute data for 100
entities (4.32 million instances), asked of a real server over HTTP.

The history is loaded straight into the tables (COPY on PostgreSQL, executemany on SQLite),
and the hourly rollup is built in one statement as migration 0002 does: loading 4.3 million
instances through the API would take longer than the benchmark itself.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from smartcity.bench.harness import Result, server
from smartcity.storage import schema
from smartcity.storage.engine import Database

ATTR = "https://smartdatamodels.org/dataModel.Environment/temperature"
ETYPE = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000_000
HOUR = 3_600_000_000
HOUR_OF = f"observed_at - (((observed_at % {HOUR}) + {HOUR}) % {HOUR})"


def _rows(entities: int, minutes: int) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(42)
    for m in range(minutes):
        t = T0 + m * MINUTE
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // 1_000_000))
        for hid in range(1, entities + 1):
            v = round(15 + 10 * rnd.random(), 2)
            doc = orjson.dumps({"type": "Property", "value": v, "observedAt": iso}).decode()
            yield (hid, ATTR, "", f"urn:ngsi-ld:attribute:instance:{hid}-{m}", t, t, t, v, doc)


def load(db: Database, entities: int, minutes: int) -> None:
    with db.write() as conn:
        conn.execute(
            schema.history_entities.insert(),
            [
                {
                    "hid": hid,
                    "tenant": "",
                    "entity_id": f"urn:ngsi-ld:AirQualityObserved:{hid}",
                    "types": [ETYPE],
                    "created_at": T0,
                    "modified_at": T0,
                }
                for hid in range(1, entities + 1)
            ],
        )
    columns = "hid, attr, dataset_id, instance_id, observed_at, created_at, modified_at, num, value"
    raw = db.engine.raw_connection()
    try:
        cur: Any = raw.cursor()  # the driver's own cursor (psycopg's COPY, sqlite3)
        if db.is_postgres:
            with cur.copy(f"COPY attr_history ({columns}) FROM STDIN") as copy:
                for row in _rows(entities, minutes):
                    copy.write_row(row)
        else:
            cur.execute("BEGIN")
            cur.executemany(
                f"INSERT INTO attr_history ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _rows(entities, minutes),
            )
        kind = "value->>'type'" if db.is_postgres else "json_extract(value, '$.type')"
        cur.execute(
            "INSERT INTO attr_history_hourly (hid, attr, hour, dataset_id, n, n_num, total, "
            "sumsq, vmin, vmax, first_at, last_at, kind) "
            f"SELECT hid, attr, {HOUR_OF}, dataset_id, COUNT(*), COUNT(num), "
            "COALESCE(SUM(num), 0), COALESCE(SUM(num * num), 0), MIN(num), MAX(num), "
            f"MIN(observed_at), MAX(observed_at), MAX({kind}) "
            f"FROM attr_history GROUP BY hid, attr, {HOUR_OF}, dataset_id"
        )
        raw.commit()
    finally:
        raw.close()
    with db.write() as conn:
        conn.execute(text("ANALYZE"))


def temporal_aggregation(
    db_url: str, workers: int, *, entities: int = 100, days: int = 30, repeat: int = 7
) -> list[Result]:
    minutes = days * 24 * 60
    db = Database(db_url)
    started = time.perf_counter()
    load(db, entities, minutes)
    load_seconds = time.perf_counter() - started
    db.dispose()
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + minutes * MINUTE) // 1_000_000))
    params = {
        "type": ETYPE,
        "attrs": ATTR,
        "aggrMethods": "avg,max",
        "aggrPeriodDuration": "PT1H",
        "timerel": "between",
        "timeAt": "2026-01-01T00:00:00Z",
        "endTimeAt": end,
        "limit": str(entities),
    }
    with server(db_url, workers) as base, httpx.Client(base_url=base, timeout=300) as http:
        times: list[float] = []
        size = 0
        for i in range(repeat + 1):
            t = time.perf_counter()
            response = http.get("/ngsi-ld/v1/temporal/entities", params=params)
            elapsed = time.perf_counter() - t
            if response.status_code != 200:
                raise RuntimeError(f"temporal query failed: {response.status_code} {response.text}")
            size = len(response.content)
            if i > 0:  # the first request warms the caches
                times.append(elapsed)
    return [
        Result(
            f"temporal avg+max per hour, {entities * minutes:,} instances",
            {
                "p50_ms": round(statistics.median(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "response_mb": round(size / 1e6, 1),
                "load_s": round(load_seconds, 1),
            },
        )
    ]
