"""The analytics pages, in process with the app: /{en,tc,sc}/analytics/traffic from a traffic
run on synthetic detector data (congestion table with speed bands, health for a chosen day,
measures per road and district with their chart's table, bottlenecks, CSV links that work),
/{en,tc,sc}/analytics/forecasts from the hub's history (a detector's observed series and
forecasts; car parks likely full on arrival and the about-to-fill alert), and both pages
before anything exists: a helpful empty state, never a 500."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.analytics.test_forecast_serving import NOW as TRAFFIC_NOW
from tests.analytics.test_forecast_serving import _history as traffic_history
from tests.analytics.test_forecast_serving import _write as write_traffic
from tests.analytics.test_parking import COMMUTER
from tests.analytics.test_parking import _history as parking_history

from smartcity.analytics.traffic import pipeline, synthetic

DAY = date(2026, 3, 2)
LAYOUT = synthetic.Layout(roads=2, per_road=4, bottleneck_at=3)
LANGS = ("en", "tc", "sc")


class Text(HTMLParser):
    """The page's visible text and its links (what a reader without JavaScript gets)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def read(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    store = pipeline.Store(home / "analytics" / "traffic")
    store.root.mkdir(parents=True)
    # Where the detectors are: the map needs coordinates (the table does not).
    lines = ["detector_id,road,district,latitude,longitude"]
    for i, loc in enumerate(LAYOUT.locations()):
        lines.append(f"{loc.detector_id},{loc.road},{loc.district},{22.30 + i * 0.01},114.17")
    (store.root / "locations.csv").write_text("\n".join(lines) + "\n")
    locations = pipeline.read_csv(store.root / "locations.csv")
    for back in (1, 0):
        day = DAY - timedelta(days=back)
        faults = {"SYN0102": "intermittent"} if back == 0 else {}
        samples = synthetic.generate(day, LAYOUT, faults=faults)
        store.add_parts("samples", samples, "period_start", "t")
        pipeline.run_day(day, store, locations=locations)
    return home


@pytest.fixture
def results(analysed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTCITY_HOME", str(analysed))
    return analysed


def test_traffic_page_in_three_languages(results: Path, client: TestClient) -> None:
    headings = {"en": "Detector health", "tc": "探測器健康狀況", "sc": "探测器健康状况"}
    for lang in LANGS:
        r = client.get(f"/{lang}/analytics/traffic")
        assert r.status_code == 200, r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        page = read(r.text)
        assert headings[lang] in page.text
        assert f'lang="{ {"en": "en", "tc": "zh-Hant-HK", "sc": "zh-Hans"}[lang] }"' in r.text
        # Every detector of the latest day in the congestion table, with a speed band in words.
        for loc in LAYOUT.locations():
            assert f'data-id="{loc.detector_id}"' in r.text
        # The main navigation links to the page.
        assert f'href="/{lang}/analytics/traffic"' in r.text
    en = client.get("/en/analytics/traffic").text
    text = read(en).text
    assert re.search(r"(Congested|Slow|Moderate|Free flowing) \(", text)
    # The intermittent detector is listed with its status, the others good.
    assert re.search(r"SYN0102 Intermittent", text)
    assert "1 Intermittent" in text and "7 Good" in text
    # Roads' daily measures, their hourly chart's table, the bottlenecks found.
    assert "Road 0" in text and "Road 1" in text
    assert "Table: average speed per hour" in text
    assert "SYN0003 → SYN0004" in text and "SYN0103 → SYN0104" in text
    # The map has its coordinates (an enhancement; the table is the same data).
    assert 'id="congestion-map"' in en and 'data-lat="22.3"' in en


def test_traffic_page_chosen_day_level_and_csv_links(results: Path, client: TestClient) -> None:
    before = (DAY - timedelta(days=1)).isoformat()
    r = client.get("/en/analytics/traffic", params={"date": before, "level": "district"})
    page = read(r.text)
    assert "0 Intermittent" in page.text and "8 Good" in page.text  # no fault that day
    assert "Daily totals per district" in page.text and "District 0" in page.text
    csv_links = [link.replace("&amp;", "&") for link in page.links if "format=csv" in link]
    assert any("/health?" in link for link in csv_links)
    for link in csv_links:  # every CSV link answers with that day's CSV
        got = client.get(link)
        assert got.status_code == 200, link
        assert got.headers["content-type"].startswith("text/csv")
        assert f"date={before}" in link
    # A day without results and a non-date: said so in words, the latest day shown instead.
    missing = client.get("/tc/analytics/traffic", params={"date": "2020-01-01"})
    assert missing.status_code == 200 and "2020-01-01 沒有結果" in read(missing.text).text
    bad = client.get("/en/analytics/traffic", params={"date": "yesterday"})
    assert bad.status_code == 200 and "write it as YYYY-MM-DD" in bad.text


def test_pages_before_any_data(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SMARTCITY_HOME", str(tmp_path))
    for lang in LANGS:
        traffic = client.get(f"/{lang}/analytics/traffic")
        assert traffic.status_code == 200
        assert "smartcity analytics traffic run" in traffic.text
        forecasts = client.get(f"/{lang}/analytics/forecasts")
        assert forecasts.status_code == 200
    text = read(client.get("/en/analytics/forecasts").text).text
    assert "No traffic forecasts yet" in text and "No car park forecasts yet" in text
    # Empty is a normal state, not a failure swallowed by the page.
    assert not [r for r in caplog.records if "forecasts failed" in r.getMessage()]


def test_forecasts_page_shows_series_forecasts_and_parking(client: TestClient) -> None:
    ids, values, start = traffic_history()
    write_traffic(client.app.state.hub.temporal, ids, values, start)  # type: ignore[attr-defined]
    client.app.state.forecasts.service.clock = lambda: TRAFFIC_NOW  # type: ignore[attr-defined]
    parking_history(client)
    for lang in LANGS:
        r = client.get(f"/{lang}/analytics/forecasts")
        assert r.status_code == 200, r.text
    chosen = ids[2]
    r = client.get("/en/analytics/forecasts", params={"detector": chosen})
    page = read(r.text)
    short = chosen.rsplit(":", 1)[-1]
    assert f"Detector {short}: observed speed and forecast" in page.text
    # The chart's table: 3 forecasts and the day's 288 observed 5-minute means.
    assert page.text.count("Forecast, ") == 3
    assert len(re.findall(r"\bObserved\b", page.text)) >= 288
    # Every detector with its 15/30/60-minute forecasts, each linking to its own view.
    for entity_id in ids:
        assert f"detector={entity_id.replace(':', '%3A')}" in r.text
    # Parking: the commuter car park is about to fill and likely full on arrival.
    assert "About to fill" in page.text and "likely full within" in page.text
    assert "Likely full on arrival" in page.text
    tc = read(client.get("/tc/analytics/forecasts").text).text
    assert "抵達時可能滿位" in tc and "即將滿位" in tc
    assert COMMUTER  # the about-to-fill car park of the parking tests


def test_the_nav_item_reads_in_the_page_language_on_every_feature(client: TestClient) -> None:
    """Main-nav labels come from the catalogue of the feature that registered them, so the
    portal's home and the open data pages name the analytics (and the dashboard) in Chinese."""
    for path in ("/tc/", "/tc/dataset"):
        nav = read(client.get(path).text).text
        assert "交通數據分析" in nav and "城市儀表板" in nav, path
    assert "交通数据分析" in read(client.get("/sc/").text).text
