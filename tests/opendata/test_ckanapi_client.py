"""The real CKAN client (``ckanapi`` from PyPI, its command line) against real ``smartcity
serve`` processes: actions with keys and a file upload, then ``ckanapi dump`` of one
instance loaded with ``ckanapi load`` into a second one (a second database), losing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.conftest import PG_URL, _empty

from smartcity.storage import migrate
from smartcity.storage.engine import Database, normalise_url

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "smartcity"]
BIN = Path(sys.executable).parent
CSV = "district,spaces\n中西區,120\n灣仔,80\n".encode()


def _env(data_dir: Path) -> dict[str, str]:
    # ckanapi runs its workers as `ckanapi` processes: they must be on PATH.
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SMARTCITY_OPENDATA_DIR": str(data_dir),
    }


def smartcity(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ckanapi(*args: str, env: dict[str, str], stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "ckanapi"), *args],
        input=stdin,
        capture_output=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, (done.stdout.decode(), done.stderr.decode())
    return done.stdout.decode()


@dataclass
class Instance:
    base: str
    key: str
    env: dict[str, str]
    database_url: str

    def action(self, *args: str) -> Any:
        return json.loads(ckanapi("action", *args, "-r", self.base, "-a", self.key, env=self.env))


def _second_database(url: str, tmp: Path) -> tuple[str, Any]:
    """A second, migrated database on the same backend, and how to drop it."""
    if url.startswith("sqlite"):
        second = f"sqlite:///{tmp / 'second.db'}"
        db = Database(second)
        migrate.upgrade(db)
        db.dispose()
        return second, lambda: None
    assert PG_URL
    name = f"smartcity_od_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    second = f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    db = Database(second)
    migrate.upgrade(db)
    db.dispose()

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return second, drop


@pytest.fixture(scope="module")
def instances(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Instance, Instance]]:
    """Two servers on two databases, each seeded (`smartcity opendata seed`) and with a
    sysadmin key named `loader`, as an operator sets them up."""
    tmp = tmp_path_factory.mktemp("ckanapi")
    db = Database(database_url)
    _empty(db)  # the session's database may hold other tests' rows
    db.dispose()
    second_url, drop = _second_database(database_url, tmp)
    procs: list[subprocess.Popen[bytes]] = []
    made: list[Instance] = []
    try:
        for label, url in (("a", database_url), ("b", second_url)):
            env = _env(tmp / label)
            if label == "a":  # B receives A's organisations and groups through ckanapi
                smartcity("opendata", "seed", "--database", url, env=env)
            key = smartcity("keys", "create", "loader", "--database", url, env=env)
            key = key.strip().splitlines()[-1]
            smartcity("opendata", "sysadmin", "add", "loader", "--database", url, env=env)
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            procs.append(
                subprocess.Popen(
                    [
                        *CLI,
                        "serve",
                        "--port",
                        str(port),
                        "--database",
                        url,
                        "--log-level",
                        "warning",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert procs[-1].poll() is None, "server exited"
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server not ready in 30 s"
                time.sleep(0.1)
            made.append(Instance(base, key, env, url))
        yield made[0], made[1]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)
        drop()


def _no_datastore(package: dict[str, Any]) -> dict[str, Any]:
    for resource in package.get("resources", []):
        resource.pop("datastore_active", None)
    return package


def test_ckanapi_actions_dump_and_load(
    instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    a, b = instances
    # -- actions through ckanapi's command line, with the key as it sends it -------------------
    assert "td" in a.action("organization_list")
    a.action(
        "organization_create",
        "name=smart-city-office",
        'title_translated:{"en": "Smart City Office", "zh-Hant": "智慧城市辦公室",'
        ' "zh-Hans": "智慧城市办公室"}',
    )
    created = a.action(
        "package_create",
        "name=car-park-vacancy",
        "owner_org=td",
        'title_translated:{"en": "Car park vacancy", "zh-Hant": "停車場空置車位",'
        ' "zh-Hans": "停车场空置车位"}',
        "notes=Vacancy of public car parks",
        'tags:[{"name": "parking"}, {"name": "transport"}]',
        'groups:[{"name": "transport"}]',
        "license_id=datagovhk-terms",
        "frequency=continuous",
        'data_dictionary:[{"name": "spaces", "type": "int", "unit": "space",'
        ' "description_translated": {"en": "Free spaces", "zh-Hant": "空置車位",'
        ' "zh-Hans": "空置车位"}}]',
        'resources:[{"url": "https://example.org/vacancy.json", "name": "Live feed",'
        ' "kind": "api"}, {"url": "/ngsi-ld/v1/entities?type=CarPark", "kind": "hub-query",'
        ' "name": "Hub query"}]',
    )
    assert created["organization"]["name"] == "td"
    upload_file = tmp_path / "spaces.csv"
    upload_file.write_bytes(CSV)
    uploaded = a.action(
        "resource_create",
        "package_id=car-park-vacancy",
        "name=Spaces by district",
        f"upload@{upload_file}",
    )
    assert uploaded["url_type"] == "upload" and uploaded["size"] == len(CSV)
    a.action(
        "package_create",
        "name=city-office-plans",
        "owner_org=smart-city-office",
        "title=Smart city plans",
        'groups:[{"name": "city-management"}]',
    )
    a.action("package_create", "name=hidden", "owner_org=td", "private:true")
    a.action("package_create", "name=unfinished", "owner_org=td", "state=draft")
    found = a.action("package_search", "q=停车", 'facet.field:["organization"]')
    assert [p["name"] for p in found["results"]] == ["car-park-vacancy"]
    assert a.action("package_show", "id=hidden")["private"] is True  # sysadmin sees it

    # An editor's key of another organisation is refused as ckanapi understands it.
    editor = smartcity("keys", "create", "epd-editor", "--database", a.database_url, env=a.env)
    a.action("organization_member_create", "id=epd", "username=epd-editor", "role=editor")
    refused = subprocess.run(
        [
            str(BIN / "ckanapi"),
            "action",
            "package_patch",
            "id=car-park-vacancy",
            "title=x",
            "-r",
            a.base,
            "-a",
            editor.strip().splitlines()[-1],
        ],
        capture_output=True,
        timeout=60,
        env=a.env,
    )
    assert refused.returncode != 0 and b"NotAuthorized" in refused.stderr + refused.stdout

    # -- dump everything from A, load it into B ----------------------------------------------
    dumps = {}
    everything = ("--include-private", "--include-drafts")
    for thing in ("organizations", "groups", "datasets"):
        out = tmp_path / f"{thing}.jsonl"
        ckanapi(
            "dump",
            thing,
            "--all",
            "-r",
            a.base,
            "-a",
            a.key,
            "-p",
            "1",
            "-q",
            "-O",
            str(out),
            *(everything if thing == "datasets" else ()),
            env=a.env,
        )
        dumps[thing] = out
    datasets_a = dumps["datasets"].read_text().splitlines()
    assert len(datasets_a) == 4
    for thing in ("organizations", "groups", "datasets"):
        ckanapi(
            "load", thing, "-I", str(dumps[thing]), "-r", b.base, "-a", b.key, "-p", "1", env=b.env
        )

    again = tmp_path / "datasets-b.jsonl"
    ckanapi(
        "dump",
        "datasets",
        "--all",
        "-r",
        b.base,
        "-a",
        b.key,
        "-p",
        "1",
        "-q",
        "-O",
        str(again),
        *everything,
        env=b.env,
    )
    # Nothing lost: the same datasets, ids, texts, resources and times; only the address in
    # links to this site's own files and queries is B's.
    # ``datastore_active`` is each instance's own state, as in CKAN (B has no table until the
    # file itself reaches it: the load with --upload-resources below).
    expected = [_no_datastore(json.loads(line.replace(a.base, b.base))) for line in datasets_a]
    got = [_no_datastore(json.loads(line)) for line in again.read_text().splitlines()]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert {k: v for k, v in mine.items() if v != theirs.get(k)} == {}, mine["name"]
    for thing in ("organizations", "groups"):
        out = tmp_path / f"{thing}-b.jsonl"
        ckanapi(
            "dump",
            thing,
            "--all",
            "-r",
            b.base,
            "-a",
            b.key,
            "-p",
            "1",
            "-q",
            "-O",
            str(out),
            env=b.env,
        )
        assert out.read_text() == dumps[thing].read_text(), thing

    # -- and the files: `ckanapi load --upload-resources` copies uploads A → B ---------------
    ckanapi(
        "load",
        "datasets",
        "-I",
        str(dumps["datasets"]),
        "-r",
        b.base,
        "-a",
        b.key,
        "-p",
        "1",
        "-q",
        "--upload-resources",
        env=b.env,
    )
    copied = b.action("resource_show", f"id={uploaded['id']}")
    assert copied["hash"] == uploaded["hash"] and copied["size"] == uploaded["size"]
    assert httpx.get(copied["url"], timeout=10).content == CSV
    assert copied["url"].startswith(b.base)
    assert copied["datastore_active"] is True  # the CSV reached B's DataStore too
    # B's search finds what A's did, in either script.
    assert [p["name"] for p in b.action("package_search", "q=停車")["results"]] == [
        "car-park-vacancy"
    ]
