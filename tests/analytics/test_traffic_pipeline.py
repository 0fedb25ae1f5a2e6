"""The store: live payloads and archived files merge into one deduplicated day; every SQL
analysis is also valid Spark SQL once translated (the Spark engine runs the same text)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlglot
from tests.analytics.traffic_xml import feed_xml, lane_xml

from smartcity.analytics.traffic import aggregate, feed, health, measures, pipeline
from smartcity.analytics.traffic.config import TrafficConfig


def payload(a: str, b: str, c: str) -> bytes:
    lanes = [lane_xml("Fast Lane", 60, 4, 3), lane_xml("Slow Lane", 50, 6, 5)]
    return feed_xml(
        "2026-03-02", [(a, b, {"AID01101": lanes}), (b, c, {"AID01101": lanes})]
    ).encode()


def test_live_payloads_and_archived_files_merge(tmp_path: Path) -> None:
    root = tmp_path / "traffic"
    fetched = datetime(2026, 3, 2, 2, 1, tzinfo=UTC)
    assert pipeline.record_live(payload("10:00:00", "10:00:30", "10:01:00"), fetched, root) == 4
    assert pipeline.record_live(payload("10:00:30", "10:01:00", "10:01:30"), fetched, root) == 4
    # The same payload again (a poll that saw no change) adds no file.
    pipeline.record_live(payload("10:00:30", "10:01:00", "10:01:30"), fetched, root)
    archived = tmp_path / "archive.xml"
    archived.write_bytes(payload("10:01:00", "10:01:30", "10:02:00"))
    store = pipeline.Store(root)
    pipeline.ingest_raw([archived], store)
    day = date(2026, 3, 2)
    assert len(store.files("samples", day)) == 3
    result = pipeline.run_day(day, store)
    assert result.samples == 4 * 2  # four periods, two lanes, each once
    assert [p.name for p in store.files("samples", day)] == ["part.parquet"]
    lane5 = pq.read_table(root / "lane5" / "date=2026-03-02" / "part.parquet")
    assert sorted(lane5["samples"].to_pylist()) == [4, 4]


def test_every_analysis_translates_to_spark_sql() -> None:
    c = TrafficConfig()
    sqls = [
        aggregate.lane_5min_sql(),
        aggregate.station_5min_sql(),
        health.lane_health_sql(c.health, day=20514),
        measures.bottleneck_pairs_sql(),
        measures.bottlenecks_sql(c.bottleneck),
        measures.reliability_sql(),
        measures.segment_hours_sql(c.measures),
        *(
            measures.measures_sql(c.measures, lv, p)
            for lv in measures.LEVELS
            for p in measures.PERIODS
        ),
    ]
    for sql in sqls:
        spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
        assert "epoch(" not in spark.lower()  # DuckDB-only: became UNIX_TIMESTAMP
        sqlglot.parse_one(spark, read="spark")


def test_which_days_a_run_analyses(tmp_path: Path) -> None:
    store = pipeline.Store(tmp_path)
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        (tmp_path / "samples" / f"date={day}").mkdir(parents=True)
        (tmp_path / "samples" / f"date={day}" / "part.parquet").write_bytes(b"")
    (tmp_path / "health" / "date=2026-03-01").mkdir(parents=True)
    (tmp_path / "health" / "date=2026-03-01" / "part.parquet").write_bytes(b"")
    d = date.fromisoformat
    # By default: the days not analysed yet (the latest always, it may have grown).
    assert pipeline.days_to_run(store, None, None) == [d("2026-03-02"), d("2026-03-03")]
    # --since: 2026-03-01T17:00Z is already 01:00 on the 2nd in Hong Kong.
    since = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    assert pipeline.days_to_run(store, None, since) == [d("2026-03-02"), d("2026-03-03")]
    assert pipeline.days_to_run(store, d("2026-03-01"), None) == [d("2026-03-01")]


REAL = Path(__file__).resolve().parents[3] / "shared" / "real-world" / "traffic"


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-world not present")
def test_segment_speeds_alone_are_analysed(tmp_path: Path) -> None:
    store = pipeline.Store(tmp_path)
    summary = pipeline.run(store=store, segments=[REAL / "irnAvgSpeed-all.xml"])
    valid = sum(
        1 for r in feed.read_segments(REAL / "irnAvgSpeed-all.xml").to_pylist() if r["valid"]
    )
    assert summary["days"] == {"2024-06-19": {"samples": 0, "segment_hours": valid}}
    hours = {r["segment_id"]: r for r in store.read("segment_hours", date(2024, 6, 19)).to_pylist()}
    first = hours["104324"]  # 23 km/h at 12:27: the hour counts as congested
    assert (first["readings"], first["mean_speed"], first["congested_minutes"]) == (1, 23.0, 60.0)
    assert first["period_start"] == datetime(2024, 6, 19, 4, 0, tzinfo=UTC)
    assert hours["104542"]["congested_minutes"] == 0.0


def test_locations_csv_in_td_columns_orders_a_road(tmp_path: Path) -> None:
    from smartcity.analytics.traffic.locations import Network, read_csv

    csv_file = tmp_path / "locations.csv"
    csv_file.write_text(
        "\ufeffAID_ID_Number,District,Road_EN,Direction,chainage_km\n"
        "AID01103,Sha Tin,Tolo Highway,North,1.0\n"
        "AID01101,Sha Tin,Tolo Highway,North,0.0\n"
        "AID01102,Sha Tin,Tolo Highway,North,0.4\n"
        "AID02001,Central,Connaught Road,East,\n"
    )
    network = Network(read_csv(csv_file))
    assert network.routes[("Tolo Highway", "North")] == ["AID01101", "AID01102", "AID01103"]
    assert network.neighbours("AID01102", 1) == ["AID01101", "AID01103"]
    # Half-way to each neighbour: 0.2 + 0.3 km; an end station mirrors its one side.
    assert network.length_km("AID01102") == pytest.approx(0.5)
    assert network.length_km("AID01103") == pytest.approx(0.6)
    assert network.length_km("AID02001") == 0.5  # no chainage: the default
    pairs = network.pairs().to_pylist()
    assert [(p["upstream"], p["downstream"]) for p in pairs] == [
        ("AID01101", "AID01102"),
        ("AID01102", "AID01103"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("detector_id,chainage_km\nAID1,near\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        read_csv(bad)
