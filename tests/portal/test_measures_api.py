"""The portal's JSON/CSV API on both backends."""

from __future__ import annotations

import csv
import io

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from smartcity.portal.measures import csvio
from smartcity.portal.measures.loader import load
from smartcity.portal.measures.sample import sample_blueprint
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

# Cheap argon2 parameters: the real ones cost ~1 s per hash on the test machine.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def api(db: Database, client: TestClient) -> TestClient:
    load(db, sample_blueprint())
    admin = UserService(db, hasher=FAST).create("admin", "correct horse battery", "admin")
    svc = MeasureService(db)
    svc.update_progress("mobility-01", user=admin, status="in_progress")
    svc.update_progress("living-01", user=admin, status="completed")
    return client


def _ids(response: object) -> list[str]:
    return [m["id"] for m in response.json()]  # type: ignore[attr-defined]


def test_list_measures_shape(api: TestClient) -> None:
    r = api.get("/api/v1/measures")
    assert r.status_code == 200 and r.headers["x-total-count"] == "5"
    m = r.json()[0]
    assert m["id"] == "mobility-01"
    for key in ("id", "area", "strategy", "is_new", "status", "progress", "target", "owners"):
        assert key in m
    for key in ("title", "text"):
        assert set(m[key]) == {"en", "zh-Hant", "zh-Hans"}
    assert m["title"]["zh-Hant"] == "實時空置泊車位資訊"
    assert (m["status"], m["progress"], m["owners"]) == ("in_progress", 50.0, ["TD"])
    assert m["live"][0]["entity_type"] == "OffStreetParking"
    assert {"start", "end", "parent", "children", "milestones"} <= set(m)
    target = r.json()[1]["target"]
    assert target["text"]["zh-Hant"] == "2024 年年初前" and target["date"] == "2024-03-31"


def test_filters(api: TestClient) -> None:
    assert _ids(api.get("/api/v1/measures", params={"q": "泊車"})) == [
        "mobility-01",
        "mobility-02",
    ]
    assert _ids(api.get("/api/v1/measures", params={"q": "Recycling"})) == ["living-02"]
    assert _ids(api.get("/api/v1/measures?is_new=true")) == ["mobility-02", "living-02"]
    assert len(_ids(api.get("/api/v1/measures?is_new=false"))) == 3
    assert _ids(api.get("/api/v1/measures?status=completed")) == ["living-01"]
    assert _ids(api.get("/api/v1/measures?area=living&is_new=1")) == ["living-02"]
    r = api.get("/api/v1/measures?limit=2&offset=2")
    assert _ids(r) == ["mobility-03", "living-01"] and r.headers["x-total-count"] == "5"
    r = api.get("/api/v1/measures", params={"q": "泊車", "limit": 1})
    assert len(r.json()) == 1 and r.headers["x-total-count"] == "2"
    assert api.get("/api/v1/measures?q=").headers["x-total-count"] == "5"


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("area=space", "unknown area"),
        ("status=done", "unknown status"),
        ("is_new=maybe", "is_new"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=ten", "whole number"),
        ("offset=-1", "offset"),
        ("stauts=planned", "unknown query parameter"),
        ("area=living&area=mobility", "once"),
        ("q=" + "x" * 201, "200 characters"),
    ],
)
def test_bad_parameters_are_400(api: TestClient, query: str, needle: str) -> None:
    r = api.get(f"/api/v1/measures?{query}")
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == 400
    assert needle in body["detail"]


def test_one_measure_and_404(api: TestClient) -> None:
    r = api.get("/api/v1/measures/mobility-02")
    assert r.status_code == 200 and r.json()["is_new"] is True
    missing = api.get("/api/v1/measures/mobility-99")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404 and "mobility-99" in missing.json()["detail"]
    assert missing.headers["content-type"] == "application/problem+json"
    assert api.get("/api/v1/measures/mobility-99/timeline").status_code == 404
    timeline = api.get("/api/v1/measures/mobility-01/timeline").json()
    assert timeline[0]["field"] in ("status", "progress") and timeline[0]["user"] == "admin"


def test_areas_kpis_progress(api: TestClient) -> None:
    areas = api.get("/api/v1/areas").json()
    assert [a["id"] for a in areas] == ["mobility", "living"]
    assert areas[1]["progress"] == 50.0 and areas[1]["by_status"]["completed"] == 1
    assert areas[0]["name"]["zh-Hans"] == "智慧出行"
    kpis = api.get("/api/v1/kpis?area=living").json()
    assert [k["id"] for k in kpis] == ["living-k1"] and kpis[0]["value"] == 37000
    assert kpis[0]["unit"]["zh-Hant"] == "個熱點"
    assert api.get("/api/v1/kpis?area=moon").status_code == 400
    assert api.get("/api/v1/progress").json() == {"progress": 30.0, "measures": 5}
    assert api.get("/api/v1/statuses").json()[0]["code"] == "planned"


def test_measures_csv_parses_back(api: TestClient, db: Database) -> None:
    r = api.get("/api/v1/measures.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x["id"] for x in rows][:2] == ["mobility-01", "mobility-02"]
    assert rows[0]["title/zh-Hant"] == "實時空置泊車位資訊" and rows[0]["progress"] == "50.0"
    # The same schema the import reads: importing it back changes nothing.
    from smartcity.portal.measures.importer import import_records

    report = import_records(db, csvio.read_csv(r.content.decode("utf-8")))
    assert report.counts["unchanged"] == 5
    filtered = api.get("/api/v1/measures.csv", params={"q": "泊車"})
    assert len(list(csv.DictReader(io.StringIO(filtered.text.lstrip("\ufeff"))))) == 2
    assert api.get("/api/v1/measures.csv?limit=2").status_code == 400


def test_kpis_csv(api: TestClient) -> None:
    r = api.get("/api/v1/kpis.csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["id"], float(x["value"]), x["unit/zh-Hant"]) for x in rows] == [
        ("mobility-k1", 500.0, "個停車場"),
        ("living-k1", 37000.0, "個熱點"),
    ]


def test_hub_still_answers(api: TestClient) -> None:
    assert api.get("/ngsi-ld/v1/types").status_code == 200
    assert api.get("/api/v1/nothing-here").status_code == 404
