"""``smartcity history retain``: old months of history leave the database for Parquet in the
export's layout, every row accounted for, on SQLite and PostgreSQL (where a month is a
partition, detached and dropped); temporal queries over them answer 410 Gone, queries over the
months kept answer as before; a rerun does nothing and a run stopped half-way is completed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from tests.city_context import city_link
from typer.testing import CliRunner

from smartcity.analytics.retain import retain
from smartcity.cli.main import app
from smartcity.storage import partitions, schema
from smartcity.storage.engine import Database

T = "/ngsi-ld/v1/temporal/entities"
HEADERS = {"Content-Type": "application/json", **city_link()}
FLOW = "urn:ngsi-ld:TrafficFlowObserved:AID01101"
PARK = "urn:ngsi-ld:OffStreetParking:kaitak"
JAN = datetime(2025, 1, 30, 12, 0, tzinfo=UTC)  # runs over into February 1st, HK and UTC
JUN = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 15, tzinfo=UTC)  # keep 400 days: from 2025-02 on
KEEP_US = 400 * 86_400_000_000
JANUARY = partitions.month_of(int(JAN.timestamp() * 1e6))


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def readings(start: datetime, n: int, step: timedelta, base: float) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": base + k, "observedAt": iso(start + k * step)}
        for k in range(n)
    ]


def seed(client: TestClient) -> None:
    # 2025-01-30 12:00 on, every 2 hours: 30 readings, 18 in January (UTC), 12 in February.
    for doc in (
        {
            "id": FLOW,
            "type": "TrafficFlowObserved",
            "averageVehicleSpeed": readings(JAN, 30, timedelta(hours=2), 40.0)
            + readings(JUN, 6, timedelta(minutes=10), 70.0),
        },
        {
            "id": PARK,
            "type": "OffStreetParking",
            "availableSpotNumber": readings(JAN + timedelta(hours=1), 5, timedelta(hours=1), 1)
            + readings(JUN, 3, timedelta(hours=1), 9),
        },
    ):
        r = client.post(T, json=doc, headers=HEADERS)
        assert r.status_code == 201, r.text


def month_rows(db: Database, month: int) -> list[tuple[str, float]]:
    lo, hi = partitions.month_bounds(month)
    AH = schema.attr_history
    with db.read() as conn:
        rows = conn.execute(
            select(AH.c.instance_id, AH.c.num).where(AH.c.observed_at >= lo, AH.c.observed_at < hi)
        ).all()
    return sorted((r[0], r[1]) for r in rows)


def read_archive(folder: Path) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true) "
        "ORDER BY instance_id"
    )
    return rel.to_arrow_table().to_pylist()


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.parquet")}


def kept_queries(client: TestClient) -> list[Any]:
    """Answers over the months kept: instances, an aggregation (the rollup), lastN."""
    after = {"timerel": "after", "timeAt": "2025-02-01T00:00:00Z"}
    return [
        client.get(f"{T}/{FLOW}", params=after, headers=city_link()).json(),
        client.get(
            T,
            params={
                **after,
                "type": "OffStreetParking",
                "aggrMethods": "sum,max",
                "aggrPeriodDuration": "PT1H",
            },
            headers={**city_link(), "Accept": "application/json"},
        ).json(),
        client.get(
            f"{T}/{FLOW}",
            params={
                "timerel": "between",
                "timeAt": "2025-06-01T00:00:00Z",
                "endTimeAt": "2025-07-01T00:00:00Z",
                "lastN": "2",
            },
            headers=city_link(),
        ).json(),
    ]


def attach_months(db: Database) -> None:
    """On PostgreSQL, partitions for the test's months (as the migration makes them for months
    that have rows, and the job for the months ahead)."""
    if db.is_postgres:
        partitions.ensure_ahead(db, now_month=JANUARY, ahead=6)


def test_retain_archives_the_old_month_and_refuses_queries_over_it(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    attach_months(db)
    seed(client)
    january = month_rows(db, JANUARY)
    assert len(january) == 18 + 5
    everything = month_rows(db, JANUARY - 1) + january  # nothing before January
    before = kept_queries(client)
    assert len(before[0]["averageVehicleSpeed"]) == 12 + 6  # February and June
    assert before[1][0]["availableSpotNumber"]["sum"] and len(before[2]["averageVehicleSpeed"]) == 2
    archive = tmp_path / "archive"
    now_us = int(NOW.timestamp() * 1e6)

    planned = retain(db, archive, keep_us=KEEP_US, now_us=now_us, dry_run=True)
    assert [(p.label, p.rows) for p in planned.planned] == [("2025-01", 23)]
    assert planned.keep_from == "2025-02" and not archive.exists()
    assert month_rows(db, JANUARY) == january

    result = retain(db, archive, keep_us=KEEP_US, now_us=now_us)
    assert [(d.month, d.batch, d.rows) for d in result.archived] == [("2025-01", 1, 23)]
    rows = read_archive(archive)
    assert sorted((r["instance_id"], r["value_num"]) for r in rows) == everything
    # The export's layout: type and Hong Kong date folders, the same columns.
    folders = {p.parent.relative_to(archive).as_posix() for p in archive.rglob("*.parquet")}
    assert "type=TrafficFlowObserved/date=2025-01-30" in folders
    assert "type=OffStreetParking/date=2025-01-30" in folders
    assert rows[0]["tenant"] == "" and rows[0]["attribute"] in (
        "averageVehicleSpeed",
        "availableSpotNumber",
    )
    assert month_rows(db, JANUARY) == []
    assert len(month_rows(db, JANUARY + 1)) == 12  # February is kept
    if db.is_postgres:
        with db.read() as conn:
            for table in partitions.PARTITIONED:
                assert JANUARY not in partitions.attached(conn, table)
                assert not partitions.exists(conn, partitions.partition_name(table, JANUARY))
                assert JANUARY + 1 in partitions.attached(conn, table)

    # Queries reaching into January: 410 Gone, saying from when and where.
    for params in (
        {
            "timerel": "between",
            "timeAt": "2025-01-15T00:00:00Z",
            "endTimeAt": "2025-02-15T00:00:00Z",
        },
        {"timerel": "before", "timeAt": "2025-06-01T00:00:00Z"},
        {"timerel": "after", "timeAt": "2024-06-01T00:00:00Z", "type": "OffStreetParking"},
    ):
        path = T if "type" in params else f"{T}/{FLOW}"
        r = client.get(path, params=params, headers=city_link())
        assert r.status_code == 410, r.text
        body = r.json()
        assert body["type"] == "urn:smartcity:errors:HistoryArchived"
        assert str(archive.resolve()) in body["detail"]
        assert "2025-02-01T00:00:00Z" in body["detail"]
        assert body["archivedBefore"] == "2025-02-01T00:00:00Z"
    # Without timerel: the evolution the database holds, from February on.
    whole = client.get(f"{T}/{FLOW}", headers=city_link())
    assert whole.status_code == 200 and whole.json() == before[0]
    # Queries over the months kept answer as before.
    assert kept_queries(client) == before

    # A second run: nothing to do, the files untouched.
    written = files(archive)
    again = retain(db, archive, keep_us=KEEP_US, now_us=now_us)
    assert again.archived == [] and again.planned == [] and files(archive) == written


def test_a_run_stopped_half_way_is_completed_by_the_next(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    attach_months(db)
    seed(client)
    january = month_rows(db, JANUARY)
    archive = tmp_path / "archive"
    now_us = int(NOW.timestamp() * 1e6)

    def crash(month: str, done: int, total: int) -> None:
        raise KeyboardInterrupt  # the process stops while writing the month's files

    with pytest.raises(KeyboardInterrupt):
        retain(db, archive, keep_us=KEEP_US, now_us=now_us, progress=crash)
    # The month is refused already (it is being archived), and nothing was removed.
    r = client.get(
        f"{T}/{FLOW}", params={"timerel": "before", "timeAt": iso(NOW)}, headers=city_link()
    )
    assert r.status_code == 410
    if db.is_postgres:  # the rows wait in the detached partition
        name = partitions.partition_name("attr_history", JANUARY)
        with db.read() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() == len(january)
    else:
        assert month_rows(db, JANUARY) == january
    assert not list(archive.rglob("*.parquet"))  # readers see no file of a batch half-written

    result = retain(db, archive, keep_us=KEEP_US, now_us=now_us)
    assert [(d.month, d.batch, d.rows) for d in result.archived] == [("2025-01", 1, 23)]
    rows = read_archive(archive)
    assert sorted((r["instance_id"], r["value_num"]) for r in rows) == january
    assert not list(archive.rglob("*.tmp")) and month_rows(db, JANUARY) == []


def test_readings_arriving_for_an_archived_month_go_in_a_second_batch(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    attach_months(db)
    seed(client)
    archive = tmp_path / "archive"
    now_us = int(NOW.timestamp() * 1e6)
    retain(db, archive, keep_us=KEEP_US, now_us=now_us)
    late = readings(JAN - timedelta(days=3), 4, timedelta(hours=1), 90.0)
    r = client.post(f"{T}/{FLOW}/attrs", json={"averageVehicleSpeed": late}, headers=HEADERS)
    assert r.status_code == 204, r.text
    result = retain(db, archive, keep_us=KEEP_US, now_us=now_us)
    assert [(d.month, d.batch, d.rows) for d in result.archived] == [("2025-01", 2, 4)]
    rows = read_archive(archive)
    assert len(rows) == 23 + 4 == len({r["instance_id"] for r in rows})
    assert month_rows(db, JANUARY) == []


def test_the_command_lists_then_archives(client: TestClient, db: Database, tmp_path: Path) -> None:
    """The CLI with the real clock: the seeded months are more than 400 days old by now."""
    seed(client)
    archive = tmp_path / "archive"
    runner = CliRunner()
    args = ["history", "retain", "--keep", "400d", "--archive", str(archive)]
    args += ["--database", db.url]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2025-01" in dry.output and "2025-06" in dry.output and not archive.exists()
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    with db.read() as conn:
        left = conn.execute(select(func.count()).select_from(schema.attr_history)).scalar()
    assert left == 0 and len(read_archive(archive)) == 30 + 6 + 5 + 3
    bad = runner.invoke(app, ["history", "retain", "--keep", "soon", "--archive", str(archive)])
    assert bad.exit_code != 0
