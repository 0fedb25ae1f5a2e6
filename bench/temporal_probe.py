"""Quick local measurement of a temporal aggregation (not a test).

Loads N entities x M minutes of 1-minute numeric data straight into a database (bypassing
the API: plain INSERTs, then the hourly rollup built in one statement as migration 0002
does), then times "avg and max per hour over the whole range for all entities" through
TemporalService, then as a whole GET /temporal/entities request (in-process client), and
with --raw the same aggregation over the raw instances, for comparison.

    python bench/temporal_probe.py                      # 100 x 10,000 min = 1M rows, SQLite
    python bench/temporal_probe.py --minutes 43200      # 30 days = 4.3M rows
    python bench/temporal_probe.py --database postgresql://postgres@127.0.0.1:5432/probe

The SQLite file is kept (and reused when the sizes match) under /tmp; a PostgreSQL database
must exist and is emptied first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import text

from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.temporal import repository as repo
from smartcity.hub.temporal.service import TemporalQuery, TemporalService
from smartcity.storage import migrate, schema
from smartcity.storage.engine import Database

ATTR = "https://smartdatamodels.org/dataModel.Environment/temperature"
ETYPE = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000_000
HOUR = 3_600_000_000
HOUR_OF = f"observed_at - (((observed_at % {HOUR}) + {HOUR}) % {HOUR})"


def rows(entities: int, minutes: int) -> Iterator[tuple[Any, ...]]:
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
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(table.delete())
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
                for row in rows(entities, minutes):
                    copy.write_row(row)
        else:
            cur.execute("BEGIN")
            cur.executemany(
                f"INSERT INTO attr_history ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows(entities, minutes),
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


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    fn()  # warm the caches
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="default: a SQLite file under /tmp")
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--raw", action="store_true", help="also time it without the rollup")
    args = parser.parse_args()
    url = args.database or f"sqlite:////tmp/temporal_probe_{args.entities}x{args.minutes}.db"
    db = Database(url)
    migrate.upgrade(db)
    with db.read() as conn:
        have = conn.execute(text("SELECT COUNT(*) FROM attr_history")).scalar_one()
    total = args.entities * args.minutes
    if have != total:
        start = time.perf_counter()
        load(db, args.entities, args.minutes)
        print(f"loaded {total:,} rows in {time.perf_counter() - start:.1f} s")
    service = TemporalService(db, EntityService(db))
    tq = TemporalQuery(
        timerel="between",
        time_at=T0,
        end_time_at=T0 + args.minutes * MINUTE,
        aggr_methods=["avg", "max"],
        aggr_period=HOUR,
    )
    query = EntityQuery(types=[frozenset({ETYPE})])

    def via_service() -> Any:
        return service.query("", query, tq, attrs=[ATTR], limit=args.entities)

    def raw_sql() -> Any:
        series = repo.Series(
            hids=list(range(1, args.entities + 1)), attrs=[ATTR], lo=tq.time_at, hi=tq.end_time_at
        )
        with db.read() as conn:
            return repo.aggregate(conn, series, methods=["avg", "max"], origin=T0, period=HOUR)

    p50, result = timed(via_service, args.repeat)
    periods = sum(len(a.starts) for e in result.entities for a in e.aggregates[ATTR].values())
    backend = "postgresql" if db.is_postgres else "sqlite"
    print(
        f"{backend}: {total:,} rows, {args.entities} entities, avg+max per hour: "
        f"p50 {p50 * 1000:.0f} ms via TemporalService (hourly rollup), {periods:,} periods"
    )
    p50_http, size = timed(lambda: via_http(url, args.entities, args.minutes), args.repeat)
    print(
        f"{backend}: the same as GET /temporal/entities (in-process client, "
        f"{size / 1e6:.1f} MB of JSON): p50 {p50_http * 1000:.0f} ms"
    )
    if args.raw:
        p50_raw, _ = timed(raw_sql, max(1, args.repeat // 3))
        print(f"{backend}: the same over the raw instances: p50 {p50_raw * 1000:.0f} ms")
    db.dispose()


_clients: dict[str, Any] = {}


def via_http(url: str, entities: int, minutes: int) -> int:
    """The whole request: parameters, service, rendering, JSON. Returns the body size."""
    from fastapi.testclient import TestClient

    from smartcity.app import create_app
    from smartcity.config import Settings

    if url not in _clients:
        _clients[url] = TestClient(create_app(Settings(database_url=url, auth_required=False)))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + minutes * MINUTE) // 1_000_000))
    response = _clients[url].get(
        "/ngsi-ld/v1/temporal/entities",
        params={
            "type": ETYPE,
            "attrs": ATTR,
            "aggrMethods": "avg,max",
            "aggrPeriodDuration": "PT1H",
            "timerel": "between",
            "timeAt": "2026-01-01T00:00:00Z",
            "endTimeAt": end,
            "limit": entities,
        },
    )
    assert response.status_code == 200, response.text
    return len(response.content)


if __name__ == "__main__":
    main()
