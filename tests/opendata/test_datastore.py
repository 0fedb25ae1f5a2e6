"""The DataStore through the Action API, in process (both backends): datastore_create,
upsert, delete, info, search (filters with operators, q, full_text, distinct, fields, sort,
records formats, keyset paging), the dump in four formats with formula injection
neutralised, and who may see what."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act

FIELDS = [
    {"id": "district", "type": "text"},
    {"id": "spaces", "type": "int"},
    {"id": "rate", "type": "float"},
    {"id": "open", "type": "bool"},
    {"id": "day", "type": "date"},
    {"id": "seen", "type": "timestamp"},
    {"id": "extra", "type": "json"},
]
RECORDS = [
    {"district": "中西區", "spaces": 120, "rate": 0.5, "open": True, "day": "2024-01-01",
     "seen": "2024-01-01T08:00:00", "extra": {"kind": "public"}},
    {"district": "Wan Chai", "spaces": 80, "rate": 1.5, "open": False, "day": "2024-01-02",
     "seen": "2024-01-02T08:00:00+08:00", "extra": [1, 2]},
    {"district": "Sha Tin", "spaces": 300, "rate": None, "open": True, "day": "2024-01-03",
     "seen": None, "extra": None},
    {"district": "=HYPERLINK(\"http://evil\")", "spaces": -5, "rate": 2.0, "open": None,
     "day": None, "seen": None, "extra": "@SUM(A1)"},
]  # fmt: skip


@pytest.fixture
def resource_id(act: Act) -> str:
    act("organization_create", name="td", title="TD")
    act("package_create", name="car-parks", owner_org="td")
    created = act(
        "datastore_create",
        resource={"package_id": "car-parks", "name": "Spaces"},
        fields=FIELDS,
        primary_key="district",
        indexes=["spaces"],
        records=RECORDS,
    )["result"]
    assert created["primary_key"] == ["district"] and created["indexes"] == ["spaces"]
    return str(created["resource_id"])


def search(act: Act, rid: str, **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = act("datastore_search", resource_id=rid, **kw)["result"]
    return result


def test_create_types_and_info(act: Act, resource_id: str) -> None:
    info = act("datastore_info", id=resource_id)["result"]
    assert info["meta"]["count"] == 4
    assert [f["type"] for f in info["fields"]] == [f["type"] for f in FIELDS]
    found = search(act, resource_id, filters={"district": "Wan Chai"})
    row = found["records"][0]
    assert row["spaces"] == 80 and row["rate"] == 1.5 and row["open"] is False
    assert row["day"] == "2024-01-02"
    assert row["seen"] == "2024-01-02T00:00:00"  # +08:00 stored as UTC
    assert row["extra"] == [1, 2] and isinstance(row["_id"], int)
    assert found["fields"][0] == {"id": "_id", "type": "int"}
    assert found["total"] == 1 and found["total_was_estimated"] is False
    # a value of the wrong type is refused, naming the record and the field
    bad = act(
        "datastore_upsert",
        409,
        resource_id=resource_id,
        records=[{"district": "X", "spaces": "many"}],
    )["error"]
    assert bad["__type"] == "Validation Error" and "spaces" in bad["records"][0]
    assert act("datastore_info", id=resource_id)["result"]["meta"]["count"] == 4


def test_filters_with_operators_q_sort_fields_distinct(act: Act, resource_id: str) -> None:
    def districts(**kw: Any) -> list[str]:
        return [r["district"] for r in search(act, resource_id, **kw)["records"]]

    assert districts(filters={"spaces": {"gte": 80, "lt": 300}}, sort="spaces desc") == [
        "中西區",
        "Wan Chai",
    ]
    assert districts(filters={"spaces": ["80", 300]}, sort="spaces") == ["Wan Chai", "Sha Tin"]
    assert districts(filters={"open": {"ne": True}}) == ["Wan Chai"]
    assert districts(filters={"day": {"$gt": "2024-01-01"}}, sort="day") == ["Wan Chai", "Sha Tin"]
    assert districts(q="sha") == ["Sha Tin"]
    assert districts(q="西區") == ["中西區"]
    assert districts(q={"district": "wan"}) == ["Wan Chai"]
    assert districts(full_text="public") == ["中西區"]  # in the json column
    # descending puts empty values first, ascending last (PostgreSQL's order, on both)
    evil = '=HYPERLINK("http://evil")'
    assert districts(sort="rate desc") == ["Sha Tin", evil, "Wan Chai", "中西區"]
    assert districts(sort="rate") == ["中西區", "Wan Chai", evil, "Sha Tin"]
    lists = search(
        act, resource_id, fields="district,spaces", sort="spaces", records_format="lists"
    )
    assert lists["records"][0] == ['=HYPERLINK("http://evil")', -5]
    assert [f["id"] for f in lists["fields"]] == ["district", "spaces"]
    as_csv = search(act, resource_id, fields=["spaces"], sort="spaces", records_format="csv")
    assert as_csv["records"] == "-5\n80\n120\n300\n"
    distinct = search(act, resource_id, fields="open", distinct=True, sort="open")
    assert sorted(map(str, (r["open"] for r in distinct["records"]))) == ["False", "None", "True"]
    for bad in ({"filters": {"nope": 1}}, {"filters": {"spaces": {"like": 1}}}, {"sort": "nope"}):
        error = act("datastore_search", 409, resource_id=resource_id, **bad)["error"]
        assert error["__type"] == "Validation Error"


def test_upsert_insert_update_and_delete(act: Act, resource_id: str) -> None:
    act(
        "datastore_upsert",
        resource_id=resource_id,
        records=[{"district": "Sha Tin", "spaces": 301}, {"district": "Tai Po", "spaces": 7}],
    )
    rows = {r["district"]: r for r in search(act, resource_id, limit=10)["records"]}
    assert rows["Sha Tin"]["spaces"] == 301 and rows["Sha Tin"]["open"] is True  # others kept
    assert rows["Tai Po"]["spaces"] == 7
    checked = act(
        "datastore_upsert",
        resource_id=resource_id,
        method="insert",
        dry_run=True,
        records=[{"district": "Yuen Long", "spaces": 1}],
    )["result"]
    assert checked["records_written"] == 1 and checked["dry_run"] is True
    assert search(act, resource_id, filters={"district": "Yuen Long"})["total"] == 0
    dup = act(
        "datastore_upsert",
        409,
        resource_id=resource_id,
        method="insert",
        records=[{"district": "Tai Po"}],
    )
    assert dup["error"]["__type"] == "Validation Error"
    missing = act(
        "datastore_upsert",
        409,
        resource_id=resource_id,
        method="update",
        records=[{"district": "Nowhere", "spaces": 1}],
    )
    assert "not found" in missing["error"]["records"][0]
    act(
        "datastore_upsert",
        resource_id=resource_id,
        method="update",
        records=[{"district": "Tai Po", "spaces": 8}],
    )
    act("datastore_delete", resource_id=resource_id, filters={"spaces": {"lt": 100}})
    left = sorted(r["district"] for r in search(act, resource_id)["records"])
    assert left == ["Sha Tin", "中西區"]
    act("datastore_delete", resource_id=resource_id)
    gone = act("datastore_search", 404, resource_id=resource_id)["error"]
    assert gone["__type"] == "Not Found Error"


def test_keyset_next_link_walks_every_row_once(act: Act, resource_id: str) -> None:
    act(
        "datastore_upsert",
        resource_id=resource_id,
        records=[{"district": f"d{i:03}", "spaces": i % 7} for i in range(50)],
    )
    seen: list[str] = []
    page = search(act, resource_id, sort="spaces desc", limit=9)
    while page["records"]:
        seen += [r["district"] for r in page["records"]]
        args = {k: v[0] for k, v in parse_qs(urlsplit(page["_links"]["next"]).query).items()}
        assert "cursor" in args and "offset" not in args
        page = search(act, resource_id, **{k: v for k, v in args.items() if k != "resource_id"})
    assert len(seen) == 54 and len(set(seen)) == 54
    spaces = {r["district"]: r["spaces"] for r in search(act, resource_id, limit=100)["records"]}
    assert [spaces[d] for d in seen] == sorted(spaces.values(), reverse=True)
    wrong = act(
        "datastore_search", 409, resource_id=resource_id, sort="district", cursor=args["cursor"]
    )
    assert "sort" in wrong["error"]["cursor"][0]


def test_dumps_neutralise_formulas(od_client: TestClient, resource_id: str) -> None:
    r = od_client.get(f"/datastore/dump/{resource_id}?format=csv&sort=spaces")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["_id", "district", "spaces"]
    assert rows[1][1] == '\'=HYPERLINK("http://evil")' and rows[1][2] == "-5"
    assert rows[1][7] == "'@SUM(A1)"
    tsv = od_client.get(f"/datastore/dump/{resource_id}?format=tsv&bom=true")
    assert tsv.content.startswith("\ufeff".encode()) and "\t\"'=HYPERLINK" in tsv.text
    dumped = od_client.get(f"/datastore/dump/{resource_id}?format=json").json()
    assert len(dumped["records"]) == 4 and dumped["fields"][1]["id"] == "district"
    assert [r[1] for r in dumped["records"] if r[1].startswith("=")] == [
        '=HYPERLINK("http://evil")'
    ]

    from openpyxl import load_workbook

    x = od_client.get(f"/datastore/dump/{resource_id}?format=xlsx&sort=spaces")
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content), read_only=True).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][1] == "district" and values[1][1] == '\'=HYPERLINK("http://evil")'
    assert values[1][2] == -5  # a number stays a number
    missing = od_client.get("/datastore/dump/nope?format=csv")
    assert missing.status_code == 404 and missing.json()["error"]["__type"] == "Not Found Error"
    assert od_client.get(f"/datastore/dump/{resource_id}?format=pdf").status_code == 409


def test_search_sql_is_off_by_default(act: Act, resource_id: str) -> None:
    off = act("datastore_search_sql", 400, sql=f'SELECT * FROM "{resource_id}"')["error"]
    assert "not enabled" in off["message"]


def test_resources_with_a_table_say_datastore_active(act: Act, resource_id: str) -> None:
    """CKAN's flag, which clients (and CKAN's own pages) read to offer the DataStore API."""
    link = act("resource_create", package_id="car-parks", url="https://example.org/a.csv")
    assert link["result"]["datastore_active"] is False
    assert act("resource_show", id=resource_id)["result"]["datastore_active"] is True
    shown = act("package_show", id="car-parks")["result"]["resources"]
    assert {r["id"]: r["datastore_active"] for r in shown} == {
        resource_id: True,
        link["result"]["id"]: False,
    }
    found = act("package_search", q="name:car-parks")["result"]["results"][0]["resources"]
    assert sorted(r["datastore_active"] for r in found) == [False, True]
    listed = act("resource_search", query="name:Spaces")["result"]["results"]
    assert [r["datastore_active"] for r in listed] == [True]
    act("datastore_delete", resource_id=resource_id)
    assert act("resource_show", id=resource_id)["result"]["datastore_active"] is False
