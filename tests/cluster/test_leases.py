"""The scheduler's leases (storage/leases.py) between several schedulers in one process, as
several nodes would hold them: one runs each job, another takes over when it stops renewing,
the period is the cluster's. The two-process version is test_nodes.py."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from smartcity.storage.engine import Database
from smartcity.storage.leases import Scheduler
from smartcity.storage.schema import cluster_leases

LEASE = 0.6


def wait_for(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout} s")


def lease_row(db: Database, name: str) -> object:
    with db.read() as conn:
        return conn.execute(select(cluster_leases).where(cluster_leases.c.name == name)).one()


def test_one_of_two_nodes_runs_a_job_and_the_other_takes_over(db: Database) -> None:
    runs: list[str] = []
    lock = threading.Lock()
    a = Scheduler(db, lease_s=LEASE, shared=True, node="a")
    b = Scheduler(db, lease_s=LEASE, shared=True, node="b")

    def job(node: str) -> None:
        with lock:
            runs.append(node)

    a.every("sweep", 0.2, lambda: job("a"))
    time.sleep(0.05)
    b.every("sweep", 0.2, lambda: job("b"))
    try:
        time.sleep(1.5)
        with lock:
            seen = list(runs)
        assert set(seen) == {"a"}, seen  # a took it first and keeps it
        # every 0.2 s for 1.5 s: about 8 runs, and never twice as many (two nodes)
        assert 5 <= len(seen) <= 10, seen
        assert lease_row(db, "sweep").holder == "a"  # type: ignore[attr-defined]
        # a dies without giving anything back: its renewals and runs stop at once
        a._closing.set()
        for j in list(a._jobs.values()):
            j.stop_event.set()
        died = time.monotonic()
        wait_for(lambda: "b" in runs, b.takeover_bound_s + 0.5)
        took = time.monotonic() - died
        assert took <= b.takeover_bound_s + 0.3, took
        assert lease_row(db, "sweep").holder == "b"  # type: ignore[attr-defined]
    finally:
        b.close()
        a.close()
    row = lease_row(db, "sweep")
    assert row.holder is None  # type: ignore[attr-defined]  # given back on a clean stop
    assert row.runs == len(runs)  # type: ignore[attr-defined]


def test_a_node_taking_over_waits_for_the_clusters_period(db: Database) -> None:
    runs: list[float] = []
    a = Scheduler(db, lease_s=LEASE, shared=True, node="a")
    stop = a.every("hourly", 3600, lambda: runs.append(time.monotonic()))
    wait_for(lambda: runs, 2)
    stop()  # a clean stop gives the lease back at once
    b = Scheduler(db, lease_s=LEASE, shared=True, node="b")
    b.every("hourly", 3600, lambda: runs.append(time.monotonic()))
    try:
        wait_for(lambda: lease_row(db, "hourly").holder == "b", 2)  # type: ignore[attr-defined]
        time.sleep(0.3)
        assert len(runs) == 1  # ran an instant ago on a: not due again for an hour
    finally:
        b.close()


def test_a_failing_job_keeps_its_schedule(db: Database) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("the feed is down")

    s = Scheduler(db, lease_s=LEASE, shared=True)
    s.every("broken", 0.1, broken)
    try:
        wait_for(lambda: len(calls) >= 3, 3)
    finally:
        s.close()


def test_on_sqlite_by_default_jobs_run_locally_without_the_table(db: Database) -> None:
    s = Scheduler(db, lease_s=LEASE)
    ran = threading.Event()
    s.every("local", 0.1, ran.set)
    try:
        assert ran.wait(2)
    finally:
        s.close()
    with db.read() as conn:
        rows = conn.execute(select(cluster_leases)).all()
    assert bool(rows) == db.is_postgres


def test_db_jobs_shows_who_runs_each_job(db: Database) -> None:
    from typer.testing import CliRunner

    from smartcity.cli.main import app

    s = Scheduler(db, lease_s=LEASE, shared=True, node="node-7")
    ran = threading.Event()
    s.every("sweep", 3600, ran.set)
    try:
        assert ran.wait(2)
        time.sleep(0.1)  # the run is recorded after it returns
        shown = CliRunner().invoke(app, ["db", "jobs", "--database", db.url], terminal_width=200)
    finally:
        s.close()
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if "sweep" in x)
    assert "node-7" in line and "s left" in line and "never" not in line, shown.output
    after = CliRunner().invoke(app, ["db", "jobs", "--database", db.url], terminal_width=200)
    assert "free" in next(x for x in after.output.splitlines() if "sweep" in x)
