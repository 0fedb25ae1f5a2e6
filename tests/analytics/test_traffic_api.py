"""``/api/v1/analytics/traffic/...`` serves the stored results as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartcity.analytics.traffic import pipeline, synthetic

DAY = date(2026, 3, 2)
LAYOUT = synthetic.Layout(roads=2, per_road=4, bottleneck_at=3)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    store = pipeline.Store(home / "analytics" / "traffic")
    for back in (2, 1, 0):
        day = DAY - timedelta(days=back)
        faults = {"SYN0102": "intermittent"} if back == 0 else {}
        samples = synthetic.generate(day, LAYOUT, faults=faults)
        store.add_parts("samples", samples, "period_start", "t")
        pipeline.run_day(day, store, locations=LAYOUT.locations())
    return home


@pytest.fixture
def results(analysed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTCITY_HOME", str(analysed))  # the server reads it per request
    assert pipeline.Store().root == analysed / "analytics" / "traffic"
    return analysed


def test_health_json_and_csv(results: Path, client: TestClient) -> None:
    r = client.get("/api/v1/analytics/traffic/health")
    assert r.status_code == 200
    body = r.json()
    assert body["date"] == "2026-03-02" and body["count"] == 8
    status = {row["detector_id"]: row["status"] for row in body["results"]}
    assert status["SYN0102"] == "intermittent" and status["SYN0101"] == "good"
    r = client.get(
        "/api/v1/analytics/traffic/health", params={"date": "2026-03-01", "format": "csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 8 and {row["status"] for row in rows} == {"good"}
    lanes = client.get(
        "/api/v1/analytics/traffic/health", params={"lanes": "true", "detector": "SYN0102"}
    )
    assert {row["lane"] for row in lanes.json()["results"]} == {
        "Fast Lane",
        "Middle Lane",
        "Slow Lane",
    }
    assert client.get("/api/v1/analytics/traffic/days").json() == {
        "days": ["2026-02-28", "2026-03-01", "2026-03-02"]
    }


def test_measures_five_minutes_and_bottlenecks(results: Path, client: TestClient) -> None:
    r = client.get("/api/v1/analytics/traffic/measures", params={"level": "road", "period": "day"})
    rows = r.json()["results"]
    assert {row["key"] for row in rows} == {"Road 0", "Road 1"}
    assert all(row["vkt"] > 0 and row["vht"] > 0 and row["tti"] >= 1 for row in rows)
    assert rows[0]["period_start"] == "2026-03-01T16:00:00Z"  # 00:00 Hong Kong time
    hours = client.get(
        "/api/v1/analytics/traffic/measures",
        params={"level": "detector", "period": "hour", "key": "SYN0001"},
    ).json()["results"]
    assert len(hours) == 24
    five = client.get("/api/v1/analytics/traffic/5min", params={"detector": "SYN0102"}).json()[
        "results"
    ]
    assert len(five) == 288 and all(row["imputed"] and row["method"] == "adjacent" for row in five)
    lanes = client.get(
        "/api/v1/analytics/traffic/5min", params={"detector": "SYN0102", "lanes": "true"}
    ).json()["results"]
    assert len(lanes) == 3 * 288 and {row["samples"] for row in lanes} == {10}
    bottlenecks = client.get("/api/v1/analytics/traffic/bottlenecks").json()["results"]
    assert {(b["upstream"], b["downstream"]) for b in bottlenecks} == {
        ("SYN0003", "SYN0004"),
        ("SYN0103", "SYN0104"),
    }
    csv_text = client.get(
        "/api/v1/analytics/traffic/bottlenecks", headers={"Accept": "text/csv"}
    ).text
    assert csv_text.splitlines()[0].startswith('"upstream","downstream"')


def test_clear_errors(results: Path, client: TestClient) -> None:
    r = client.get("/api/v1/analytics/traffic/health", params={"date": "2020-01-01"})
    assert r.status_code == 404 and "2026-03-02" in r.text
    assert (
        client.get("/api/v1/analytics/traffic/health", params={"date": "01/01/2020"}).status_code
        == 400
    )
    assert (
        client.get("/api/v1/analytics/traffic/measures", params={"level": "city"}).status_code
        == 400
    )
    assert (
        client.get("/api/v1/analytics/traffic/health", params={"format": "xml"}).status_code == 400
    )
    # No journey times were given: reliability says how to get it.
    r = client.get("/api/v1/analytics/traffic/reliability")
    assert r.status_code == 404 and "smartcity analytics traffic run" in r.text


def test_nothing_analysed_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> None:
    monkeypatch.setenv("SMARTCITY_HOME", str(tmp_path))
    r = client.get("/api/v1/analytics/traffic/health")
    assert r.status_code == 404 and "smartcity analytics traffic run" in r.text
