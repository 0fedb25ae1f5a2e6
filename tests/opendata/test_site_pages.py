"""The open data pages as a visitor uses them, without JavaScript: search with facets in three
languages, the dataset page (metadata, dictionary, resources, API examples, schema.org), a
DataStore table that sorts, filters and pages by keyset, organisation and group pages; private
datasets never appear; a browser asking for /dataset/{name} is sent to the page."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, trilingual


def cells(html: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", html)


def test_search_finds_narrows_and_speaks_three_languages(
    od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    act("package_create", name="air", owner_org="epd", title="Air quality",
        groups=[{"name": "environment"}], tags=[{"name": "air"}])  # fmt: skip
    act("package_create", name="secret", owner_org="td", title="Car park plans", private=True)
    page = od_client.get("/en/dataset")
    assert page.status_code == 200
    assert "2 datasets found." in page.text  # the private one is nobody's business here
    assert "Car park plans" not in page.text
    # A facet link narrows; the chosen value can be removed again.
    facet = re.search(r'href="(/en/dataset\?[^"]*organization=td[^"]*)"', page.text)
    assert facet, page.text
    narrowed = od_client.get(facet.group(1).replace("&amp;", "&"))
    assert "1 dataset found." in narrowed.text and "Car park vacancy" in narrowed.text
    assert "Air quality" not in narrowed.text and "Remove: td" in narrowed.text
    # Chinese without spaces, in Traditional or Simplified, finds the dataset; titles follow.
    for prefix, q, title in (("tc", "停車", "停車場空置車位"), ("sc", "停车", "停车场空置车位")):
        found = od_client.get(f"/{prefix}/dataset", params={"q": q})
        assert title in found.text and "Air quality" not in found.text, prefix
    # A query the parser refuses is said, not a 500.
    bad = od_client.get("/en/dataset", params={"q": 'tags:"unclosed'})
    assert bad.status_code == 200


def test_the_dataset_page_has_what_a_reuser_needs(
    od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    act("package_patch", id="car-park-vacancy", data_dictionary=[
        {"name": "spaces", "type": "int", "unit": "vehicles",
         "description_translated": trilingual("Free spaces", "空置車位", "空置车位")}])  # fmt: skip
    page = od_client.get("/tc/dataset/car-park-vacancy")
    assert page.status_code == 200
    text = page.text
    assert "<h1" in text and "停車場空置車位" in text
    assert "運輸署" in text and 'href="/tc/organization/td"' in text
    # The data dictionary, in the reader's language.
    assert "空置車位</td>" in text and "vehicles" in text
    assert "https://example.org/vacancy.csv" in text
    assert "package_show?id=car-park-vacancy" in text and "RemoteCKAN" in text
    assert 'href="/dataset/car-park-vacancy.ttl"' in text
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert block, "no schema.org block"
    assert json.loads(block.group(1))["@type"] == "Dataset"
    assert od_client.get("/en/dataset/nothing-here").status_code == 404
    secret = act("package_create", name="secret", owner_org="td", private=True)["result"]
    assert od_client.get(f"/en/dataset/{secret['name']}").status_code == 404


def test_a_datastore_table_sorts_filters_and_pages_without_javascript(
    od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    created = act(
        "datastore_create",
        resource={"package_id": "car-park-vacancy", "name": "Spaces", "format": "CSV"},
        fields=[{"id": "district", "type": "text"}, {"id": "spaces", "type": "int"}],
        records=[{"district": f"D{i:02d}", "spaces": i} for i in range(60)],
    )["result"]
    path = f"/en/dataset/car-park-vacancy/resource/{created['resource_id']}"
    dataset = od_client.get("/en/dataset/car-park-vacancy").text
    assert f"{path}#preview" in dataset  # the resource list offers the preview
    first = od_client.get(path, params={"sort": "spaces", "dir": "desc"})
    assert "60 rows match." in first.text
    assert cells(first.text)[:4] == ["D59", "59", "D58", "58"]
    # "Next rows" continues where the page ended (keyset), with the sort kept.
    seen: list[str] = cells(first.text)[::2]
    html = first.text
    while (more := re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', html)) is not None:
        url = more.group(1).replace("&amp;", "&")
        assert parse_qs(urlsplit(url).query)["sort"] == ["spaces"]
        html = od_client.get(url).text
        seen += cells(html)[::2]
    assert seen == [f"D{i:02d}" for i in range(59, -1, -1)]
    # Filters by column: rows whose value contains the words.
    filtered = od_client.get(path, params={"f.district": "d5"})
    assert sorted(cells(filtered.text)[::2]) == [f"D5{i}" for i in range(10)]
    assert "10 rows match." in filtered.text
    # A cursor from elsewhere is a message with a way back, not an error page.
    broken = od_client.get(path, params={"cursor": "not-a-cursor"})
    assert broken.status_code == 200 and "Start again" in broken.text


def test_organisation_and_group_pages(
    od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    listed = od_client.get("/en/organization").text
    assert 'href="/en/organization/td"' in listed and "1 dataset" in listed
    page = od_client.get("/tc/organization/td").text
    assert "<h1>運輸署</h1>" in page and "停車場空置車位" in page
    group = od_client.get("/sc/group/transport").text
    assert "<h1>运输</h1>" in group and "停车场空置车位" in group
    assert od_client.get("/en/organization/nobody").status_code == 404


def test_browsers_are_sent_to_the_page_and_rdf_clients_get_rdf(
    od_client: TestClient, transport: dict[str, Any]
) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    wanted = {"Accept": browser, "Accept-Language": "zh-HK,zh;q=0.9"}
    sent = od_client.get("/dataset/car-park-vacancy", headers=wanted, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/tc/dataset/car-park-vacancy"
    catalogue = od_client.get("/catalog", headers={"Accept": browser}, follow_redirects=False)
    assert catalogue.status_code == 303 and catalogue.headers["location"] == "/en/dataset"
    rdf = od_client.get("/dataset/car-park-vacancy", headers={"Accept": "text/turtle"})
    assert rdf.status_code == 200 and rdf.headers["content-type"].startswith("text/turtle")
    assert (
        od_client.get("/dataset/car-park-vacancy").headers["content-type"].startswith("text/turtle")
    )


def test_the_site_links_to_open_data(od_client: TestClient) -> None:
    home = od_client.get("/en/").text
    assert 'href="/en/dataset"' in home  # the main navigation and the footer
    assert ">Open data<" in home
