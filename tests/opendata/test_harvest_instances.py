"""Harvesting a second instance of this platform: a real ``smartcity serve`` on its own
database, filled through its CKAN API, harvested into the first with the real command line
(``smartcity opendata harvest ckan``); then changed and harvested again (updated in place).
Its ``archive run`` is run from the command line too, reading the instance's hub query."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import make_act, open_settings
from tests.opendata.test_ckanapi_client import CLI, _env, _second_database, smartcity

from smartcity.app import create_app
from smartcity.storage.engine import Database

pytestmark = pytest.mark.slow


@dataclass
class Source:
    base: str
    key: str
    env: dict[str, str]
    database_url: str

    def act(self, action: str, **data: Any) -> Any:
        response = httpx.post(
            f"{self.base}/api/3/action/{action}",
            json=data,
            headers={"Authorization": self.key},
            timeout=30,
        )
        body = response.json()
        assert body["success"], body
        return body["result"]


@pytest.fixture(scope="module")
def source(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """The second instance: its own database, seeded and served, with a sysadmin key."""
    tmp = tmp_path_factory.mktemp("harvest-source")
    url, drop = _second_database(database_url, tmp)
    env = _env(tmp / "data")
    proc = None
    try:
        smartcity("opendata", "seed", "--database", url, env=env)
        key = smartcity("keys", "create", "publisher", "--database", url, env=env)
        key = key.strip().splitlines()[-1]
        smartcity("opendata", "sysadmin", "add", "publisher", "--database", url, env=env)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--database", url, "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
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
        yield Source(base, key, env, url)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=15)
        drop()


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env=env)


def test_harvest_a_second_instance_in_place(source: Source, db: Database, tmp_path: Path) -> None:
    source.act(
        "package_create",
        name="car-park-vacancy",
        owner_org="td",
        title_translated={"en": "Car park vacancy", "zh-Hant": "停車場空置車位"},
        notes_translated={"en": "Vacancy", "zh-Hans": "空置车位"},
        groups=[{"name": "transport"}],
        tags=[{"name": "parking"}],
        license_id="datagovhk-terms",
        frequency="continuous",
        resources=[
            {"url": "https://example.org/vacancy.csv", "name": "Vacancy (CSV)"},
            {"url": "/ngsi-ld/v1/entities?type=CarPark", "kind": "hub-query", "name": "Live"},
        ],
    )
    source.act("package_create", name="private-one", owner_org="td", private=True, title="P")
    env = {**source.env, "SMARTCITY_OPENDATA_DIR": str(tmp_path / "first")}
    done = run("opendata", "harvest", "ckan", source.base, "--database", db.url, env=env)
    assert done.returncode == 0, done.stderr
    assert "1" in done.stdout  # the table: 1 created

    app = create_app(open_settings(db, tmp_path, auth=False))
    with TestClient(app) as client:
        act = make_act(client)
        # Only what the source publishes: its private dataset is not harvested.
        assert act("package_list")["result"] == ["car-park-vacancy"]
        shown = act("package_show", id="car-park-vacancy")["result"]
        # As the source has them: a language it lacks stays empty here, not a fallback
        # copied from another language (the source's tc-data answer shows English there).
        assert shown["title_translated"] == {
            "en": "Car park vacancy",
            "zh-Hant": "停車場空置車位",
            "zh-Hans": "",
        }
        assert shown["organization"]["name"] == "td" and shown["frequency"] == "continuous"
        link, live = shown["resources"]
        assert link["url"] == "https://example.org/vacancy.csv"
        # The source's hub query stays a call to the source, not to this instance's hub.
        assert (
            live["kind"] == "api"
            and live["url"] == f"{source.base}/ngsi-ld/v1/entities?type=CarPark"
        )
        extras = {e["key"]: e["value"] for e in shown["extras"]}
        assert extras["harvest_source_url"] == source.base
        assert extras["harvest_remote_url"] == f"{source.base}/dataset/car-park-vacancy"
        first_id = shown["id"]

        again = run("opendata", "harvest", "ckan", source.base, "--database", db.url, env=env)
        assert again.returncode == 0, again.stderr
        source.act("package_patch", id="car-park-vacancy", notes="Vacancy every minute")
        third = run("opendata", "harvest", "ckan", source.base, "--database", db.url, env=env)
        assert third.returncode == 0, third.stderr
        after = act("package_show", id="car-park-vacancy")["result"]
        assert after["id"] == first_id and after["notes"] == "Vacancy every minute"
        assert act("package_list")["result"] == ["car-park-vacancy"]


def test_harvest_of_an_unreachable_source_says_what_failed(source: Source, db: Database) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    done = run(
        "opendata", "harvest", "ckan", f"http://127.0.0.1:{closed}", "--database", db.url,
        env=source.env,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"could not read http://127.0.0.1:{closed}" in done.stderr
    assert "ConnectError" in done.stderr


def test_archive_run_on_the_command_line_reads_the_hub_query(source: Source) -> None:
    """``archive run`` on the instance's database: its hub query is read from the site and
    kept, and the instance's archive API serves it."""
    for name in source.act("package_list"):  # example.org cannot be reached from here
        source.act("dataset_purge", id=name)
    source.act(
        "package_create",
        name="live-car-parks",
        owner_org="td",
        title="Live car parks",
        resources=[
            {"url": "/ngsi-ld/v1/entities?type=CarPark", "kind": "hub-query", "name": "Live"},
        ],
    )
    env = {**source.env, "SMARTCITY_OPENDATA_SITE_URL": source.base}
    done = run("opendata", "archive", "run", "--database", source.database_url, env=env)
    assert done.returncode == 0, done.stderr
    assert "1" in done.stdout  # the table: 1 checked, 1 new version
    listed = httpx.get(
        f"{source.base}/api/v1/historical-archive/list-file-versions",
        params={"url": f"{source.base}/ngsi-ld/v1/entities?type=CarPark", "start": "20200101",
                "end": "20991231"},
    ).json()  # fmt: skip
    assert listed["version-count"] == 1
    stamp = listed["timestamps"][0]
    got = httpx.get(
        f"{source.base}/api/v1/historical-archive/get-file",
        params={"url": f"{source.base}/ngsi-ld/v1/entities?type=CarPark", "time": stamp},
    )
    assert got.status_code == 200 and got.json() == []  # no CarPark entities yet
