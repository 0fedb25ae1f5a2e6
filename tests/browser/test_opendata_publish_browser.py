"""The open data editor pages in a real browser: axe-core (WCAG 2.1 A/AA) on the publish
page, the dataset form (empty, with errors, and an existing dataset's) and the resource form
in English and Traditional Chinese, and an editor who publishes a dataset with JavaScript off.
The server's td-editor account (conftest.py) is made an editor of the catalogue's p-td."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from tests.browser import axe
from tests.browser.catalogue import act, exists
from tests.browser.conftest import STAFF_PASSWORD

pytest.importorskip("axe_playwright_python.sync_playwright")
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def publisher(server: str) -> str:
    """An organisation with td-editor as its editor, a category and one dataset (the server
    runs with --no-auth, so the API lets the test set it up)."""

    if not exists(server, "organization_show", "p-td"):
        act(server, "organization_create", name="p-td", title_translated={
            "en": "Transport Department", "zh-Hant": "運輸署", "zh-Hans": "运输署"})  # fmt: skip
        act(server, "organization_member_create", id="p-td", username="td-editor", role="editor")
    if not exists(server, "group_show", "p-transport"):
        # A title of its own: the browser tests share one server, and another module's
        # category is called "Transport" (the form lists every category).
        act(server, "group_create", name="p-transport", title="Roads and rail")
    if not exists(server, "package_show", "p-vacancy"):
        act(server, "package_create", name="p-vacancy", owner_org="p-td", title="Car park vacancy",
            resources=[{"url": "https://example.org/v.csv", "name": "Vacancy"}])  # fmt: skip
    return "p-td"


def sign_in(page: Any, server: str, prefix: str, next_path: str) -> None:
    page.goto(f"{server}/{prefix}/login?next=/{prefix}{next_path}")
    page.fill("#login-username", "td-editor")
    page.fill("#login-password", STAFF_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"**/{prefix}{next_path}")


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_axe_finds_no_violations_on_the_editor_pages(
    server: str, page: Any, publisher: str, prefix: str
) -> None:
    sign_in(page, server, prefix, "/publish")
    report = axe.violations(page)
    assert not report, f"publish [{prefix}]:\n{report}"
    for kind, path in {
        "new dataset": f"/publish/new?organization={publisher}",
        "edit dataset": "/publish/dataset/p-vacancy",
        "new resource": "/publish/dataset/p-vacancy/resource/new",
        "delete dataset": "/publish/dataset/p-vacancy/delete",
        "live dataset": "/publish/live",
        "dataset page with its edit link": "/dataset/p-vacancy",
    }.items():
        page.goto(f"{server}/{prefix}{path}")
        report = axe.violations(page)
        assert not report, f"{kind} [{prefix}]:\n{report}"
    # The form sent back with errors: the summary, the messages tied to their fields.
    page.goto(f"{server}/{prefix}/publish/new?organization={publisher}")
    page.fill("#ds-name", "Not A Slug")
    page.fill("#ds-tag_string", "ok, not/ok")
    page.locator("#dataset-form button[type=submit]").click()
    expect(page.locator("#ds-errors")).to_be_visible()
    expect(page.locator("#ds-name")).to_have_attribute("aria-invalid", "true")
    report = axe.violations(page)
    assert not report, f"dataset form with errors [{prefix}]:\n{report}"


def test_an_editor_publishes_a_dataset_without_javascript(
    server: str, browser: Any, publisher: str
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, server, "en", "/dataset")
        page.get_by_role("link", name="Publish data").click()
        expect(page).to_have_url(re.compile(r"/en/publish$"))
        page.get_by_role("link", name="Add a dataset (Transport Department)").click()
        page.get_by_label("URL name").fill("p-journey-times")
        page.get_by_label("Title (English)").fill("Journey times")
        page.get_by_label("Title (繁體中文)").fill("行車時間")
        page.get_by_label("Description (English)").fill("Journey times on major roads.")
        page.get_by_label("Roads and rail", exact=True).check()
        page.get_by_label("Tags").fill("traffic, roads")
        page.get_by_label("Update frequency").select_option("daily")
        page.get_by_role("button", name="Create the dataset").click()
        expect(page.locator("#publish-message")).to_contain_text("The dataset was created")
        page.get_by_role("link", name="Add a resource").click()
        page.get_by_label("Or give a link").fill("https://example.org/journeys.csv")
        page.get_by_label("Name (English)").fill("Journey times (CSV)")
        page.get_by_role("button", name="Add the resource").click()
        expect(page.locator("#publish-message")).to_contain_text("The resource was added")
        page.get_by_role("link", name="See the public page").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Journey times")
        expect(page.get_by_role("link", name="Journey times (CSV)", exact=True)).to_be_visible()
    finally:
        context.close()
    shown = httpx.get(f"{server}/api/3/action/package_show", params={"id": "p-journey-times"})
    package = shown.json()["result"]
    assert package["title_translated"]["zh-Hant"] == "行車時間"
    assert [g["name"] for g in package["groups"]] == ["p-transport"]
    assert package["frequency"] == "daily"
