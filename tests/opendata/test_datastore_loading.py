"""Loading files into the DataStore (both backends): encodings Hong Kong's government CSVs
come in, types inferred and overridden, bad rows reported by line with the good rows kept,
nothing half-written after a failed load, and uploads through resource_create loaded."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, make_act, open_settings

from smartcity.app import create_app
from smartcity.opendata.datastore.loader import LoadError, load_file
from smartcity.opendata.runtime import OpenData
from smartcity.storage.engine import Database

TEXT = "地區,車位,日期\n中西區,120,2024-01-01\n灣仔,80,2024-01-02\n沙田,300,2024-01-03\n"
# Big5 is told from its bytes: a real file's length of Chinese (districts, car parks)
BIG5 = TEXT + "".join(
    f"{name}停車場,{n},2024-02-{n % 28 + 1:02}\n"
    for n, name in enumerate(
        ["九龍城", "觀塘", "深水埗", "黃大仙", "油尖旺", "離島", "葵青", "北區"] * 4
    )
)


@pytest.fixture
def od(od_client: TestClient) -> OpenData:
    found: OpenData = od_client.app.state.opendata  # type: ignore[attr-defined]
    return found


@pytest.fixture
def rid(act: Act) -> str:
    act("organization_create", name="td", title="TD")
    act("package_create", name="car-parks", owner_org="td")
    return str(
        act("resource_create", package_id="car-parks", url="https://x.example/a.csv")["result"][
            "id"
        ]
    )


def rows(act: Act, rid: str, **kw: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = act("datastore_search", resource_id=rid, sort="_id", **kw)[
        "result"
    ]["records"]
    return found


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("utf-8", TEXT.encode("utf-8")),
        ("utf-8-sig", TEXT.encode("utf-8-sig")),
        ("utf-16", TEXT.encode("utf-16")),  # with a BOM
        ("utf-16-le", TEXT.encode("utf-16-le")),  # without one
        ("big5hkscs", BIG5.encode("big5hkscs")),  # 埗 is an HKSCS character
    ],
)
def test_encodings_are_detected(
    od: OpenData, act: Act, rid: str, tmp_path: Path, encoding: str, data: bytes
) -> None:
    path = tmp_path / "spaces.csv"
    path.write_bytes(data)
    report = load_file(od.datastore, rid, path)
    assert report.encoding == encoding and report.bad_row_count == 0
    info = act("datastore_info", id=rid)["result"]
    assert [(f["id"], f["type"]) for f in info["fields"]] == [
        ("地區", "text"),
        ("車位", "int"),
        ("日期", "date"),
    ]
    first = rows(act, rid)[0]
    assert first["地區"] == "中西區" and first["車位"] == 120 and first["日期"] == "2024-01-01"


def test_bad_rows_are_reported_by_line_and_good_rows_kept(
    od: OpenData, act: Act, rid: str, tmp_path: Path
) -> None:
    path = tmp_path / "spaces.tsv"
    path.write_text(
        "district\tspaces\n"
        "Central\t120\n"
        "Wan Chai\tmany\n"  # line 3: not an int
        '"Sha\nTin"\t300\n'  # lines 4-5: one record over two lines
        "Tai Po\t7\textra\n"  # line 6: a cell too many
        "\n"
        "Yuen Long\t9\n",  # line 8
        encoding="utf-8",
    )
    report = load_file(od.datastore, rid, path, types={"spaces": "int"})
    assert [b["line"] for b in report.bad_rows] == [3, 6]
    assert "spaces" in report.bad_rows[0]["error"] and "many" in report.bad_rows[0]["error"]
    assert report.rows_loaded == 3
    assert [r["district"] for r in rows(act, rid)] == ["Central", "Sha\nTin", "Yuen Long"]


def test_a_bad_cell_in_a_fast_batch_costs_only_its_row(
    od: OpenData, act: Act, rid: str, tmp_path: Path
) -> None:
    path = tmp_path / "counts.csv"
    path.write_text(
        "day,count,rate\n"
        "2024-01-01,5,1.5\n"
        "2024-02-30,6,2.5\n"  # line 3: no such day
        "2024-01-03,,\n"  # empty cells are NULL
        '2024-01-04,"1,234",3\n'  # a thousands separator is read by the general path
        "2024-01-05,12345678901234567890,4\n",  # line 6: more digits than an int holds
        encoding="utf-8",
    )
    report = load_file(od.datastore, rid, path, types={"day": "date", "count": "int"})
    assert [b["line"] for b in report.bad_rows] == [3, 6]
    assert [(r["day"], r["count"], r["rate"]) for r in rows(act, rid)] == [
        ("2024-01-01", 5, 1.5),
        ("2024-01-03", None, None),
        ("2024-01-04", 1234, 3.0),
    ]


def test_types_are_inferred_and_overridden(
    od: OpenData, act: Act, rid: str, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "code,rate,ok,when,note,_hidden,code\n"
        "007,1.5,yes,2024-01-01 08:00,a,x,1\n"
        "010,2,no,2024-01-02T09:30:00,b,y,2\n"
    )
    load_file(od.datastore, rid, path, types={"code": "text"})
    info = act("datastore_info", id=rid)["result"]
    assert [(f["id"], f["type"]) for f in info["fields"]] == [
        ("code", "text"), ("rate", "float"), ("ok", "bool"), ("when", "timestamp"),
        ("note", "text"), ("hidden", "text"), ("code_2", "int"),
    ]  # fmt: skip
    assert rows(act, rid)[0]["code"] == "007"  # a leading zero kept by the override


def test_xlsx_and_json_load(od: OpenData, act: Act, rid: str, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["district", "spaces"])
    sheet.append(["Central", 120])
    sheet.append(["Wan Chai", "n/a"])
    book.save(tmp_path / "s.xlsx")
    report = load_file(od.datastore, rid, tmp_path / "s.xlsx", types={"spaces": "int"})
    assert report.rows_loaded == 1 and report.bad_rows[0]["line"] == 3
    (tmp_path / "s.jsonl").write_text('{"a": 1, "b": "x"}\n[1]\n{"a": 2, "b": "y"}\n')
    report = load_file(od.datastore, rid, tmp_path / "s.jsonl")
    assert report.rows_loaded == 2 and report.bad_rows[0]["line"] == 2
    assert [r["a"] for r in rows(act, rid)] == [1, 2]


def test_a_failed_load_leaves_the_previous_table(
    od: OpenData, act: Act, rid: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("a,b\n1,x\n2,y\n")
    load_file(od.datastore, rid, good)
    broken = tmp_path / "broken.csv"
    # valid UTF-8 for the whole type sample, then a byte that is not: the load breaks off
    # after rows were written into the new table
    broken.write_bytes(b"a,b\n" + b"3,z\n" * 30_000 + b"4,\xff\xfe\n")
    with pytest.raises(LoadError, match="encoding"):
        load_file(od.datastore, rid, broken, encoding="utf-8")
    assert [r["b"] for r in rows(act, rid)] == ["x", "y"]
    assert act("datastore_info", id=rid)["result"]["meta"]["count"] == 2


def test_an_uploaded_csv_is_loaded_and_dropped_with_its_resource(
    od_client: TestClient, act: Act
) -> None:
    act("organization_create", name="td", title="TD")
    act("package_create", name="car-parks", owner_org="td")
    body = TEXT.encode("big5") + "大埔,7,2024-01-04,多了\n".encode("big5")  # a cell too many
    r = od_client.post(
        "/api/3/action/resource_create",
        data={"package_id": "car-parks", "name": "Spaces"},
        files={"upload": ("spaces.csv", io.BytesIO(body), "text/csv")},
    )
    assert r.status_code == 200, r.json()
    rid = r.json()["result"]["id"]
    info = act("datastore_info", id=rid)["result"]
    load = info["meta"]["load"]
    assert load["state"] == "complete" and load["encoding"] == "big5hkscs"
    assert load["rows_loaded"] == 3 and load["bad_rows"] == [
        {"line": 5, "error": load["bad_rows"][0]["error"]}
    ]
    assert info["meta"]["count"] == 3
    # a new file that is not tabular: the table of the old one goes
    pdf = od_client.post(
        "/api/3/action/resource_patch",
        data={"id": rid},
        files={"upload": ("report.pdf", io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "application/pdf")},
    )
    assert pdf.status_code == 200, pdf.json()
    assert act("datastore_info", id=rid)["result"]["meta"]["datastore_active"] is False
    act("resource_delete", id=rid)
    assert act("datastore_search", 404, resource_id=rid)["error"]["__type"] == "Not Found Error"
    with od_client.app.state.opendata.datastore.db.read() as conn:  # type: ignore[attr-defined]
        names = conn.dialect.get_table_names(conn)
    from smartcity.opendata.datastore.physical import table_name

    assert table_name(rid) not in names


def test_a_large_upload_loads_in_the_background(db: Database, tmp_path: Path) -> None:
    """Above the synchronous size (here 0 bytes) the upload answers at once and the load's
    state moves to complete; an unreadable file ends in error with the reason, and the file
    itself is kept."""
    settings = open_settings(db, tmp_path, auth=False, datastore_sync_load_bytes=0)
    with TestClient(create_app(settings)) as client:
        act = make_act(client)
        act("organization_create", name="td", title="TD")
        act("package_create", name="car-parks", owner_org="td")

        def upload(name: str, body: bytes) -> str:
            r = client.post(
                "/api/3/action/resource_create",
                data={"package_id": "car-parks"},
                files={"upload": (name, io.BytesIO(body), "text/csv")},
            )
            assert r.status_code == 200, r.json()
            return str(r.json()["result"]["id"])

        def settled(rid: str) -> dict[str, Any]:
            deadline = time.monotonic() + 30
            while True:
                load: dict[str, Any] = act("datastore_info", id=rid)["result"]["meta"]["load"]
                if load["state"] in ("complete", "error") or time.monotonic() > deadline:
                    return load
                time.sleep(0.05)

        good = upload("spaces.csv", TEXT.encode())
        assert settled(good)["state"] == "complete"
        assert act("datastore_info", id=good)["result"]["meta"]["count"] == 3
        empty = upload("empty.csv", b"")
        failed = settled(empty)
        assert failed["state"] == "error" and "empty" in failed["message"]
        assert act("resource_show", id=empty)["result"]["url_type"] == "upload"
