"""The DataStore through the real CKAN client and the command line, against a real
``smartcity serve`` (both backends): ``ckanapi action datastore_create/upsert/search/info``
with a sysadmin's key, and ``smartcity opendata datastore load`` with a Big5 file."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import _empty
from tests.opendata.test_ckanapi_client import CLI, _env, ckanapi

from smartcity.storage.engine import Database

pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


class Server:
    def __init__(self, base: str, key: str, env: dict[str, str], url: str) -> None:
        self.base, self.key, self.env, self.url = base, key, env, url

    def action(self, name: str, *args: str) -> Any:
        out = ckanapi("action", name, *args, "-r", self.base, "-a", self.key, env=self.env)
        return json.loads(out)


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("datastore")
    db = Database(database_url)
    _empty(db)
    db.dispose()
    env = _env(tmp)
    key = run("keys", "create", "loader", "--database", database_url, env=env).stdout
    key = key.strip().splitlines()[-1]
    assert (
        run("opendata", "sysadmin", "add", "loader", "--database", database_url, env=env).returncode
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--database", database_url, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "server exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready in 30 s"
            time.sleep(0.1)
        yield Server(base, key, env, database_url)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_ckanapi_datastore_actions(server: Server) -> None:
    server.action("organization_create", "name=td", "title=TD")
    server.action("package_create", "name=car-parks", "owner_org=td")
    created = server.action(
        "datastore_create",
        'resource:{"package_id": "car-parks", "name": "Spaces"}',
        'fields:[{"id": "district", "type": "text"}, {"id": "spaces", "type": "int"}]',
        'primary_key:"district"',
        'records:[{"district": "中西區", "spaces": 120}, {"district": "灣仔", "spaces": 80}]',
    )
    rid = created["resource_id"]
    server.action(
        "datastore_upsert",
        f"resource_id={rid}",
        'records:[{"district": "灣仔", "spaces": 81}, {"district": "沙田", "spaces": 300}]',
    )
    found = server.action(
        "datastore_search",
        f"resource_id={rid}",
        'filters:{"spaces": {"gt": 100}}',
        "sort=spaces desc",
    )
    assert [r["district"] for r in found["records"]] == ["沙田", "中西區"]
    assert found["total"] == 2
    info = server.action("datastore_info", f"id={rid}")
    assert info["meta"]["count"] == 3 and info["primary_key"] == ["district"]
    # a CKAN error comes back as ckanapi's ValidationError: the command fails, saying why
    done = subprocess.run(
        [str(Path(CLI[0]).parent / "ckanapi"), "action", "datastore_search", f"resource_id={rid}",
         "sort=nope", "-r", server.base],
        capture_output=True, timeout=60, env=server.env,
    )  # fmt: skip
    assert done.returncode != 0 and b"nope" in done.stdout + done.stderr


def test_cli_load_with_progress_and_bad_rows(server: Server, tmp_path: Path) -> None:
    server.action("organization_create", "name=epd", "title=EPD")
    server.action("package_create", "name=air", "owner_org=epd")
    rid = server.action("resource_create", "package_id=air", "url=https://x.example/aqhi.csv")["id"]
    path = tmp_path / "aqhi.csv"
    path.write_bytes("站點,指數\n中西區,3\n深水埗,x\n".encode("big5hkscs"))
    done = run(
        "opendata", "datastore", "load", rid, str(path), "--type", "指數=int",
        "--database", server.url, env=server.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded 1 rows" in done.stdout and "big5hkscs" in done.stdout
    assert "line 3" in done.stderr
    found = server.action("datastore_search", f"resource_id={rid}")
    assert found["records"][0]["站點"] == "中西區"
    missing = run(
        "opendata", "datastore", "load", "nope", str(path), "--database", server.url, env=server.env
    )
    assert missing.returncode == 1 and "no resource" in missing.stderr
