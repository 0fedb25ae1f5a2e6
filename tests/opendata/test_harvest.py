"""Harvesting: DATA.GOV.HK's three languages merged into one dataset (recorded answers in
its shape, served over real HTTP), a DCAT catalogue in Turtle and JSON-LD with Hydra paging,
repeated harvests updating in place, and the source shown in ``package_show``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act
from tests.opendata.servers import serve_folder

from smartcity.hub.outbound import TargetGuard
from smartcity.opendata.harvest.ckan import read_ckan
from smartcity.opendata.harvest.dcat import read_dcat
from smartcity.opendata.harvest.http import client
from smartcity.opendata.harvest.model import HarvestError
from smartcity.opendata.harvest.service import Harvester, HarvestReport

FIXTURES = Path(__file__).parent / "fixtures"


class RecordedCkan(SimpleHTTPRequestHandler):
    """Answers ``package_search?start=N`` with the recorded page ``package_search.start-N.json``."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def translate_path(self, path: str) -> str:
        parts = urlsplit(path)
        if parts.path.endswith("/package_search"):
            start = parse_qs(parts.query).get("start", ["0"])[0]
            return super().translate_path(f"{parts.path}.start-{start}.json")
        return super().translate_path(path)

    def guess_type(self, path: Any) -> str:
        return "application/json" if str(path).endswith(".json") else super().guess_type(path)


@pytest.fixture
def datagovhk(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "datagovhk"
    shutil.copytree(FIXTURES / "datagovhk", folder)
    with serve_folder(folder, RecordedCkan) as base:
        yield base, folder


def harvester(od_client: TestClient) -> Harvester:
    od = od_client.app.state.opendata  # type: ignore[attr-defined]
    return Harvester(od.catalogue, od.organisations)


def harvest_ckan(od_client: TestClient, base: str, rows: int = 2) -> HarvestReport:
    with client(TargetGuard()) as session:
        return harvester(od_client).harvest(base, "ckan", read_ckan(session, base, rows=rows))


def test_datagovhk_languages_merge_into_one_trilingual_dataset(
    od_client: TestClient, act: Act, datagovhk: tuple[str, Path]
) -> None:
    base, _ = datagovhk
    report = harvest_ckan(od_client, base)
    assert (report.created, report.failed) == (3, [])  # two pages of 2 and 1
    shown = act("package_show", id="hk-td-tis_2-traffic-snapshot-images")["result"]
    assert shown["title_translated"] == {
        "en": "Traffic Snapshot Images",
        "zh-Hant": "交通快拍影像",
        "zh-Hans": "交通快拍影像",
    }
    assert shown["notes_translated"]["zh-Hans"] == "主要道路交通情况的快拍影像。"
    assert shown["organization"]["name"] == "hk-td"
    assert act("organization_show", id="hk-td")["result"]["title_translated"]["zh-Hant"] == "運輸署"
    assert [g["name"] for g in shown["groups"]] == ["transport"]
    assert {t["name"] for t in shown["tags"]} == {"traffic", "cctv", "交通"}
    [image_list, api] = shown["resources"]
    assert image_list["name_translated"]["zh-Hant"] == "影像列表"
    assert api["name_translated"]["zh-Hans"] == "快拍API"
    assert (
        image_list["url"].startswith("https://static.data.gov.hk/") and image_list["kind"] == "link"
    )
    extras = {e["key"]: e["value"] for e in shown["extras"]}
    assert extras["harvest_source_url"] == base and extras["harvest_source_type"] == "ckan"
    assert extras["harvest_remote_id"] == "9a8f7e6d-0001-4c2b-8e1f-000000000001"
    assert extras["harvest_remote_url"] == f"{base}/dataset/hk-td-tis_2-traffic-snapshot-images"
    assert extras["harvested_at"] and extras["update_frequency"] == "Updated every 2 minutes"
    # Search finds it in Chinese, as any dataset here.
    found = act("package_search", q="交通快拍")["result"]
    assert [d["name"] for d in found["results"]] == ["hk-td-tis_2-traffic-snapshot-images"]


def test_a_repeated_harvest_updates_in_place_and_never_duplicates(
    od_client: TestClient, act: Act, datagovhk: tuple[str, Path]
) -> None:
    base, folder = datagovhk
    harvest_ckan(od_client, base)
    first = act("package_show", id="hk-hko-rss-current-weather-report")["result"]
    again = harvest_ckan(od_client, base)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    # The source changes one dataset: the next harvest updates it, and only it.
    for lang, title in (("en", "Weather Now"), ("tc", "天氣現況"), ("sc", "天气现况")):
        page = folder / f"{lang}-data/api/3/action/package_search.start-0.json"
        text = page.read_text()
        old = {"en": "Current Weather Report", "tc": "本港地區天氣報告", "sc": "本港地区天气报告"}[
            lang
        ]
        text = text.replace(f'"title": "{old}"', f'"title": "{title}"')
        page.write_text(text.replace("2024-02-15T10:30:00", "2024-06-01T00:00:00"))
    third = harvest_ckan(od_client, base)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    after = act("package_show", id="hk-hko-rss-current-weather-report")["result"]
    assert after["id"] == first["id"]
    assert after["title_translated"]["zh-Hant"] == "天氣現況"
    assert [r["id"] for r in after["resources"]] == [r["id"] for r in first["resources"]]
    assert len(act("package_list")["result"]) == 3


def test_a_name_taken_here_is_reported_not_overwritten(
    od_client: TestClient, act: Act, datagovhk: tuple[str, Path]
) -> None:
    base, _ = datagovhk
    act("organization_create", name="mine", title="Mine")
    act("package_create", name="hk-hko-rss-current-weather-report", owner_org="mine", title="Ours")
    report = harvest_ckan(od_client, base)
    assert report.created == 2
    [(name, why)] = report.failed
    assert name == "hk-hko-rss-current-weather-report" and "already named" in why
    assert act("package_show", id=name)["result"]["title"] == "Ours"


def test_a_source_that_is_not_ckan_says_so(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>hello</html>")
    with (
        serve_folder(tmp_path) as base,
        client(TargetGuard()) as session,
        pytest.raises(HarvestError, match="answered 404"),
    ):
        list(read_ckan(session, base))
    with (
        client(TargetGuard(forbid_private=True)) as session,
        pytest.raises(HarvestError, match="SSRF guard"),
    ):
        list(read_ckan(session, "http://127.0.0.1:9/"))


def test_dcat_catalogue_in_turtle_and_json_ld_pages(od_client: TestClient, act: Act) -> None:
    with serve_folder(FIXTURES / "dcat") as base, client(TargetGuard()) as session:
        url = f"{base}/catalog.ttl"
        first = harvester(od_client).harvest(url, "dcat", read_dcat(session, url))
        # The noise dataset (page 2, JSON-LD) names no publisher: it needs an owner.
        assert first.created == 1
        [(name, why)] = first.failed
        assert name.startswith("road-traffic-noise-") and "--organization NAME" in why
        act("organization_create", name="fallback-org", title="Fallback")
        again = harvester(od_client).harvest(
            url, "dcat", read_dcat(session, url), organization="fallback-org"
        )
        assert (again.created, again.unchanged, again.failed) == (1, 1, [])
    names = sorted(act("package_list")["result"])
    assert (
        len(names) == 2
        and names[0].startswith("bus-stops-")
        and names[1].startswith("road-traffic-noise-")
    )
    bus = act("package_show", id=names[0])["result"]
    assert bus["title_translated"] == {"en": "Bus stops", "zh-Hant": "巴士站", "zh-Hans": "巴士站"}
    assert bus["notes_translated"]["zh-Hant"] == "巴士站位置。"  # @zh-HK is Traditional
    assert bus["organization"]["name"] == "transport-department"
    assert {t["name"] for t in bus["tags"]} == {"transport", "巴士"}
    [csv] = bus["resources"]
    assert (
        csv["url"] == "https://opendata.example.hk/files/bus-stops.csv" and csv["format"] == "CSV"
    )
    assert csv["mimetype"] == "text/csv"
    extras = {e["key"]: e["value"] for e in bus["extras"]}
    assert extras["harvest_source_type"] == "dcat"
    assert extras["harvest_remote_id"] == "https://opendata.example.hk/dataset/bus-stops"
    noise = act("package_show", id=names[1])["result"]
    assert noise["organization"]["name"] == "fallback-org"
    assert noise["resources"][0]["kind"] == "api"


def test_dcat_that_cannot_be_read_says_what_to_serve(tmp_path: Path) -> None:
    (tmp_path / "bad.ttl").write_text("this is not turtle <<<")
    with (
        serve_folder(tmp_path) as base,
        client(TargetGuard()) as session,
        pytest.raises(HarvestError, match="Turtle, RDF/XML or JSON-LD"),
    ):
        list(read_dcat(session, f"{base}/bad.ttl"))


def test_languages_with_different_ids_are_matched_by_name(
    od_client: TestClient, act: Act, datagovhk: tuple[str, Path]
) -> None:
    base, folder = datagovhk
    for page in (folder / "sc-data/api/3/action").glob("*.json"):
        page.write_text(page.read_text().replace("9a8f7e6d-", "5c5c5c5c-"))
    assert harvest_ckan(od_client, base).created == 3
    shown = act("package_show", id="hk-hko-rss-current-weather-report")["result"]
    assert shown["title_translated"]["zh-Hans"] == "本港地区天气报告"


def test_a_dataset_gone_from_the_source_is_withdrawn_here(
    od_client: TestClient, act: Act, datagovhk: tuple[str, Path]
) -> None:
    """As ckanext-harvest: what the source no longer lists is deleted here (and comes back
    when the source lists it again); a harvest that fails part way withdraws nothing."""
    base, folder = datagovhk
    harvest_ckan(od_client, base)
    gone = "hk-epd-airteam-past24hr-pc-of-individual-air-quality-monitoring-stations"
    pages = {lang: folder / f"{lang}-data/api/3/action/package_search.start-2.json"
             for lang in ("en", "tc", "sc")}  # fmt: skip
    kept = {lang: page.read_text() for lang, page in pages.items()}
    for page in pages.values():  # the source drops its third dataset
        emptied = json.loads(page.read_text())
        emptied["result"].update(count=2, results=[])
        page.write_text(json.dumps(emptied))
        first = page.with_name("package_search.start-0.json")
        first.write_text(first.read_text().replace('"count": 3', '"count": 2'))
    report = harvest_ckan(od_client, base)
    assert (report.unchanged, report.deleted) == (2, 1)
    # Deleted as CKAN deletes: gone from lists and search (a sysadmin still sees its state).
    assert act("package_show", id=gone)["result"]["state"] == "deleted"
    assert gone not in act("package_list")["result"]
    assert len(act("package_list")["result"]) == 2
    assert harvest_ckan(od_client, base).deleted == 0  # withdrawn once
    for lang, page in pages.items():  # listed again: it comes back
        page.write_text(kept[lang])
        first = page.with_name("package_search.start-0.json")
        first.write_text(first.read_text().replace('"count": 2', '"count": 3'))
    again = harvest_ckan(od_client, base)
    assert (again.updated, again.deleted) == (1, 0)
    assert act("package_show", id=gone)["result"]["state"] == "active"
