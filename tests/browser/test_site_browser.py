"""The public site in a real browser: reading in three languages, switching language, axe-core
(WCAG 2.1 A/AA) on every page type, reflow at 320 px, and reading without JavaScript."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from tests.browser import axe

from smartcity.portal.blueprint.dataset import load_blueprint

pytest.importorskip("axe_playwright_python.sync_playwright")

PAGE_TYPES = {
    "home": "/",
    "areas": "/areas",
    "area": "/areas/mobility",
    "measure": "/measures/mobility-12",
    "search": "/search?q=%E6%B3%8A%E8%BB%8A",
    "new": "/new",
    "kpis": "/kpis",
    "about": "/about",
    "not-found": "/measures/no-such-measure",
}
LANG_TAGS = {"en": "en", "tc": "zh-Hant-HK", "sc": "zh-Hans"}
TEXT_KEYS = {"en": "en", "tc": "zh-Hant", "sc": "zh-Hans"}


def _measure(measure_id: str) -> Any:
    return next(m for a in load_blueprint().areas for m in a.measures if m.id == measure_id)


@pytest.mark.parametrize("prefix", ["en", "tc", "sc"])
def test_read_a_measure_in_each_language(server: str, page: Any, prefix: str) -> None:
    measure = _measure("mobility-12")
    page.goto(f"{server}/{prefix}/measures/mobility-12")
    assert page.locator("html").get_attribute("lang") == LANG_TAGS[prefix]
    assert page.locator("h1").inner_text().strip() == measure.title.get(TEXT_KEYS[prefix])
    body = page.locator("main").inner_text()
    assert measure.text.get(TEXT_KEYS[prefix])[:30] in body
    assert page.locator("main progress").count() >= 1


def test_switch_language_on_the_same_page(server: str, page: Any) -> None:
    page.goto(f"{server}/en/search?q=%E6%B3%8A%E8%BB%8A&area=mobility")
    page.get_by_role("link", name="繁體中文").click()
    page.wait_for_url("**/tc/search?**")
    assert unquote(page.url).endswith("/tc/search?q=泊車&area=mobility")
    assert page.locator("html").get_attribute("lang") == "zh-Hant-HK"
    assert page.locator("h1").inner_text() == "搜尋措施"
    assert page.locator("#q").input_value() == "泊車"
    page.get_by_role("link", name="简体中文").click()
    page.wait_for_url("**/sc/search?**")
    assert page.locator("h1").inner_text() == "搜索措施"
    # The reader's place (#fragment) is kept by the enhancement script.
    page.goto(f"{server}/en/measures/mobility-12#live")
    page.get_by_role("link", name="繁體中文").click()
    page.wait_for_url("**/tc/measures/mobility-12#live")


@pytest.mark.parametrize("prefix", ["en", "tc"])
@pytest.mark.parametrize("kind", list(PAGE_TYPES))
def test_axe_finds_no_violations(server: str, page: Any, prefix: str, kind: str) -> None:
    page.goto(f"{server}/{prefix}{PAGE_TYPES[kind]}")
    report = axe.violations(page)
    assert not report, f"{kind} [{prefix}]:\n{report}"


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_reflow_at_320_px(server: str, browser: Any, prefix: str) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    try:
        page = context.new_page()
        for kind, path in PAGE_TYPES.items():
            page.goto(f"{server}/{prefix}{path}")
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{kind} [{prefix}] scrolls sideways: {widths}"
    finally:
        context.close()


def test_reads_fully_without_javascript(server: str, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server}/tc/search?q=%E6%B3%8A%E8%BB%8A")
        assert page.locator("main .measure-item").count() >= 2
        page.get_by_role("link", name=_measure("mobility-12").title.zh_hant).click()
        assert "/tc/measures/mobility-12" in page.url
        assert page.locator("main progress").count() >= 1
    finally:
        context.close()


def test_skip_link_is_first_and_visible_on_focus(server: str, page: Any) -> None:
    page.goto(f"{server}/en/areas/mobility")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
