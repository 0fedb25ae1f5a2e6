"""Shared benchmark plumbing: a real server process, wrk runs, and result records."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.table import Table

from smartcity.storage import migrate
from smartcity.storage.engine import Database


@dataclass
class Result:
    name: str
    figures: dict[str, float] = field(default_factory=dict)


def results_table(results: list[Result]) -> Table:
    """What every `smartcity bench ...` command prints: one row per scenario."""
    table = Table("scenario", "figures")
    for result in results:
        table.add_row(result.name, ", ".join(f"{k}={v}" for k, v in result.figures.items()))
    return table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A migrated, empty database: a temporary SQLite file, or a new PostgreSQL database."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="smartcity-bench-") as tmp:
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            db = Database(db_url)
            migrate.upgrade(db)
            db.dispose()
            yield db_url
        return
    from sqlalchemy import create_engine, text

    from smartcity.storage.engine import normalise_url

    name = f"smartcity_bench_{os.getpid()}"
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = url.rsplit("/", 1)[0] + "/" + name
    db = Database(db_url)
    with db.write() as c:
        c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    migrate.upgrade(db)
    db.dispose()
    try:
        yield db_url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def kept_database(url: str | None, name: str) -> Iterator[str]:
    """A migrated database kept between runs under ``name``: a SQLite file in the temporary
    directory, or a PostgreSQL database ``smartcity_bench_keep_<name>`` beside ``url``'s.
    Created when missing and brought to the current schema each run (so a new migration is
    measured on the data already there); never dropped: remove the file or drop the database
    to start over."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,40}", name):
        raise ValueError(f"--keep {name!r}: use letters, digits and _ (at most 40)")
    if url is None:
        db_url = f"sqlite:///{Path(tempfile.gettempdir()) / f'smartcity-bench-keep-{name}.db'}"
    else:
        from sqlalchemy import create_engine, text

        from smartcity.storage.engine import normalise_url

        database = f"smartcity_bench_keep_{name.lower()}"
        admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                found = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database}
                ).first()
                if found is None:
                    conn.execute(text(f'CREATE DATABASE "{database}"'))
        finally:
            admin.dispose()
        db_url = url.rsplit("/", 1)[0] + "/" + database
    db = Database(db_url)
    try:
        if db.engine.dialect.name == "postgresql":
            with db.write() as c:
                c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        migrate.upgrade(db)
    finally:
        db.dispose()
    yield db_url


@contextmanager
def server(database_url: str, workers: int, pids: list[int] | None = None) -> Iterator[str]:
    """A real ``smartcity serve`` process on a free port; yields its URL (its process id is
    appended to ``pids``)."""
    port = free_port()
    env = {**os.environ, "SMARTCITY_DATABASE_URL": database_url}
    command = ["-m", "smartcity", "serve", "--no-auth", "--workers", str(workers)]
    with _process(command, port, env, pids, ready="/healthz") as base:
        yield base


@contextmanager
def bare_server(workers: int) -> Iterator[str]:
    """The bare ASGI app of ``bench/bare.py`` under the same uvicorn settings as ``serve``."""
    port = free_port()
    command = ["-m", "uvicorn", "smartcity.bench.bare:app", "--no-access-log"]
    command += ["--workers", str(workers)]
    with _process(command, port, dict(os.environ), None, ready="/") as base:
        yield base


@contextmanager
def _process(
    command: list[str], port: int, env: dict[str, str], pids: list[int] | None, ready: str
) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, *command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start; run `{' '.join(command)}` to see why"
                )
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, script: str, *, seconds: int, connections: int, threads: int = 1
) -> dict[str, float]:
    """Run wrk with a Lua script; returns requests/s, p50 and p99 latency (ms), non-2xx count."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "60s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        ).stdout
    finally:
        os.unlink(path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    if timeouts and int(timeouts.group(1)):
        raise RuntimeError(f"{timeouts.group(1)} requests timed out; wrk said:\n{out}")
    return {
        "rps": rps,
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100, nearest rank) of ``values``."""
    if not 1 <= q <= 100:
        # 0.95 for the 95th was once passed here and reported the fastest run as p95.
        raise ValueError(f"percentile: q is in percent (1 to 100), got {q}")
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
