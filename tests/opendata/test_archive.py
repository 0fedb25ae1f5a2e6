"""The historical archive: uploads kept at once, links on a run, each change a version, the
same content kept once; DATA.GOV.HK's archive API over it (its parameters, shapes and errors);
retention; private datasets kept out of it; the SSRF guard on what a run fetches."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, open_settings, trilingual
from tests.opendata.servers import serve_folder

from smartcity.app import create_app
from smartcity.config import OpenDataSettings
from smartcity.hub.outbound import TargetGuard
from smartcity.opendata.archive.queries import HKT
from smartcity.opendata.archive.service import ArchiveService
from smartcity.opendata.catalogue.uploads import UploadStore
from smartcity.storage.engine import Database

API = "/api/v1/historical-archive"


def today() -> str:
    return dt.datetime.now(HKT).strftime("%Y%m%d")


def upload(client: TestClient, dataset: str, name: str, body: bytes, rid: str | None = None) -> Any:
    action = "resource_update" if rid else "resource_create"
    data = {"id": rid} if rid else {"package_id": dataset, "name": "Spaces"}
    response = client.post(
        f"/api/3/action/{action}", data=data, files={"upload": (name, body, "text/csv")}
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def versions(client: TestClient, url: str) -> dict[str, Any]:
    response = client.get(
        f"{API}/list-file-versions", params={"url": url, "start": today(), "end": today()}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_upload_is_kept_at_once_and_each_change_is_a_version(
    od_client: TestClient, transport: dict[str, Any], db: Database
) -> None:
    first = upload(od_client, "car-park-vacancy", "spaces.csv", b"district,spaces\nWan Chai,80\n")
    url = first["url"]  # the file's URL, as package_show shows it
    found = versions(od_client, url)
    assert found["version-count"] == 1 and len(found["timestamps"]) == 1
    assert found["data-dictionary-dates"] == [today()]
    stamp = found["timestamps"][0]
    got = od_client.get(f"{API}/get-file", params={"url": url, "time": stamp})
    assert got.status_code == 200 and got.content == b"district,spaces\nWan Chai,80\n"

    # The same content again is no new version; a change is, and the old one stays readable.
    upload(od_client, "", "spaces.csv", b"district,spaces\nWan Chai,80\n", rid=first["id"])
    assert versions(od_client, url)["version-count"] == 1
    upload(od_client, "", "spaces.csv", b"district,spaces\nWan Chai,75\n", rid=first["id"])
    archive = od_client.app.state.opendata.archive  # type: ignore[attr-defined]
    assert archive.count() == 3  # two file versions, one data dictionary
    assert kept_versions(db, url.removeprefix("http://testserver")) == 2
    # A minute's file is the latest captured in it (the two captures may fall in one minute
    # or straddle two: the test must not depend on the clock).
    stamps = versions(od_client, url)["timestamps"]
    got = od_client.get(f"{API}/get-file", params={"url": url, "time": stamps[-1]})
    assert got.content == b"district,spaces\nWan Chai,75\n"
    earlier = od_client.get(f"{API}/get-file", params={"url": url, "time": stamp}).content
    assert earlier == (b"district,spaces\nWan Chai,80\n" if len(stamps) == 2 else got.content)

    # Any host in the question finds this site's own file.
    elsewhere = url.replace("http://testserver", "https://data.example.hk")
    assert versions(od_client, elsewhere)["version-count"] == 1


def test_list_files_answers_in_data_gov_hks_shape(
    od_client: TestClient, transport: dict[str, Any]
) -> None:
    upload(od_client, "car-park-vacancy", "spaces.csv", b"a,b\n1,2\n")
    params = {"start": today(), "end": today()}
    body = od_client.get(f"{API}/list-files", params=params).json()
    assert body["file-count"] == 1
    [item] = body["files"]
    assert item["url"].startswith("http://testserver/dataset/")
    assert item["dataset-id"] == "car-park-vacancy"
    assert item["dataset-name-tc"] == "停車場空置車位"
    assert item["provider-id"] == "td" and item["provider-name-sc"] == "运输署"
    assert item["category-ids"] == ["transport"] and item["format"] == "CSV"
    assert item["version-count"] == 1 and item["last-version"].startswith(today())
    for narrowed, count in (
        ({"provider": "epd"}, 0),
        ({"category": "transport"}, 1),
        ({"format": "json"}, 0),
        ({"search": "停車"}, 1),
        ({"search": "rainfall"}, 0),
        ({"skip": "1"}, 0),
    ):
        answer = od_client.get(f"{API}/list-files", params={**params, **narrowed}).json()
        assert len(answer["files"]) == count, narrowed
    yesterday = (dt.datetime.now(HKT) - dt.timedelta(days=1)).strftime("%Y%m%d")
    before = od_client.get(f"{API}/list-files", params={"start": yesterday, "end": yesterday})
    assert before.json() == {"file-count": 0, "files": []}


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter"),
    [
        ("list-files", {}, 400, "start"),
        ("list-files", {"start": "2024-01-01", "end": "20240101"}, 400, "start"),
        ("list-files", {"start": "20240102", "end": "20240101"}, 400, "end"),
        ("list-files", {"start": "20240101", "end": "20240101", "max": "5000"}, 400, "max"),
        ("list-files", {"start": "20240101", "end": "20240101", "order": "x"}, 400, "order"),
        ("list-file-versions", {"start": "20240101", "end": "20240101"}, 400, "url"),
        ("get-file", {"url": "https://x.example/a.csv", "time": "20240101"}, 400, "time"),
        ("get-file", {"url": "https://x.example/a.csv", "time": "20240101-1200"}, 404, "time"),
        ("get-data-dictionary", {"url": "https://x.example/a.csv"}, 400, "date"),
        (
            "get-data-dictionary",
            {"url": "https://x.example/a.csv", "date": "20240101"},
            404,
            "date",
        ),
    ],
)
def test_errors_say_which_parameter_and_what_to_send(
    od_client: TestClient, path: str, params: dict[str, str], status: int, parameter: str
) -> None:
    response = od_client.get(f"{API}/{path}", params=params)
    assert response.status_code == status
    errors = response.json()["errors"]
    assert parameter in {e["parameter"] for e in errors}
    assert all(e["message"] for e in errors)


def test_links_are_kept_on_a_run_deduplicated_and_pruned(
    od_client: TestClient, act: Act, transport: dict[str, Any], tmp_path: Path, db: Database
) -> None:
    act("resource_delete", id=transport["resources"][0]["id"])  # example.org: no network here
    served = tmp_path / "served"
    served.mkdir()
    (served / "a.csv").write_bytes(b"x\n1\n")
    (served / "b.csv").write_bytes(b"x\n1\n")  # the same content as a.csv
    archive: ArchiveService = od_client.app.state.opendata.archive  # type: ignore[attr-defined]
    with serve_folder(served) as base:
        for name in ("a", "b"):
            act(
                "resource_create",
                package_id="car-park-vacancy",
                url=f"{base}/{name}.csv",
                name=name,
            )
        act("resource_create", package_id="car-park-vacancy", url=f"{base}/gone.csv", name="gone")
        report = archive.run()
        # gone.csv fails: it is reported, and the others are kept all the same.
        assert report.kept == 2
        assert report.failed == [(f"{base}/gone.csv", "the server answered 404")]
        files = {p.name for p in archive.blobs.root.rglob("*") if p.is_file()}
        assert len(files) == 2  # one CSV content (shared by a and b) and one data dictionary
        assert archive.run().kept == 0  # nothing changed: no new versions
        for content in (b"x\n2\n", b"x\n3\n"):
            (served / "a.csv").write_bytes(content)
            assert archive.run().kept == 1
    # Three versions of a.csv, captured within a minute: one timestamp, the minute's last.
    assert kept_versions(db, f"{base}/a.csv") == 3
    old = versions(od_client, f"{base}/a.csv")["timestamps"]
    # Retention: keep 1 version per file; a's two older versions go, and with them the
    # content only they used (x 2); x 1 is still b's, so its file stays.
    archive.settings = OpenDataSettings(data_dir=archive.settings.data_dir, archive_keep_versions=1)
    pruned, removed = archive.prune()
    assert pruned == 2 and removed == 1
    assert kept_versions(db, f"{base}/a.csv") == 1
    got = od_client.get(f"{API}/get-file", params={"url": f"{base}/a.csv", "time": old[-1]})
    assert got.content == b"x\n3\n"
    assert kept_versions(db, f"{base}/b.csv") == 1


def test_days_retention_keeps_the_latest_version(
    od_client: TestClient, transport: dict[str, Any], db: Database
) -> None:
    archive: ArchiveService = od_client.app.state.opendata.archive  # type: ignore[attr-defined]
    first = upload(od_client, "car-park-vacancy", "a.csv", b"a\n1\n")
    upload(od_client, "", "a.csv", b"a\n2\n", rid=first["id"])
    archive.settings = OpenDataSettings(data_dir=archive.settings.data_dir, archive_keep_days=1)
    far_future = archive_now() + 3 * 86_400 * 1_000_000
    pruned, _ = archive.prune(now=far_future)
    assert pruned == 1  # the older file version; the latest file and dictionary stay
    assert kept_versions(db, first["url"].removeprefix("http://testserver")) == 1


def kept_versions(db: Database, url: str) -> int:
    from sqlalchemy import func, select

    from smartcity.opendata.archive.tables import versions as v

    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(v.c.url == url, v.c.kind == "file")
            ).scalar_one()
        )


def archive_now() -> int:
    return time.time_ns() // 1000


def test_private_and_purged_datasets_are_not_in_the_archive(
    od_client: TestClient, act: Act, transport: dict[str, Any], db: Database, tmp_path: Path
) -> None:
    act("package_create", name="secret", owner_org="td", private=True, title="Secret")
    kept = upload(od_client, "secret", "s.csv", b"s\n1\n")
    public = upload(od_client, "car-park-vacancy", "p.csv", b"p\n1\n")
    params = {"start": today(), "end": today()}
    assert od_client.get(f"{API}/list-files", params=params).json()["file-count"] == 2  # sysadmin
    with TestClient(create_app(open_settings(db, tmp_path, auth=True))) as anonymous:
        listed = anonymous.get(f"{API}/list-files", params=params).json()
        assert [f["dataset-id"] for f in listed["files"]] == ["car-park-vacancy"]
        assert versions(anonymous, kept["url"])["timestamps"] == []
        stamp = versions(od_client, kept["url"])["timestamps"][0]
        hidden = anonymous.get(f"{API}/get-file", params={"url": kept["url"], "time": stamp})
        assert hidden.status_code == 404
        refused = anonymous.get(
            f"{API}/list-files", params=params, headers={"Authorization": "nope"}
        )
        assert refused.status_code == 403 and refused.json()["errors"][0]["message"]
    act("dataset_purge", id="secret")
    assert versions(od_client, kept["url"])["timestamps"] == []
    assert versions(od_client, public["url"])["version-count"] == 1


def test_a_run_fetches_links_through_the_ssrf_guard(db: Database, tmp_path: Path) -> None:
    """With private targets forbidden, a link to this machine is refused and reported."""
    from tests.opendata.helpers import make_act

    app = create_app(open_settings(db, tmp_path, auth=False))
    app.state.opendata.organisations.seed_licences()
    served = tmp_path / "served"
    served.mkdir()
    (served / "inside.csv").write_bytes(b"secret\n")
    with TestClient(app) as client, serve_folder(served) as base:
        act = make_act(client)
        act("organization_create", name="td", title="TD")
        act(
            "package_create",
            name="inside",
            owner_org="td",
            title_translated=trilingual("D", "D", "D"),
            resources=[{"url": f"{base}/inside.csv", "name": "inside"}],
        )
        settings = OpenDataSettings(data_dir=tmp_path / "guarded")
        guarded = ArchiveService(
            db,
            settings,
            UploadStore(settings.upload_dir, 1 << 20),
            TargetGuard(forbid_private=True),
        )
        report = guarded.run()
        assert report.kept == 0
        [(url, why)] = report.failed
        assert url == f"{base}/inside.csv" and "SSRF guard" in why and "loopback" in why
        assert not any(
            p.is_file() and not p.name.startswith(".") for p in settings.archive_dir.rglob("*")
        )


def test_serve_snapshots_links_on_its_interval(db: Database, tmp_path: Path) -> None:
    """With SMARTCITY_OPENDATA_ARCHIVE_INTERVAL set, the server archives by itself."""
    from tests.opendata.helpers import make_act

    served = tmp_path / "served"
    served.mkdir()
    (served / "live.csv").write_bytes(b"v\n1\n")
    settings = open_settings(db, tmp_path, auth=False, archive_interval=0.2)
    app = create_app(settings)
    app.state.opendata.organisations.seed_licences()
    with serve_folder(served) as base, TestClient(app) as client:
        act = make_act(client)
        act("organization_create", name="td", title="TD")
        act("package_create", name="live", owner_org="td", title="Live",
            resources=[{"url": f"{base}/live.csv", "name": "live", "kind": "api"}])  # fmt: skip
        deadline = time.monotonic() + 15
        while kept_versions(db, f"{base}/live.csv") == 0:
            assert time.monotonic() < deadline, "no snapshot within 15 s"
            time.sleep(0.1)
        (served / "live.csv").write_bytes(b"v\n2\n")
        while kept_versions(db, f"{base}/live.csv") < 2:
            assert time.monotonic() < deadline, "the change was not kept within 15 s"
            time.sleep(0.1)
