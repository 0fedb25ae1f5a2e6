"""``smartcity history export``: the hub's history as hive-partitioned Parquet, one row per
attribute instance, written incrementally and idempotently, safe against a crash half-way, on
SQLite and PostgreSQL (the ``client``/``db`` fixtures run on both)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.city_context import city_link
from typer.testing import CliRunner

from smartcity.analytics.history import export_history
from smartcity.cli.main import app
from smartcity.storage import schema
from smartcity.storage.engine import Database

T = "/ngsi-ld/v1/temporal/entities"
HEADERS = {"Content-Type": "application/json", **city_link()}
FLOW = "urn:ngsi-ld:TrafficFlowObserved:AID01101"
PARK = "urn:ngsi-ld:OffStreetParking:kaitak"
KIOSK_IRI = "https://example.org/city/Kiosk"
START = datetime(2026, 3, 1, 15, 50, tzinfo=UTC)  # 23:50 in Hong Kong


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def speeds(first: int, n: int) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": 40.0 + k, "observedAt": at(k), "unitCode": "KMH"}
        for k in range(first, first + n)
    ]


def create(client: TestClient, doc: dict[str, Any]) -> None:
    r = client.post(T, json=doc, headers=HEADERS)
    assert r.status_code == 201, r.text


def append(client: TestClient, entity_id: str, attrs: dict[str, Any]) -> None:
    r = client.post(f"{T}/{entity_id}/attrs", json=attrs, headers=HEADERS)
    assert r.status_code == 204, r.text


def history_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.attr_history)).scalar())


def read(out: Path) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true) "
        "ORDER BY entity_id, attribute, observed_at"
    )
    return rel.to_arrow_table().to_pylist()


def parts(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


def export(db: Database, out: Path, **kw: Any) -> Any:
    kw.setdefault("settle_s", 0)  # the rows were written a moment ago
    return export_history(db, out, **kw)


def seed(client: TestClient) -> None:
    create(
        client,
        {
            "id": FLOW,
            "type": "TrafficFlowObserved",
            "averageVehicleSpeed": speeds(0, 20),  # 23:50 to 00:09 in Hong Kong: two dates
            "congested": [{"type": "Property", "value": True, "observedAt": at(0)}],
            "laneDirection": [{"type": "Property", "value": "forward", "observedAt": at(0)}],
            "location": [
                {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [114.17, 22.3]},
                    "observedAt": at(0),
                }
            ],
            "refDevice": [
                {"type": "Relationship", "object": "urn:ngsi-ld:Device:d1", "observedAt": at(0)}
            ],
        },
    )
    create(
        client,
        {
            "id": PARK,
            "type": "OffStreetParking",
            "availableSpotNumber": [
                {"type": "Property", "value": n, "observedAt": at(n), "datasetId": "urn:ds:p1"}
                for n in range(5)
            ],
        },
    )
    create(
        client,
        {
            "id": "urn:ngsi-ld:Kiosk:1",
            "type": KIOSK_IRI,
            "status": [{"type": "Property", "value": {"open": True}, "observedAt": at(1)}],
        },
    )


def test_one_row_per_instance_with_typed_columns(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    seed(client)
    result = export(db, tmp_path)
    rows = read(tmp_path)
    assert result.rows == len(rows) == history_rows(db) == 20 + 4 + 5 + 1
    folders = {p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")}
    kiosk = next(f.split("/")[0] for f in folders if "Kiosk" in f)
    assert kiosk.startswith("type=Kiosk-") and len(kiosk) == len("type=Kiosk-") + 8
    # Hong Kong dates: 15:50Z is 23:50 on 1 March there, 16:00Z is already 2 March.
    assert {
        "type=TrafficFlowObserved/date=2026-03-01",
        "type=TrafficFlowObserved/date=2026-03-02",
        "type=OffStreetParking/date=2026-03-01",
        f"{kiosk}/date=2026-03-01",
    } <= folders
    by = {(r["entity_id"], r["attribute"], r["observed_at"]): r for r in rows}
    speed = by[(FLOW, "averageVehicleSpeed", START + timedelta(minutes=3))]
    assert speed["value_num"] == 43.0 and speed["unit_code"] == "KMH"
    assert speed["entity_type"] == "TrafficFlowObserved"
    assert speed["entity_type_iri"].startswith("https://smartdatamodels.org/")
    assert speed["attribute_iri"].endswith("/averageVehicleSpeed")
    assert speed["attribute_type"] == "Property" and speed["dataset_id"] is None
    assert speed["tenant"] == "" and speed["deleted"] is False
    assert speed["instance_id"].startswith("urn:ngsi-ld:attribute:instance:")
    assert speed["type"] == "TrafficFlowObserved" and str(speed["date"]) == "2026-03-01"
    assert by[(FLOW, "congested", START)]["value_bool"] is True
    assert by[(FLOW, "laneDirection", START)]["value_text"] == "forward"
    assert by[(FLOW, "refDevice", START)]["value_text"] == "urn:ngsi-ld:Device:d1"
    geo = json.loads(by[(FLOW, "location", START)]["value_json"])
    assert geo == {"type": "Point", "coordinates": [114.17, 22.3]}
    spot = by[(PARK, "availableSpotNumber", START + timedelta(minutes=4))]
    assert spot["value_num"] == 4.0 and spot["dataset_id"] == "urn:ds:p1"
    status = next(r for r in rows if r["entity_id"] == "urn:ngsi-ld:Kiosk:1")
    assert status["entity_type"] == KIOSK_IRI and json.loads(status["value_json"]) == {"open": True}


def test_second_run_writes_nothing_and_a_later_one_only_the_new_rows(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    seed(client)
    first = export(db, tmp_path, chunk_rows=7)  # several chunks
    before = parts(tmp_path)
    again = export(db, tmp_path, chunk_rows=7)
    assert again.rows == 0 and again.files == 0 and parts(tmp_path) == before
    append(client, FLOW, {"averageVehicleSpeed": speeds(20, 6)})
    later = export(db, tmp_path, chunk_rows=7)
    assert later.rows == 6
    after = parts(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # old files untouched
    rows = read(tmp_path)
    assert len(rows) == first.rows + 6 == history_rows(db)
    assert len({r["instance_id"] for r in rows}) == len(rows)


def test_a_crash_half_way_leaves_no_duplicates(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    seed(client)
    written: list[Path] = []

    def crash_on_third(path: Path) -> None:
        written.append(path)
        if len(written) == 3:
            raise KeyboardInterrupt  # the process stops here, its state not yet saved

    with pytest.raises(KeyboardInterrupt):
        export(db, tmp_path, chunk_rows=8, after_file=crash_on_third)
    # What is visible meanwhile is whole files, each row once.
    seen = read(tmp_path)
    assert 0 < len(seen) < history_rows(db)
    assert len({r["instance_id"] for r in seen}) == len(seen)
    # A file being written when the power went: hidden from readers, removed by the next run.
    leftover = (
        tmp_path / "type=OffStreetParking" / "date=2026-03-01" / ".part-0000000099.parquet.tmp"
    )
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"PAR1 half a file")
    assert len(read(tmp_path)) == len(seen)
    # The next runs cut their chunks elsewhere (other files): the crashed run's files must go.
    export(db, tmp_path, types=["OffStreetParking"])
    export(db, tmp_path, chunk_rows=5)
    rows = read(tmp_path)
    assert len(rows) == history_rows(db)
    assert len({r["instance_id"] for r in rows}) == len(rows)
    assert not leftover.exists()


def test_types_and_since(client: TestClient, db: Database, tmp_path: Path) -> None:
    seed(client)
    only = export(db, tmp_path / "a", types=["OffStreetParking"])
    assert only.rows == 5
    assert {r["entity_type"] for r in read(tmp_path / "a")} == {"OffStreetParking"}
    # Then everything: the other types come, the car park's rows are not written twice.
    rest = export(db, tmp_path / "a")
    assert rest.rows == history_rows(db) - 5 and len(read(tmp_path / "a")) == history_rows(db)
    # --since: observations before it are left out (here the first 10 speeds).
    since = int((START + timedelta(minutes=10)).timestamp() * 1_000_000)
    recent = export(db, tmp_path / "b", since_us=since, types=["TrafficFlowObserved"])
    got = read(tmp_path / "b")
    assert recent.rows == len(got) == 10
    assert min(r["observed_at"] for r in got) == START + timedelta(minutes=10)


def test_rows_of_other_types_are_not_read_again(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    """A --types run moves its watermark past the other types' rows once they are settled
    (at once with no settle time; on the next run with one), so later runs start above them."""
    seed(client)
    with db.read() as conn:
        top = conn.execute(select(func.max(schema.attr_history.c.iid))).scalar()
    park_iri = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
    for settle in (0, 1e-6):
        out = tmp_path / str(settle)
        assert export(db, out, types=["OffStreetParking"], settle_s=settle).rows == 5
        assert export(db, out, types=["OffStreetParking"], settle_s=settle).rows == 0
        state = json.loads((out / "_state.json").read_text())
        assert state["types"] == {park_iri: top}, settle


def test_rows_younger_than_the_settle_time_wait_for_the_next_run(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    """PostgreSQL makes rows visible at commit, not in key order: the newest are left."""
    seed(client)
    held = export(db, tmp_path, settle_s=3600)
    assert held.rows == 0 and held.held_back
    assert export(db, tmp_path, settle_s=0).rows == history_rows(db)


def test_cli_export_then_sql_on_the_result(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    seed(client)
    runner = CliRunner()
    out = tmp_path / "history"
    args = ["history", "export", "--out", str(out), "--database", db.url, "--settle", "0"]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rows"] == history_rows(db)
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "Nothing new" in second.stdout
    query = (
        "SELECT attribute, count(*) AS n, avg(value_num) AS mean FROM history "
        "WHERE entity_type = 'TrafficFlowObserved' AND value_num IS NOT NULL GROUP BY ALL"
    )
    answer = runner.invoke(app, ["analytics", "sql", query, "--history", str(out)])
    assert answer.exit_code == 0, answer.output
    assert "averageVehicleSpeed" in answer.stdout and "49.5" in answer.stdout  # mean of 40..59
    bad = runner.invoke(app, ["history", "export", "--since", "yesterday", "--out", str(out)])
    assert bad.exit_code == 2 and "not a time" in bad.output


def test_every_engine_reads_the_export(
    engine: Any, client: TestClient, db: Database, tmp_path: Path
) -> None:
    """The files as analyses see them: partition columns, UTC times, typed values."""
    seed(client)
    export(db, tmp_path)
    engine.register_parquet("history", tmp_path)
    got = engine.query(
        "SELECT type, CAST(date AS VARCHAR) AS day, count(*) AS n, avg(value_num) AS mean, "
        "min(observed_at) AS first FROM history WHERE attribute = 'averageVehicleSpeed' "
        "GROUP BY ALL ORDER BY day"
    ).to_pylist()
    assert got == [
        {"type": "TrafficFlowObserved", "day": "2026-03-01", "n": 10, "mean": 44.5, "first": START},
        {
            "type": "TrafficFlowObserved",
            "day": "2026-03-02",
            "n": 10,
            "mean": 54.5,
            "first": START + timedelta(minutes=10),
        },
    ]


@pytest.mark.slow
def test_a_killed_export_process_leaves_no_duplicates(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    """The real thing: ``smartcity history export`` killed (SIGKILL) while it writes."""
    seed(client)
    append(client, FLOW, {"averageVehicleSpeed": speeds(20, 200)})
    out = tmp_path / "history"
    cmd = [sys.executable, "-m", "smartcity", "history", "export", "--out", str(out)]
    cmd += ["--database", db.url, "--settle", "0", "--chunk-rows", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "_state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    state = json.loads((out / "_state.json").read_text())
    assert 0 < state["rows"] < history_rows(db)  # stopped half-way
    export(db, out)
    rows = read(out)
    assert len(rows) == history_rows(db)
    assert len({r["instance_id"] for r in rows}) == len(rows)
