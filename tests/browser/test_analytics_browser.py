"""The analytics pages in a real browser against a real server process (``smartcity serve
--no-auth``) with a traffic run on synthetic detector data and a week of detector and car park
history in its hub: axe-core (WCAG 2.1 A/AA) on each page in English and Traditional Chinese,
reflow at 320 px, the map and charts drawn with JavaScript, and a reader without JavaScript
who chooses a day and a detector with the pages' forms."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.analytics.test_forecast_serving import _write as write_traffic
from tests.analytics.test_parking import _occupancy

from smartcity.analytics.forecast.generate import generate
from smartcity.analytics.forecast.serving import STEP_US
from smartcity.analytics.traffic import pipeline, synthetic
from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.contexts import city_context
from smartcity.hub.timeutil import iso_from_us

axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
expect = pytest.importorskip("playwright.sync_api").expect

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DAY = date(2026, 3, 2)
LAYOUT = synthetic.Layout(roads=2, per_road=4, bottleneck_at=3)
PAGES = ("/analytics/traffic", "/analytics/forecasts")
DETECTORS = [f"urn:ngsi-ld:TrafficFlowObserved:B{i}" for i in range(4)]


def _traffic_results(home: Path) -> None:
    store = pipeline.Store(home / "analytics" / "traffic")
    store.root.mkdir(parents=True)
    lines = ["detector_id,road,district,latitude,longitude"]
    for i, loc in enumerate(LAYOUT.locations()):
        lines.append(f"{loc.detector_id},{loc.road},{loc.district},{22.30 + i * 0.005},114.18")
    (store.root / "locations.csv").write_text("\n".join(lines) + "\n")
    locations = pipeline.read_csv(store.root / "locations.csv")
    for back in (1, 0):
        day = DAY - timedelta(days=back)
        samples = synthetic.generate(day, LAYOUT, faults={"SYN0102": "card_off"})
        store.add_parts("samples", samples, "period_start", "t")
        pipeline.run_day(day, store, locations=locations)


def _hub_history(url: str) -> None:
    """A week of detector speeds and two weeks of car park vacancy, ending now."""
    end = int(time.time() * 1e6) // STEP_US * STEP_US
    with TestClient(create_app(Settings(database_url=url, auth_required=False))) as client:
        hub = client.app.state.hub  # type: ignore[attr-defined]
        rows = 7 * 288
        data = generate(len(DETECTORS), 8, seed=3, missing=0.0)
        write_traffic(hub.temporal, DETECTORS, data.values[:rows], end - rows * STEP_US)
        ctx = city_context()
        for n, (kind, spaces) in enumerate((("commuter", 200), ("spacious", 500))):
            instances = [
                {
                    "type": "Property",
                    "value": round(spaces * (1 - min(1.0, _occupancy(kind, t)))),
                    "observedAt": iso_from_us(t),
                }
                for t in range(end - 14 * 288 * STEP_US, end, STEP_US)
            ]
            hub.temporal.upsert(
                "",
                {
                    "id": f"urn:ngsi-ld:OffStreetParking:B{n}",
                    "type": [ctx.expand("OffStreetParking")],
                    "attrs": {ctx.expand("availableSpotNumber"): instances},
                },
            )


@pytest.fixture(scope="module")
def analytics_server(smartcity_server: Any, smartcity_cli: Any) -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="smartcity-analytics-browser-"))
    url = f"sqlite:///{home / 'smartcity.db'}"
    env = {**os.environ, "SMARTCITY_HOME": str(home), "SMARTCITY_DATABASE_URL": url}
    upgrade = smartcity_cli("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    _traffic_results(home)
    _hub_history(url)
    try:
        with smartcity_server(env, home) as base:
            yield base
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_axe_finds_no_violations(analytics_server: str, page: Any, prefix: str) -> None:
    for path in PAGES:
        page.goto(f"{analytics_server}/{prefix}{path}")
        page.wait_for_selector("[data-chart-ready]", timeout=15_000)  # scripts have run
        results = axe_module.Axe().run(
            page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}}
        )
        violations = results.response["violations"]
        report = "\n".join(
            f"{v['id']} ({v['impact']}): {v['help']} -> "
            + "; ".join(str(n["target"]) for n in v["nodes"][:5])
            for v in violations
        )
        assert not violations, f"{path} [{prefix}]:\n{report}"


def test_map_and_charts_are_drawn(analytics_server: str, page: Any) -> None:
    page.goto(f"{analytics_server}/en/analytics/traffic")
    page.wait_for_selector("html[data-map-ready]")
    # One coloured marker per detector, in its speed band's colour.
    assert page.locator("#congestion-map path.leaflet-interactive, #congestion-map canvas, "
                        "#congestion-map path").count() > 0  # fmt: skip
    expect(page.locator("figure.trend .uplot")).to_have_count(1)
    page.goto(f"{analytics_server}/en/analytics/forecasts")
    expect(page.locator("figure.trend .uplot")).to_have_count(1)
    # Both car parks with their forecasts ("likely full" depends on the hour the test runs).
    expect(page.locator("table.parking tbody tr")).to_have_count(2)


def test_reflow_at_320_px(analytics_server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    try:
        page = context.new_page()
        for path in PAGES:
            page.goto(f"{analytics_server}/en{path}")
            page.wait_for_selector("[data-chart-ready]")
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{path} scrolls sideways: {widths}"
    finally:
        context.close()


def test_a_reader_without_javascript_chooses_a_day_and_a_detector(
    analytics_server: str, browser: Any
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-HK")
    try:
        page = context.new_page()
        page.goto(f"{analytics_server}/tc/")
        page.get_by_role("navigation", name="主選單").get_by_role(
            "link", name="交通數據分析"
        ).click()
        expect(page).to_have_url(re.compile(r"/tc/analytics/traffic$"))
        health = page.locator("table.health")
        assert health.locator("tr", has_text="SYN0102").inner_text().split()[1] == "偵測卡關閉"
        before = (DAY - timedelta(days=1)).isoformat()
        page.get_by_label("日期").select_option(before)
        page.get_by_label("指標分組").select_option("district")
        page.get_by_role("button", name="顯示").click()
        expect(page).to_have_url(re.compile(r"level=district"))
        assert f"date={before}" in page.url
        expect(page.locator("table.measures")).to_contain_text("District 0")
        # The chart's table is there to open, the hours in rows.
        page.get_by_text("表格：每小時平均車速").click()
        expect(page.locator("figure.trend table tbody tr")).to_have_count(24)

        page.get_by_role("link", name="預測：交通及泊車").first.click()
        expect(page).to_have_url(re.compile(r"/tc/analytics/forecasts"))
        page.get_by_label("探測器", exact=True).select_option(DETECTORS[1])
        page.get_by_role("button", name="顯示").click()
        expect(page.locator("figure.trend figcaption")).to_contain_text("B1")
        expect(page.locator("table.parking tbody tr")).to_have_count(2)
    finally:
        context.close()
