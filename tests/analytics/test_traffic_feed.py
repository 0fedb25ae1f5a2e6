"""The TD traffic feed readers on the real samples and on crafted files with each quirk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.analytics.traffic_xml import feed_xml, lane_xml, utc

from smartcity.analytics.traffic import feed

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-world" / "traffic"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-world not present")


def rows(table: feed.pa.Table) -> list[dict[str, object]]:
    return table.to_pylist()


@needs_real
def test_the_real_raw_feed_excerpt() -> None:
    report = feed.ReadReport()
    table = feed.read_raw(REAL / "rawSpeedVol-all.excerpt.xml", report=report)
    assert table.schema.equals(feed.SAMPLE_SCHEMA)
    assert table.num_rows == 36 and report.periods == 1
    assert len(set(table["detector_id"].to_pylist())) == 13
    by = {(r["detector_id"], r["lane"]): r for r in rows(table)}
    first = by[("AID01101", "Fast Lane")]
    # 21:27:00 Hong Kong time is 13:27:00 UTC.
    assert first["period_start"] == utc(2024, 4, 6, 13, 27)
    assert (first["speed"], first["volume"], first["occupancy"], first["valid"]) == (
        66.0,
        3,
        1.0,
        True,
    )
    # Volume 0: the speed field holds the speed limit placeholder; it is not a speed.
    assert by[("AID01102", "Slow Lane")]["speed"] is None
    assert by[("AID01102", "Slow Lane")]["volume"] == 0
    assert report.speed_placeholders == 2
    # AID01113 is flagged valid=N in the real file: kept, marked invalid.
    assert {r["valid"] for k, r in by.items() if k[0] == "AID01113"} == {False}
    assert report.invalid == 3


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def two_periods(day: str, a: str, b: str, c: str, volume_b: int = 5, detector: str = "AID1") -> str:
    return feed_xml(
        day,
        [
            (a, b, {detector: [lane_xml("Fast Lane", 60, 4, 3)]}),
            (b, c, {detector: [lane_xml("Fast Lane", 61, 5, volume_b)]}),
        ],
    )


def test_overlapping_archived_files_are_deduplicated(tmp_path: Path) -> None:
    # Each file holds two periods and the next file repeats one of them (as TD's do).
    write(
        tmp_path / "a" / "0001.xml", two_periods("2024-04-06", "10:00:00", "10:00:30", "10:01:00")
    )
    write(
        tmp_path / "a" / "0002.xml", two_periods("2024-04-06", "10:00:30", "10:01:00", "10:01:30")
    )
    write(
        tmp_path / "a" / "0003.xml", two_periods("2024-04-06", "10:01:00", "10:01:30", "10:02:00")
    )
    report = feed.ReadReport()
    table = feed.read_raw([tmp_path / "a"], report=report)
    assert report.files == 3 and report.duplicates == 2
    starts = table["period_start"].to_pylist()
    assert starts == [
        utc(2024, 4, 6, 2, 0),
        utc(2024, 4, 6, 2, 0, 30),
        utc(2024, 4, 6, 2, 1),
        utc(2024, 4, 6, 2, 1, 30),
    ]
    assert report.missing_periods == 0


def test_a_valid_reading_wins_over_an_invalid_copy(tmp_path: Path) -> None:
    bad = feed_xml(
        "2024-04-06", [("10:00:00", "10:00:30", {"AID1": [lane_xml("Slow Lane", 50, 9, 9, "N")]})]
    )
    good = feed_xml(
        "2024-04-06", [("10:00:00", "10:00:30", {"AID1": [lane_xml("Slow Lane", 40, 8, 7)]})]
    )
    table = feed.read_raw([write(tmp_path / "2.xml", good), write(tmp_path / "1.xml", bad)])
    assert rows(table) == [
        {"detector_id": "AID1", "lane": "Slow Lane", "period_start": utc(2024, 4, 6, 2, 0),
         "speed": 40.0, "volume": 7, "occupancy": 8.0, "valid": True}
    ]  # fmt: skip


def test_the_midnight_period_moves_to_the_next_day(tmp_path: Path) -> None:
    # A file spanning midnight, dated the day before throughout.
    across = write(
        tmp_path / "x.xml", two_periods("2024-04-06", "23:59:30", "00:00:00", "00:00:30")
    )
    report = feed.ReadReport()
    table = feed.read_raw(across, report=report)
    assert table["period_start"].to_pylist() == [
        utc(2024, 4, 6, 15, 59, 30),
        utc(2024, 4, 6, 16, 0),
    ]
    assert report.midnight_fixed == 1
    # The next file, from 00:00:00 on, carries the new date: left alone.
    after = write(tmp_path / "y.xml", two_periods("2024-04-07", "00:00:00", "00:00:30", "00:01:00"))
    assert feed.read_raw(after)["period_start"].to_pylist()[0] == utc(2024, 4, 6, 16, 0)
    # Both files together: one row per period, none moved a day too far.
    both = feed.read_raw([across, after])
    assert both["period_start"].to_pylist() == [
        utc(2024, 4, 6, 15, 59, 30),
        utc(2024, 4, 6, 16, 0),
        utc(2024, 4, 6, 16, 0, 30),
    ]
    # Live, with the fetch time known, the date nearest to it wins (here: a correct date).
    fetched = datetime(2024, 4, 6, 16, 1, tzinfo=UTC)  # 00:01 on the 7th in Hong Kong
    live = feed.samples_from_bytes(
        feed_xml(
            "2024-04-06", [("00:00:00", "00:00:30", {"AID1": [lane_xml("Fast Lane", 60, 4, 3)]})]
        ).encode(),
        fetched_at=fetched,
    )
    assert live["period_start"].to_pylist() == [utc(2024, 4, 6, 16, 0)]
    # An ordinary daytime file is left alone.
    day = write(tmp_path / "z.xml", two_periods("2024-04-06", "12:00:00", "12:00:30", "12:01:00"))
    assert feed.read_raw(day)["period_start"].to_pylist()[0] == utc(2024, 4, 6, 4, 0)


def test_zero_volume_speed_is_missing_and_missing_periods_are_counted(tmp_path: Path) -> None:
    write(
        tmp_path / "1.xml",
        two_periods("2024-04-06", "10:00:00", "10:00:30", "10:01:00", volume_b=0),
    )
    write(tmp_path / "2.xml", two_periods("2024-04-06", "10:03:00", "10:03:30", "10:04:00"))
    report = feed.ReadReport()
    table = feed.read_raw([tmp_path], report=report)
    assert table["speed"].to_pylist() == [60.0, None, 60.0, 61.0]
    assert report.missing_periods == 4  # 10:01:00 .. 10:02:30


def test_the_lamppost_variant_reads_the_same(tmp_path: Path) -> None:
    text = two_periods("2024-04-06", "10:00:00", "10:00:30", "10:01:00", detector="LP-TW-0012")
    table = feed.read_raw(write(tmp_path / "rawSpeedVol-lamppost.xml", text))
    assert set(table["detector_id"].to_pylist()) == {"LP-TW-0012"}


def test_not_the_feed_is_a_clear_error(tmp_path: Path) -> None:
    segments = "<segment_speed_list><date>2024-06-19</date></segment_speed_list>"
    with pytest.raises(feed.FeedError, match="expected <raw_speed_volume_list>"):
        feed.read_raw(write(tmp_path / "irn.xml", segments))
    with pytest.raises(feed.FeedError, match="not well-formed"):
        feed.read_raw(write(tmp_path / "bad.xml", "<raw_speed_volume_list><date>"))
    with pytest.raises(feed.FeedError, match="document type"):
        feed.read_raw(
            write(tmp_path / "dtd.xml", '<!DOCTYPE x [<!ENTITY a "b">]><raw_speed_volume_list/>')
        )
    with pytest.raises(feed.FeedError, match="no such file"):
        feed.read_raw(tmp_path / "missing.xml")


@needs_real
def test_segment_speeds_and_journey_times_from_the_real_samples(tmp_path: Path) -> None:
    segments = feed.read_segments(REAL / "irnAvgSpeed-all.xml")
    assert segments.num_rows == 4392
    first = rows(segments)[0]
    assert first == {
        "segment_id": "104324",
        "observed_at": utc(2024, 6, 19, 4, 27),
        "speed": 23.0,
        "valid": True,
    }
    # The same file twice (an overlapping archive) adds nothing.
    assert feed.read_segments([REAL / "irnAvgSpeed-all.xml"] * 2).num_rows == 4392
    journeys = feed.read_journey_times(REAL / "journeytime.2018.xml")
    assert journeys.num_rows == 35
    h11 = next(
        r for r in rows(journeys) if (r["location_id"], r["destination_id"]) == ("H11", "CH")
    )
    assert h11["captured_at"] == utc(2018, 10, 15, 8, 54, 35)
    assert (h11["minutes"], h11["colour"]) == (23.0, 2)


@needs_real
def test_samples_round_trip_through_parquet(tmp_path: Path) -> None:
    table = feed.read_raw(REAL / "rawSpeedVol-all.excerpt.xml")
    out = feed.write_parquet(table, tmp_path / "s.parquet")
    assert pq.read_table(out).equals(table)
