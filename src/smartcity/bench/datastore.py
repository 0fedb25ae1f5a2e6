"""``smartcity bench opendata datastore``: the DataStore's load rate and ``datastore_search``
beside Datasette on the same rows (issue #8, items 4 and 11).

In one run, on a fresh database: write an N-row CSV, load it (rows/s, through the same
``load_file`` the command line and uploads use), then time ``datastore_search`` with a
filter, a sort and 100 rows through the Action API in process, and, when Datasette is
installed (it is not a dependency), the same query through Datasette's own in-process
client on a SQLite copy of the same rows (``?district=...&_sort_desc=spaces&_size=100``).
"""

from __future__ import annotations

import asyncio
import csv
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartcity.bench.harness import Result, fresh_database, percentile

DISTRICTS = ["中西區", "灣仔", "東區", "南區", "油尖旺", "深水埗", "九龍城", "黃大仙", "觀塘",
             "荃灣", "屯門", "元朗", "北區", "大埔", "西貢", "沙田", "葵青", "離島"]  # fmt: skip
FIELDS = ["district", "spaces", "rate", "day", "note"]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(8)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for i in range(rows):
            writer.writerow(
                [
                    rng.choice(DISTRICTS),
                    rng.randrange(0, 2000),
                    f"{rng.random() * 40:.2f}",
                    f"2024-{rng.randrange(1, 13):02}-{rng.randrange(1, 29):02}",
                    f"car park {i}",
                ]
            )


def _timed(run: Callable[[], Any], repeat: int) -> dict[str, float]:
    run()  # warm caches and plans
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50 ms": percentile(times, 0.5), "p95 ms": percentile(times, 0.95)}


def run(
    database: str | None, *, rows: int, repeat: int, progress: Callable[[str], None]
) -> list[Result]:
    from fastapi.testclient import TestClient

    from smartcity.app import create_app
    from smartcity.config import OpenDataSettings, Settings
    from smartcity.opendata.datastore.loader import load_file

    results: list[Result] = []
    with fresh_database(database) as url, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        progress(f"writing {rows} rows")
        source = tmp / "spaces.csv"
        write_csv(source, rows)
        settings = Settings(
            database_url=url, auth_required=False, opendata=OpenDataSettings(data_dir=tmp)
        )
        with TestClient(create_app(settings)) as client:
            od = client.app.state.opendata  # type: ignore[attr-defined]

            def act(_action: str, **data: Any) -> Any:
                return client.post(f"/api/3/action/{_action}", json=data).json()["result"]

            act("organization_create", name="bench", title="Bench")
            act("package_create", name="bench", owner_org="bench")
            rid = act("resource_create", package_id="bench", url="https://x.example/s.csv")["id"]
            progress("loading")
            start = time.perf_counter()
            report = load_file(od.datastore, rid, source)
            seconds = time.perf_counter() - start
            results.append(
                Result(
                    "datastore load (CSV)",
                    {
                        "rows": report.rows_loaded,
                        "s": seconds,
                        "rows/s": report.rows_loaded / seconds,
                    },
                )
            )
            act("datastore_create", resource_id=rid, indexes=["district", "spaces"])
            query = {
                "resource_id": rid,
                "filters": {"district": "沙田"},
                "sort": "spaces desc",
                "limit": 100,
            }
            progress("datastore_search")
            results.append(
                Result(
                    "datastore_search filter+sort+100",
                    _timed(
                        lambda: client.post("/api/3/action/datastore_search", json=query), repeat
                    ),
                )
            )
        results.extend(_datasette(source, repeat, progress))
    return results


def _datasette(
    source: Path, repeat: int, progress: Callable[[str], None]
) -> list[Result]:
    try:
        from datasette.app import Datasette  # an optional install, for this benchmark only
    except ImportError:
        return [Result("datasette (not installed: skipped)", {})]
    progress("datasette")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        with sqlite3.connect(path) as conn, source.open(encoding="utf-8", newline="") as f:
            conn.execute(
                "CREATE TABLE spaces "
                "(district TEXT, spaces INTEGER, rate REAL, day TEXT, note TEXT)"
            )
            reader = csv.reader(f)
            next(reader)
            conn.executemany("INSERT INTO spaces VALUES (?, ?, ?, ?, ?)", reader)
            conn.execute("CREATE INDEX ix_district ON spaces (district)")
            conn.execute("CREATE INDEX ix_spaces ON spaces (spaces)")
        ds = Datasette([str(path)])
        url = "/bench/spaces.json?district=%E6%B2%99%E7%94%B0&_sort_desc=spaces&_size=100"

        def once() -> None:
            response = asyncio.run(ds.client.get(url))
            assert response.status_code == 200, response.text

        return [Result("datasette same query", _timed(once, repeat))]
