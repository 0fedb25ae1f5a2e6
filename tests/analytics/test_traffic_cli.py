"""``smartcity analytics traffic health --json`` and ``run`` from raw feed files."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.analytics.traffic_xml import samples_to_xml
from typer.testing import CliRunner

from smartcity.analytics.traffic import pipeline, synthetic
from smartcity.analytics.traffic.locations import read_csv
from smartcity.cli.main import app

DAY = date(2026, 3, 2)
LAYOUT = synthetic.Layout(roads=1, per_road=4, bottleneck_at=3)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = synthetic.generate(DAY, LAYOUT, faults={"SYN0002": "card_off"})
    return samples_to_xml(samples, tmp_path_factory.mktemp("raw"))


def journeys_xml(path: Path) -> Path:
    records = "".join(
        f"<jtis_journey_time><LOCATION_ID>H1</LOCATION_ID><DESTINATION_ID>CH</DESTINATION_ID>"
        f"<CAPTURE_DATE>2026-03-02T08:{m:02d}:00</CAPTURE_DATE><JOURNEY_TYPE>1</JOURNEY_TYPE>"
        f"<JOURNEY_DATA>{v}</JOURNEY_DATA><COLOUR_ID>2</COLOUR_ID><JOURNEY_DESC/></jtis_journey_time>"
        for m, v in enumerate([10, 10, 11, 12, 20])
    )
    path.write_text(
        f'<?xml version="1.0"?><jtis_journey_list xmlns="http://data.one.gov.hk/td">{records}</jtis_journey_list>'
    )
    return path


@pytest.mark.slow  # a day of TD-shaped archive files (2,880)
def test_health_json_straight_from_raw_files(raw_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["analytics", "traffic", "health", "--raw", str(raw_dir), "--date", "2026-03-02", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == ["detectors"]
    assert sorted(doc["detectors"]) == ["SYN0001", "SYN0002", "SYN0003", "SYN0004"]
    statuses = {k: v["status"] for k, v in doc["detectors"].items()}
    assert statuses == {
        "SYN0001": "good",
        "SYN0002": "card_off",
        "SYN0003": "good",
        "SYN0004": "good",
    }
    for entry in doc["detectors"].values():
        assert entry["status"] in {
            "good",
            "insufficient_data",
            "card_off",
            "high_val",
            "intermittent",
            "constant",
        }
        assert entry["samples"] == 2040 and isinstance(entry["samples"], int)
    # Another day: nothing was seen.
    one = str(sorted(raw_dir.glob("*.xml"))[100])
    result = CliRunner().invoke(
        app, ["analytics", "traffic", "health", "--raw", one, "--date", "2026-03-03", "--json"]
    )
    assert json.loads(result.stdout) == {"detectors": {}}


def test_health_errors_say_what_to_do(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["analytics", "traffic", "health", "--date", "2026-03-02", "--json"]
    )
    assert result.exit_code == 2 and "--raw" in result.output
    result = runner.invoke(
        app,
        [
            "analytics",
            "traffic",
            "health",
            "--raw",
            str(tmp_path / "none.xml"),
            "--date",
            "2026-03-02",
        ],
    )
    assert result.exit_code == 1 and "no such file" in result.output
    result = runner.invoke(
        app, ["analytics", "traffic", "health", "--raw", str(tmp_path), "--date", "March"]
    )
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


@pytest.mark.slow
def test_run_computes_and_stores_every_result(raw_dir: Path, tmp_path: Path) -> None:
    locations = tmp_path / "locations.csv"
    locations.write_text(
        "AID_ID_Number,District,Road_EN,Direction,chainage_km\n"
        + "".join(
            f"SYN00{i:02d},Kowloon City,Test Road,Eastbound,{0.5 * (i - 1)}\n" for i in range(1, 5)
        )
    )
    home = tmp_path / "home"
    # Two earlier good days already analysed: the history imputation fits on.
    store = pipeline.Store(home)
    for back in (1, 2):
        earlier = DAY - timedelta(days=back)
        store.add_parts("samples", synthetic.generate(earlier, LAYOUT), "period_start", "seed")
        pipeline.run_day(earlier, store, locations=read_csv(locations))
    result = CliRunner().invoke(
        app,
        [
            "analytics", "traffic", "run", "--raw", str(raw_dir), "--date", "2026-03-02",
            "--locations", str(locations),
            "--journey-times", str(journeys_xml(tmp_path / "jt.xml")),
            "--delay-threshold", "50", "--home", str(home), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ingested"]["rows"] == 4 * 3 * 2880
    counts = summary["days"]["2026-03-02"]
    assert counts["health"] == 4 and counts["station5"] == 4 * 288 and counts["reliability"] == 1
    assert counts["bottlenecks"] == 1
    part = home / "measures" / "date=2026-03-02" / "part.parquet"
    perf = pq.read_table(part)
    assert "delay_vh_50" in perf.column_names
    assert set(perf["level"].to_pylist()) == {"detector", "road", "district"}
    assert "Kowloon City" in perf["key"].to_pylist()
    clean = pq.read_table(home / "clean5" / "date=2026-03-02" / "part.parquet")
    imputed = {r["detector_id"] for r in clean.to_pylist() if r["imputed"]}
    assert imputed == {"SYN0002"}  # the card that was off
    # A second run on the same files changes nothing (idempotent ingestion).
    some = [a for p in sorted(raw_dir.glob("*.xml"))[:50] for a in ("--raw", str(p))]
    again = CliRunner().invoke(
        app, ["analytics", "traffic", "run", *some, "--home", str(home), "--json"]
    )
    assert json.loads(again.stdout)["days"]["2026-03-02"]["samples"] == 4 * 3 * 2880
    assert len(list((home / "samples" / "date=2026-03-02").glob("*.parquet"))) == 1
