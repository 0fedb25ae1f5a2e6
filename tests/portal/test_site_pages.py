"""The public site's pages, on a fresh database (shipped data) and on a loaded one (the
measure service), on every backend: languages, alternates, search, errors, headers, links."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.portal.blueprint.dataset import load_blueprint
from smartcity.portal.measures import loader
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

LANGS = {"en": "en", "tc": "zh-Hant-HK", "sc": "zh-Hans"}
PAGES = [
    "/",
    "/areas",
    "/areas/mobility",
    "/measures/mobility-12",
    "/search",
    "/search?q=%E6%B3%8A%E8%BB%8A",
    "/new",
    "/kpis",
    "/about",
]


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html_lang: str | None = None
        self.alternates: dict[str, str] = {}
        self.urls: list[str] = []
        self.headings: list[int] = []
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._in_a: dict[str, str | None] | None = None
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "link" and a.get("rel") == "alternate" and a.get("hreflang"):
            self.alternates[str(a["hreflang"])] = str(a["href"])
        for name in ("src", "href", "action"):
            if a.get(name):
                self.urls.append(str(a[name]))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a":
            self._in_a, self._text = a, ""

    def handle_data(self, data: str) -> None:
        if self._in_a is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._in_a is not None:
            self.links.append((self._in_a, self._text.strip()))
            self._in_a = None


@pytest.fixture(params=["fresh", "loaded"])
def site(request: pytest.FixtureRequest, db: Database, settings: Settings) -> Iterator[TestClient]:
    """The app on an empty portal (pages come from the shipped files) or a loaded one."""
    if request.param == "loaded":
        loader.load(db, load_blueprint())
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_page_in_every_language(site: TestClient) -> None:
    for prefix, tag in LANGS.items():
        for path in PAGES:
            url = f"/{prefix}{path}"
            r = site.get(url)
            assert r.status_code == 200, url
            assert r.headers["content-type"].startswith("text/html")
            page = Page(r.text)
            assert page.html_lang == tag, url
            rest = path.split("?")[0]
            for other, other_tag in LANGS.items():
                assert urlsplit(page.alternates[other_tag]).path == f"/{other}{rest}", url
            assert urlsplit(page.alternates["x-default"]).path == f"/en{rest}"
            assert page.headings.count(1) == 1, f"{url}: one h1"
            # Headings never skip a level going down (h2 → h4 would).
            for before, after in zip(page.headings, page.headings[1:], strict=False):
                assert after <= before + 1, f"{url}: h{before} then h{after}"
            assert 'id="main"' in r.text and 'class="skip-link"' in r.text


def test_security_headers_on_html(site: TestClient) -> None:
    r = site.get("/tc/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"]
    assert r.headers["content-language"] == "zh-Hant-HK"
    # No inline script or style for the CSP to block.
    assert "<style" not in r.text and " style=" not in r.text
    assert re.search(r"<script(?![^>]*\bsrc=)", r.text) is None


def test_no_external_urls(site: TestClient) -> None:
    for prefix in LANGS:
        for path in [*PAGES, "/measures/nope"]:
            page = Page(site.get(f"/{prefix}{path}").text)
            for url in page.urls:
                parts = urlsplit(url)
                assert parts.scheme in ("", "http") and parts.netloc in ("", "testserver"), url


@pytest.mark.parametrize(
    ("header", "prefix"),
    [
        ("zh-HK", "tc"),
        ("zh-TW,zh;q=0.9", "tc"),
        ("zh-Hant", "tc"),
        ("zh-CN", "sc"),
        ("zh-Hans-CN", "sc"),
        ("zh", "sc"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, zh-HK;q=0.5", "tc"),
        ("de", "en"),
        ("zh-HK;q=0, en", "en"),
        ("", "en"),
    ],
)
def test_root_redirects_by_accept_language(client: TestClient, header: str, prefix: str) -> None:
    r = client.get("/", headers={"accept-language": header}, follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == f"/{prefix}/"
    assert "accept-language" in r.headers["vary"].lower()


def test_bare_prefix_redirects(client: TestClient) -> None:
    r = client.get("/sc", follow_redirects=False)
    assert r.status_code in (301, 308) and r.headers["location"] == "/sc/"


def test_language_switch_keeps_path_and_query(site: TestClient) -> None:
    r = site.get("/en/search", params={"q": "泊車", "area": "mobility"})
    page = Page(r.text)
    switch = {a.get("hreflang"): a.get("href") for a, _text in page.links if a.get("hreflang")}
    for prefix, tag in (("tc", "zh-Hant-HK"), ("sc", "zh-Hans")):
        target = urlsplit(str(switch[tag]))
        assert target.path == f"/{prefix}/search"
        assert parse_qs(target.query) == {"q": ["泊車"], "area": ["mobility"]}
    # The current language is marked, not linked.
    assert 'aria-current="true">English' in r.text


def test_search_chinese_finds_parking(site: TestClient) -> None:
    for prefix in LANGS:
        r = site.get(f"/{prefix}/search", params={"q": "泊車"})
        assert "/measures/mobility-12" in r.text, prefix
        assert 'role="status"' in r.text
    # English, case-insensitively; Simplified characters too.
    assert "/measures/mobility-12" in site.get("/en/search?q=PARKING").text
    assert "/measures/mobility-12" in site.get("/sc/search?q=泊车").text
    r = site.get("/en/search", params={"q": "泊車"})
    count = re.search(r'role="status"[^>]*>\s*(\d+) measures? found', r.text)
    assert count is not None and int(count.group(1)) >= 2
    nothing = site.get("/tc/search", params={"q": "不存在的字詞xyz"})
    assert "找不到相關措施" in nothing.text


def found(site: TestClient, q: str) -> set[str]:
    r = site.get("/en/search", params={"q": q})
    assert r.status_code == 200
    return set(re.findall(r'href="/en/measures/([a-z]+-\d+)"', r.text))


def test_search_spellings_of_a_compound_find_the_same_measures(site: TestClient) -> None:
    """ "carpark" found nothing while "car park" found 3 (issue #9)."""
    car_park = found(site, "car park")
    assert "mobility-12" in car_park
    assert found(site, "carpark") == found(site, "car-park") == found(site, "Car–Park") == car_park
    # Words in another order, or apart, still find what holds them all.
    assert "mobility-12" in found(site, "park car")


def test_search_finds_measures_by_the_words_of_their_live_data(site: TestClient) -> None:
    # environment-12's text never says "AQHI" or "air quality": its live figure does.
    assert "environment-12" in found(site, "AQHI")
    assert "environment-12" in found(site, "air quality")
    assert "mobility-11" in found(site, "traffic flow")  # TrafficFlowObserved, in words


def test_search_pages_and_filters(site: TestClient) -> None:
    first = site.get("/en/search")
    assert "Page 1 of" in first.text and 'rel="next"' in first.text
    second = site.get("/en/search?page=2")
    assert 'rel="prev"' in second.text
    assert Page(first.text).links != Page(second.text).links
    # A bad page number or an unknown filter still shows the list.
    assert site.get("/en/search?page=abc").status_code == 200
    assert site.get("/en/search?area=atlantis&status=zzz").status_code == 200
    only = site.get("/en/search?area=village").text
    assert "/measures/village-" in only and "/measures/mobility-" not in only


def test_not_found_is_an_html_page(site: TestClient) -> None:
    for url in ("/en/measures/nope-99", "/tc/areas/atlantis", "/sc/no/such/page"):
        r = site.get(url)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert Page(r.text).html_lang == LANGS[url.split("/")[1]]
    assert "找不到網頁" in site.get("/tc/nope").text
    api = site.get("/no-such-endpoint")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


def test_nav_marks_current_page(site: TestClient) -> None:
    assert '<a href="/en/kpis" aria-current="page">' in site.get("/en/kpis").text
    assert '<a href="/en/areas" aria-current="true">' in site.get("/en/areas/living").text


def test_content_comes_in_the_page_language(site: TestClient) -> None:
    assert "實時空置泊車位資訊" in site.get("/tc/measures/mobility-12").text
    assert "实时空置泊车位资讯" in site.get("/sc/measures/mobility-12").text
    en = site.get("/en/measures/mobility-12").text
    assert "Real-time parking vacancy information" in en
    assert "Transport Department and Lands Department" in en  # the owners by name
    assert "運輸署及地政總署" in site.get("/tc/measures/mobility-12").text


def test_home_shows_areas_progress_and_kpis(site: TestClient) -> None:
    page = site.get("/en/").text
    for area in (
        "pandemic",
        "mobility",
        "living",
        "environment",
        "people",
        "government",
        "economy",
        "village",
    ):
        assert f'href="/en/areas/{area}"' in page
    assert page.count("<progress") >= 9  # overall + one per area
    assert "138 measures" in page or "measures, of which" in page
    assert 'class="figure-value"' in page


def test_loaded_progress_and_timeline_show(db: Database, settings: Settings) -> None:
    loader.load(db, load_blueprint())
    editor = UserService(db).create("ed", "a long enough passw0rd!", "editor", department="TD")
    MeasureService(db).update_progress(
        "mobility-12", user=editor, status="in_progress", progress=40, note="Pilot at 5 car parks"
    )
    with TestClient(create_app(settings)) as site:
        page = site.get("/en/measures/mobility-12").text
        assert 'value="40.0"' in page and "In progress" in page
        # mobility-12 starts "ongoing": the blueprint says "Continue to encourage ..."
        assert "Status changed from Ongoing to In progress" in page
        assert "Pilot at 5 car parks" in page
        tc = site.get("/tc/measures/mobility-12").text
        assert "狀態由「持續推行」改為「進行中」" in tc


def test_live_figure_from_hub(db: Database, settings: Settings) -> None:
    with TestClient(create_app(settings)) as site:
        none_yet = site.get("/en/measures/mobility-12").text
        assert "No data yet" in none_yet
        # A car park without the city @context is another vocabulary's OffStreetParking.
        stray = {"id": "urn:ngsi-ld:OffStreetParking:plain", "type": "OffStreetParking",
                 "availableSpotNumber": {"type": "Property", "value": 1000}}  # fmt: skip
        assert site.post("/ngsi-ld/v1/entities", json=stray).status_code == 201
        for i, spots in enumerate((120, 30)):
            r = site.post(
                "/ngsi-ld/v1/entities",
                json={
                    "id": f"urn:ngsi-ld:OffStreetParking:t{i}",
                    "type": "OffStreetParking",
                    "availableSpotNumber": {
                        "type": "Property",
                        "value": spots,
                        "observedAt": "2026-11-26T08:00:00Z",
                    },
                },
                headers=city_link(),
            )
            assert r.status_code == 201, r.text
        page = site.get("/en/measures/mobility-12").text
        assert re.search(r'figure-value">150(\.0)? spaces', page), page
        # The data behind the figure, by full IRI (a browser sends no Link header).
        href = re.search(r'href="(/ngsi-ld/v1/entities\?[^"]+)"', page)
        assert href, page
        behind = site.get(html.unescape(href.group(1))).json()
        assert sorted(e["id"] for e in behind) == [
            "urn:ngsi-ld:OffStreetParking:t0",
            "urn:ngsi-ld:OffStreetParking:t1",
        ]
        # A count over a type the hub has no entity of is 0, not an error.
        lamppost = site.get("/en/measures/government-03")
        assert lamppost.status_code == 200
        assert re.search(r'figure-value">0(\.0)?\b', lamppost.text), lamppost.text


def test_unexpected_error_is_an_html_page(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartcity.portal.site import content

    def broken(_self: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(content.SiteData, "area_summaries", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as site:
        r = site.get("/sc/")
        assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
        assert "出现错误" in r.text and "boom" not in r.text
