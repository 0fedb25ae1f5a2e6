"""Resource uploads: multipart resource_create/update, the size limit and type checks, the
download path, files removed with their resource (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, make_act, open_settings

from smartcity.app import create_app
from smartcity.storage.engine import Database

CSV = "district,spaces\n中西區,120\nWan Chai,80\n".encode()


@pytest.fixture
def small(db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """An app whose uploads may be at most 1 KiB."""
    settings = open_settings(db, tmp_path, auth=False, max_upload_bytes=1024)
    with TestClient(create_app(settings)) as client:
        act = make_act(client)
        act("organization_create", name="td", title="TD")
        act("package_create", name="car-parks", owner_org="td")
        yield client, tmp_path / "opendata" / "uploads"


def upload(client: TestClient, action: str, filename: str, content: bytes, **fields: str) -> Any:
    return client.post(
        f"/api/3/action/{action}",
        data=fields,
        files={"upload": (filename, content, "application/octet-stream")},
    )


def test_upload_is_kept_served_and_replaced(small: tuple[TestClient, Path]) -> None:
    client, folder = small
    r = upload(
        client, "resource_create", "spaces 2024.csv", CSV, package_id="car-parks", name="Spaces"
    )
    assert r.status_code == 200, r.json()
    resource = r.json()["result"]
    assert resource["url_type"] == "upload" and resource["kind"] == "upload"
    assert resource["format"] == "CSV" and resource["mimetype"] == "text/csv"
    assert resource["size"] == len(CSV) and resource["hash"].startswith("sha256:")
    assert resource["url"].endswith(f"/resource/{resource['id']}/download/spaces-2024.csv")

    download = client.get(resource["url"].removeprefix("http://testserver"))
    assert download.status_code == 200 and download.content == CSV
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"

    newer = b"district,spaces\nSha Tin,300\n"
    r = upload(client, "resource_patch", "spaces.csv", newer, id=resource["id"])
    assert r.status_code == 200, r.json()
    patched = r.json()["result"]
    assert patched["size"] == len(newer) and patched["name"] == "Spaces"
    assert client.get(patched["url"].removeprefix("http://testserver")).content == newer
    assert [p.name for p in (folder / resource["id"]).iterdir()] == ["spaces.csv"]

    make_act(client)("resource_delete", id=resource["id"])
    assert not (folder / resource["id"]).exists()
    assert client.get(patched["url"].removeprefix("http://testserver")).status_code == 404


def test_uploads_are_checked(small: tuple[TestClient, Path]) -> None:
    client, folder = small
    cases = [
        ("big.csv", b"a,b\n" + b"1,2\n" * 400, "larger than"),  # over 1 KiB
        ("tool.exe", b"MZ\x90\x00", "not accepted"),
        ("data.csv", b"MZ\x90\x00\x03\x00\x00\x00", "binary data"),
        ("sheet.xlsx", b"not a zip file at all", "not what its extension says"),
        ("report.pdf", b"<html><script>alert(1)</script>", "not what its extension says"),
    ]
    for filename, content, says in cases:
        r = upload(client, "resource_create", filename, content, package_id="car-parks")
        assert r.status_code == 409, filename
        error = r.json()["error"]
        assert error["__type"] == "Validation Error"
        assert says in error["upload"][0], (filename, error)
    # Nothing refused was kept, not even half a file.
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []
    assert make_act(client)("package_show", id="car-parks")["result"]["num_resources"] == 0


def test_a_failed_write_keeps_no_file(small: tuple[TestClient, Path]) -> None:
    client, folder = small
    r = upload(client, "resource_create", "a.csv", CSV, package_id="no-such-dataset")
    assert r.status_code == 404
    assert not folder.exists() or list(folder.iterdir()) == []


def test_package_update_that_drops_a_resource_removes_its_file(
    small: tuple[TestClient, Path],
) -> None:
    client, folder = small
    act: Act = make_act(client)
    resource = upload(client, "resource_create", "a.csv", CSV, package_id="car-parks").json()
    resource_id = resource["result"]["id"]
    assert (folder / resource_id / "a.csv").is_file()
    act("package_update", id="car-parks", name="car-parks", owner_org="td", resources=[])
    assert not (folder / resource_id).exists()
