"""A resource's map and chart in a real browser: a DataStore table of places is drawn on the
offline base map and a time series as a chart, with nothing asked of another host; axe-core
finds no violation (English and Traditional Chinese) once the figures are drawn; without
JavaScript the tables stand in for them."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser import axe
from tests.browser.catalogue import act, exists

pytest.importorskip("axe_playwright_python.sync_playwright")
expect = pytest.importorskip("playwright.sync_api").expect

PLACES = [
    ("Victoria Park Swimming Pool", 22.2819, 114.1880),
    ("Kowloon Park Swimming Pool", 22.3005, 114.1697),
    ("Sha Tin Jockey Club Swimming Pool", 22.3790, 114.1890),
]


@pytest.fixture(scope="module")
def previews(server: str) -> dict[str, str]:
    """A dataset with a table of places (緯度/經度) and one with a daily time series."""

    def table(dataset: str, name: str, **data: Any) -> str:
        if not exists(server, "package_show", dataset):
            act(server, "package_create", name=dataset, owner_org="p-lcsd", title=name)
            act(server, "datastore_create", resource={"package_id": dataset, "name": name}, **data)
        found = act(server, "package_show", id=dataset)
        return next(r["id"] for r in found["resources"] if r["datastore_active"])

    if not exists(server, "organization_show", "p-lcsd"):
        act(server, "organization_create", name="p-lcsd", title_translated={
            "en": "Leisure and Cultural Services Department", "zh-Hant": "康樂及文化事務署",
            "zh-Hans": "康乐及文化事务署"})  # fmt: skip
    pools = table("p-pools", "Public swimming pools",
                  fields=[{"id": "名稱", "type": "text"}, {"id": "緯度", "type": "float"},
                          {"id": "經度", "type": "float"}],
                  records=[{"名稱": n, "緯度": y, "經度": x} for n, y, x in PLACES])  # fmt: skip
    visits = table("p-visits", "Daily swimmers",
                   fields=[{"id": "date", "type": "date"}, {"id": "swimmers", "type": "int"},
                           {"id": "water_temperature", "type": "float"}],
                   records=[{"date": f"2026-07-{d:02d}", "swimmers": 1000 + 37 * d,
                             "water_temperature": 25 + d / 10} for d in range(1, 31)])  # fmt: skip
    return {
        "map": f"/dataset/p-pools/resource/{pools}",
        "chart": f"/dataset/p-visits/resource/{visits}",
    }


def test_the_map_and_the_chart_are_drawn_offline(
    server: str, offline_page: Any, previews: dict[str, str]
) -> None:
    page = offline_page
    page.goto(f"{server}/en{previews['map']}")
    expect(page.locator("#data-map[data-map-ready]")).to_have_count(1)
    # One marker per place, over the base map's coastline and districts.
    expect(page.locator("#data-map path.leaflet-interactive, #data-map path")).not_to_have_count(0)
    markers = page.evaluate(
        "document.querySelectorAll('#data-map .leaflet-overlay-pane path').length"
    )
    assert markers >= len(PLACES)
    # Drawn: the table of places is folded, still there for whoever wants it.
    expect(page.locator("#map details.figure-table")).not_to_have_attribute("open", "")
    expect(page.locator("table.places tbody tr")).to_have_count(len(PLACES))
    page.goto(f"{server}/en{previews['chart']}", wait_until="networkidle")
    expect(page.locator("figure.data-chart[data-chart-ready] .uplot")).to_have_count(2)
    expect(page.locator("figure.data-chart .chart-summary").first).to_contain_text("Lowest 1,037")
    assert page.outside == [], f"requested {page.outside}"


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_axe_finds_no_violations_on_the_figures(
    server: str, page: Any, previews: dict[str, str], prefix: str
) -> None:
    for kind, path in previews.items():
        page.goto(f"{server}/{prefix}{path}")
        ready = "#data-map[data-map-ready]" if kind == "map" else "figure[data-chart-ready]"
        page.wait_for_selector(ready)
        report = axe.violations(page)
        assert not report, f"{kind} [{prefix}]:\n{report}"


def test_without_javascript_the_tables_stand_in(
    server: str, browser: Any, previews: dict[str, str]
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-HK")
    try:
        page = context.new_page()
        page.goto(f"{server}/tc{previews['map']}")
        expect(page.locator("#data-map")).to_be_hidden()  # no empty box where a map would be
        table = page.get_by_role("table", name="地點")
        expect(table).to_be_visible()
        expect(table.get_by_role("rowheader", name="Kowloon Park Swimming Pool")).to_be_visible()
        page.goto(f"{server}/tc{previews['chart']}")
        expect(page.get_by_role("table", name="數值隨時間的變化")).to_be_visible()
        expect(page.locator("figure.data-chart .chart-summary").first).to_contain_text("最低 1,037")
    finally:
        context.close()


def test_the_figures_reflow_at_320_px(server: str, browser: Any, previews: dict[str, str]) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    try:
        page = context.new_page()
        for kind, path in previews.items():
            page.goto(f"{server}/en{path}")
            ready = "#data-map[data-map-ready]" if kind == "map" else "figure[data-chart-ready]"
            page.wait_for_selector(ready)
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{kind} scrolls sideways: {widths}"
    finally:
        context.close()
