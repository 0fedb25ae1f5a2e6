"""The open data pages in a real browser: axe-core (WCAG 2.1 A/AA) on each page type in two
languages, reflow at 320 px, and a visitor without JavaScript who searches, narrows by a facet,
opens a dataset and pages through its table."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.browser import axe
from tests.browser.catalogue import act, exists

pytest.importorskip("axe_playwright_python.sync_playwright")
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def catalogue(server: str) -> dict[str, str]:
    """An organisation, a category and a dataset with a DataStore table (the session server
    runs with --no-auth, so every caller may write)."""

    if not exists(server, "organization_show", "b-td"):
        act(server, "organization_create", name="b-td", title_translated={
            "en": "Transport Department", "zh-Hant": "運輸署", "zh-Hans": "运输署"})  # fmt: skip
    if not exists(server, "group_show", "b-transport"):
        act(server, "group_create", name="b-transport", title="Transport")
    if not exists(server, "package_show", "b-car-parks"):
        act(server, "package_create", name="b-car-parks", owner_org="b-td",
            title_translated={"en": "Car park vacancy", "zh-Hant": "停車場空置車位",
                              "zh-Hans": "停车场空置车位"},
            notes="Free spaces in public car parks, every minute.",
            groups=[{"name": "b-transport"}], tags=[{"name": "parking"}],
            data_dictionary=[{"name": "spaces", "type": "int", "unit": "vehicles",
                              "description": "Free spaces"}])  # fmt: skip
        act(server, "datastore_create",
            resource={"package_id": "b-car-parks", "name": "Spaces by car park", "format": "CSV"},
            fields=[{"id": "car_park", "type": "text"}, {"id": "district", "type": "text"},
                    {"id": "spaces", "type": "int"}],
            records=[{"car_park": f"Car park {i:02d}", "district": "Kowloon City" if i % 2
                      else "Wan Chai", "spaces": i * 3} for i in range(40)])  # fmt: skip
    shown = act(server, "package_show", id="b-car-parks")
    rid = next(r["id"] for r in shown["resources"] if r["datastore_active"])
    return {
        "search": "/dataset?q=car",
        "dataset": "/dataset/b-car-parks",
        "resource": f"/dataset/b-car-parks/resource/{rid}",
        "organisations": "/organization",
        "organisation": "/organization/b-td",
        "group": "/group/b-transport",
        "report": "/report/dataset/b-car-parks",
    }


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_axe_finds_no_violations(
    server: str, page: Any, catalogue: dict[str, str], prefix: str
) -> None:
    for kind, path in catalogue.items():
        page.goto(f"{server}/{prefix}{path}")
        report = axe.violations(page)
        assert not report, f"{kind} [{prefix}]:\n{report}"


def test_reflow_at_320_px(server: str, browser: Any, catalogue: dict[str, str]) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    try:
        page = context.new_page()
        for kind, path in catalogue.items():
            page.goto(f"{server}/en{path}")
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{kind} scrolls sideways: {widths}"
    finally:
        context.close()


def test_a_visitor_without_javascript_finds_and_reads_a_table(
    server: str, browser: Any, catalogue: dict[str, str]
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="zh-HK")
    try:
        page = context.new_page()
        page.goto(f"{server}/tc/")
        page.get_by_role("navigation", name="主選單").get_by_role("link", name="開放數據").click()
        page.get_by_label("搜尋字詞").fill("停車")
        page.get_by_role("button", name="搜尋").first.click()
        page.get_by_role("link", name="運輸署").first.click()  # the organisation facet
        expect(page).to_have_url(re.compile(r"organization=b-td"))
        page.get_by_role("link", name="停車場空置車位").click()
        page.get_by_role("link", name="預覽表格").click()
        expect(page.locator("table.data-table tbody tr")).to_have_count(25)
        page.get_by_label("district").fill("Wan")
        page.get_by_role("button", name="篩選").click()
        expect(page.locator("table.data-table tbody tr")).to_have_count(20)
        page.get_by_role("link", name="spaces").click()  # sort by spaces, ascending
        expect(page).to_have_url(re.compile(r"sort=spaces"))
        first = page.locator("table.data-table tbody tr").first
        expect(first.locator("td").last).to_have_text("0")
    finally:
        context.close()


def test_a_visitor_without_javascript_reports_a_problem_with_a_dataset(
    server: str, browser: Any, catalogue: dict[str, str]
) -> None:
    """From the dataset page to the moderation queue, with no script: the link, the form,
    the confirmation (the report itself is checked in tests/opendata/test_site_report.py)."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server}/en{catalogue['dataset']}")
        page.get_by_role("link", name="Report a problem with this data").click()
        expect(page).to_have_url(re.compile(r"/en/report/dataset/b-car-parks"))
        page.get_by_label("What is the problem?").fill("Car park 07 shows 21 spaces at night.")
        page.get_by_role("button", name="Send the report").click()
        expect(page.locator("#report-message")).to_contain_text("A moderator will read")
    finally:
        context.close()
