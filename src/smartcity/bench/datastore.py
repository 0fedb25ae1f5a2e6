"""``smartcity bench opendata datastore``: the DataStore's load rate and ``datastore_search``
beside Datasette on the same rows (issue #8, items 4 and 11).

In one run, on a fresh database: write an N-row CSV, load it (rows/s, through the same
``load_file`` the command line and uploads use), then time ``datastore_search`` with a
filter, a sort and 100 rows against a real ``smartcity serve``, and, when Datasette is
installed (it is not a dependency), the same query against ``datasette serve`` on a SQLite
copy of the same rows with the same indexes (``?district=...&_sort_desc=spaces&_size=100``),
each over one kept-alive HTTP connection.
"""

from __future__ import annotations

import csv
import importlib.util
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from smartcity.bench.harness import Result, free_port, fresh_database, percentile, server

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
    return {"p50 ms": percentile(times, 50), "p95 ms": percentile(times, 95)}


def run(
    database: str | None, *, rows: int, repeat: int, progress: Callable[[str], None]
) -> list[Result]:
    from smartcity.config import OpenDataSettings
    from smartcity.opendata.catalogue.access import NO_AUTH
    from smartcity.opendata.catalogue.organisations import ORGANIZATION
    from smartcity.opendata.datastore.loader import load_file
    from smartcity.opendata.languages import DEFAULT
    from smartcity.opendata.runtime import build_opendata
    from smartcity.storage.engine import Database

    results: list[Result] = []
    with fresh_database(database) as url, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        progress(f"writing {rows} rows")
        source = tmp / "spaces.csv"
        write_csv(source, rows)
        db = Database(url)
        try:
            od = build_opendata(db, OpenDataSettings(data_dir=tmp))
            bench = {"name": "bench", "title": "Bench", "owner_org": "bench"}
            od.organisations.create(ORGANIZATION, NO_AUTH, DEFAULT, "", bench)
            od.catalogue.package_create(NO_AUTH, DEFAULT, "", bench)
            link = {"package_id": "bench", "url": "https://x.example/s.csv"}
            rid = od.catalogue.resource_create(NO_AUTH, DEFAULT, "", link, None)["id"]
            progress("loading")
            start, cpu_start = time.perf_counter(), time.process_time()
            report = load_file(od.datastore, rid, source)
            seconds = time.perf_counter() - start
            # This process's CPU time: on a shared machine, rows per CPU second is what the
            # load would reach alone (PostgreSQL's own work is in its processes, not here).
            cpu = time.process_time() - cpu_start
            od.datastore.create(NO_AUTH, rid, [], None, ["district", "spaces"], [])
        finally:
            db.dispose()
        results.append(
            Result(
                "datastore load (CSV)",
                {
                    "rows": report.rows_loaded,
                    "s": seconds,
                    "rows/s": report.rows_loaded / seconds,
                    "rows per CPU s": report.rows_loaded / cpu,
                },
            )
        )
        query = {"resource_id": rid, "filters": '{"district": "沙田"}', "sort": "spaces desc"}
        progress("datastore_search")
        with server(url, workers=1) as base, httpx.Client(base_url=base) as http:

            def search() -> None:
                response = http.get("/api/3/action/datastore_search", params=query)
                assert response.status_code == 200, response.text

            results.append(Result("datastore_search filter+sort+100", _timed(search, repeat)))
        results.extend(_datasette(source, repeat, progress))
    return results


def _datasette_command() -> list[str] | None:
    """Datasette in this environment, or a ``datasette`` on PATH (installed apart, e.g.
    ``pipx install datasette``, so that its pins never touch the platform's environment)."""
    if importlib.util.find_spec("datasette") is not None:
        return [sys.executable, "-m", "datasette"]
    found = shutil.which("datasette")
    return [found] if found else None


def _datasette(source: Path, repeat: int, progress: Callable[[str], None]) -> list[Result]:
    """The same rows and query on ``datasette serve`` (a SQLite copy, the same indexes)."""
    command = _datasette_command()
    if command is None:
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
        port = free_port()
        proc = subprocess.Popen(
            [*command, "serve", str(path), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            with httpx.Client(base_url=base) as http:
                while True:
                    try:
                        if http.get("/-/versions.json", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None or time.monotonic() > deadline:
                        return [Result("datasette (did not start: skipped)", {})]
                    time.sleep(0.2)
                params = {"district": "沙田", "_sort_desc": "spaces", "_size": "100"}

                def once() -> None:
                    response = http.get("/bench/spaces.json", params=params)
                    assert response.status_code == 200, response.text

                return [Result("datasette same query", _timed(once, repeat))]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
