"""The portal's interactive parts in a real browser (Debian's Chromium, a real server process):
comment, report until hidden, restore as moderator; update progress as an editor and see the
area roll-up change; a vote asks for an e-mail address (one person, one vote); axe-core
(WCAG 2.1 A/AA) on the pages with forms; forms without JavaScript.

The server (tests/browser/conftest.py) hides a comment after two reports and starts with a
moderator and a Transport Department editor.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser import axe

pytest.importorskip("axe_playwright_python.sync_playwright")
playwright_api = pytest.importorskip("playwright.sync_api")

MEASURE = "/measures/mobility-12"
# As set up by conftest.py's server fixture (STAFF_PASSWORD, REPORTS_TO_HIDE there).
STAFF_PASSWORD = "browser-tests-password"
REPORTS_TO_HIDE = 2


@pytest.fixture
def new_context(browser: Any) -> Iterator[Any]:
    """Fresh browser contexts (separate cookies: distinct people), closed afterwards."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(
            locale="en-GB", viewport={"width": 1280, "height": 900}, **options
        )
        context.set_default_timeout(15_000)
        made.append(context)
        return context.new_page()

    yield make
    for context in made:
        context.close()


def sign_in(page: Any, server: str, username: str, next_path: str) -> None:
    page.goto(f"{server}/en/login?next=/en{next_path}")
    page.fill("#login-username", username)
    page.fill("#login-password", STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/en{next_path}")


def post_comment(page: Any, server: str, text: str, prefix: str = "en") -> int:
    page.goto(f"{server}/{prefix}{MEASURE}")
    page.fill("#feedback-form-text", text)
    page.check("#feedback-form-stance")  # "Support"
    page.locator("#feedback-form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*#comment-\d+$"))
    return int(page.url.rsplit("-", 1)[1])


def test_comment_report_until_hidden_then_restore(server: str, new_context: Any) -> None:
    text = f"Please publish more car park data {uuid.uuid4().hex[:6]}"
    author = new_context()
    cid = post_comment(author, server, text)
    item = author.locator(f"#comment-{cid}")
    assert text in item.inner_text()
    assert "Thank you: your comment is published." in item.inner_text()
    # Only reports from people hide a comment (docs/portal.md, "Reports"): the reporters are
    # signed in, one account each.
    reporters = ["td-editor", "mod"]
    assert len(reporters) == REPORTS_TO_HIDE
    for n, username in enumerate(reporters):
        reporter = new_context()
        sign_in(reporter, server, username, MEASURE)
        reporter.goto(f"{server}/en{MEASURE}#comment-{cid}")
        reporter.locator(f"#comment-{cid} .comment-report > summary").click()
        reporter.select_option(f"#report-{cid}-reason", "off-topic")
        reporter.locator(f"#report-{cid} button[type=submit]").click()
        reporter.wait_for_url("**#feedback-message")
        assert (
            "A moderator will look at this comment." in reporter.locator("#feedback").inner_text()
        )
        body = reporter.locator("main").inner_text()
        assert (text in body) == (n + 1 < REPORTS_TO_HIDE)
    moderator = new_context()
    moderator.goto(f"{server}/en/moderation")  # sent to sign in, then back
    moderator.wait_for_url("**/en/login?next=/en/moderation")
    moderator.fill("#login-username", "mod")
    moderator.fill("#login-password", STAFF_PASSWORD)
    moderator.get_by_role("button", name="Sign in").click()
    moderator.wait_for_url("**/en/moderation")
    assert "Signed in as Mo Moderator" in moderator.locator(".account-bar").inner_text()
    card = moderator.locator("article.moderation-item", has_text=text)
    assert "Hidden after reports" in card.inner_text()
    card.get_by_role("button", name=re.compile(r"^Restore")).click()
    moderator.wait_for_url("**#moderation-message")
    assert f"Comment {cid} is published again." in moderator.locator("main").inner_text()
    author.goto(f"{server}/en{MEASURE}")
    assert text in author.locator(f"#comment-{cid}").inner_text()


def _area_progress(page: Any, server: str) -> str:
    page.goto(f"{server}/en/areas/mobility")
    return str(page.locator("#area-progress + .progress .progress-value").inner_text())


def test_editor_updates_progress_and_the_area_rollup_changes(server: str, new_context: Any) -> None:
    editor = new_context()
    sign_in(editor, server, "td-editor", "/account")
    before = _area_progress(editor, server)
    editor.goto(f"{server}/en/measures/mobility-02")
    editor.locator("#editor summary", has_text="Update progress").click()
    # mobility-02 starts "ongoing" at 100 % (the blueprint says "Continue the trial").
    editor.select_option("#progress-status", "in_progress")
    editor.fill("#progress-progress", "30")
    editor.fill("#progress-note_en", "Done on every trunk road")
    editor.get_by_role("button", name="Save progress").click()
    editor.wait_for_url("**/en/measures/mobility-02#status-message")
    # The confirmation sits in the status block, next to what changed.
    status = editor.locator("section[aria-labelledby=status-heading]").inner_text()
    assert "The progress of this measure is updated." in status
    assert "Done on every trunk road" in editor.locator("main").inner_text()  # the timeline
    assert _area_progress(editor, server) != before


@pytest.mark.parametrize("prefix", ["en", "tc"])
def test_axe_on_the_measure_page_with_comments(server: str, new_context: Any, prefix: str) -> None:
    page = new_context()
    cid = post_comment(page, server, f"A comment to check {uuid.uuid4().hex[:6]}", prefix)
    page.locator(f"#comment-{cid} .comment-reply > summary").click()
    page.fill(f"#reply-{cid}-text", "And a reply to it")
    page.locator(f"#reply-{cid} button[type=submit]").click()
    page.wait_for_url(re.compile(r".*#comment-\d+$"))
    report = axe.violations(page)
    assert not report, f"measure page [{prefix}]:\n{report}"
    # The form sent back with mistakes: error summary, aria-invalid, hints.
    page.goto(f"{server}/{prefix}{MEASURE}")
    page.fill("#feedback-form-email", "not an address")
    page.locator("#feedback-form button[type=submit]").click()
    # interactive.js moves focus to the error summary once the page has loaded.
    playwright_api.expect(page.locator("#feedback-form-errors")).to_be_focused()
    report = axe.violations(page)
    assert not report, f"measure page with errors [{prefix}]:\n{report}"


def test_axe_on_login_moderation_and_editor_pages(server: str, new_context: Any) -> None:
    page = new_context()
    page.goto(f"{server}/tc/login")
    report = axe.violations(page)
    assert not report, f"login:\n{report}"
    page.fill("#login-username", "mod")
    page.fill("#login-password", "not the password")
    page.get_by_role("button", name="登入").click()
    report = axe.violations(page)
    assert not report, f"login with an error:\n{report}"
    sign_in(page, server, "mod", "/moderation")
    report = axe.violations(page)
    assert not report, f"moderation queue:\n{report}"
    editor = new_context()
    sign_in(editor, server, "td-editor", "/measures/mobility-01/edit")
    report = axe.violations(editor)
    assert not report, f"editor form:\n{report}"
    editor.goto(f"{server}/en/measures/mobility-01")
    report = axe.violations(editor)
    assert not report, f"measure page with the editor panel:\n{report}"
    editor.goto(f"{server}/en/account")
    report = axe.violations(editor)
    assert not report, f"account:\n{report}"


def test_sign_in_link_bulk_page_and_official_answer(server: str, new_context: Any) -> None:
    """The visible sign-in link, the bulk editor and the official-answer form (issue #9)."""
    citizen = new_context()
    post_comment(citizen, server, f"When will it start? {uuid.uuid4().hex[:6]}")
    editor = new_context()
    editor.goto(f"{server}/tc/")
    editor.get_by_role("link", name="登入").click()
    editor.wait_for_url("**/tc/login?next=/tc/")
    editor.goto(f"{server}/en/login?next=/en/account/progress")
    editor.fill("#login-username", "td-editor")
    editor.fill("#login-password", STAFF_PASSWORD)
    editor.get_by_role("button", name="Sign in").click()
    editor.wait_for_url("**/en/account/progress")
    report = axe.violations(editor)
    assert not report, f"bulk editor:\n{report}"
    editor.goto(f"{server}/en{MEASURE}")
    assert editor.locator("summary", has_text="Answer officially").count() >= 1
    report = axe.violations(editor)  # the answer forms, the overdue mark, the status basis
    assert not report, f"measure page with answer forms:\n{report}"


def test_voting_asks_for_an_email_address(server: str, new_context: Any) -> None:
    author = new_context()
    cid = post_comment(author, server, f"Worth a vote {uuid.uuid4().hex[:6]}")
    voter = new_context()
    voter.goto(f"{server}/en{MEASURE}")
    voter.locator(f"#comment-{cid} .vote-form button").click()
    form = voter.locator(f"#vote-{cid}")
    playwright_api.expect(form).to_contain_text("One person, one vote")
    report = axe.violations(voter)
    assert not report, f"the e-mail form for a vote:\n{report}"
    voter.fill(f"#vote-{cid}-email", "not an address")
    voter.locator(f"#vote-{cid} button[type=submit]").click()
    playwright_api.expect(voter.locator(f"#vote-{cid}-errors")).to_be_focused()
    report = axe.violations(voter)
    assert not report, f"the e-mail form for a vote, with an error:\n{report}"
    voter.fill(f"#vote-{cid}-email", "resident@example.org")
    voter.locator(f"#vote-{cid} button[type=submit]").click()
    voter.wait_for_url(f"**#comment-{cid}")
    item = voter.locator(f"#comment-{cid}")
    assert "We have sent a link to resident@example.org." in item.inner_text()
    assert "0 votes" in item.inner_text()


def test_forms_work_without_javascript(server: str, new_context: Any) -> None:
    page = new_context(java_script_enabled=False)
    text = f"Posted without JavaScript {uuid.uuid4().hex[:6]}"
    cid = post_comment(page, server, text, "sc")
    assert text in page.locator(f"#comment-{cid}").inner_text()
    # One person, one vote, never one's own: the author's vote is refused; a signed-in
    # account's is counted.
    page.locator(f"#comment-{cid} .vote-form button").click()
    page.locator(f"#vote-{cid}-email").fill("author@example.org")
    page.locator(f"#vote-{cid} button[type=submit]").click()
    assert "您不能为自己的意见点赞。" in page.locator(f"#comment-{cid}").inner_text()
    voter = new_context(java_script_enabled=False)
    sign_in(voter, server, "mod", "/account")
    voter.goto(f"{server}/sc{MEASURE}")
    voter.locator(f"#comment-{cid} .vote-form button").click()
    voter.wait_for_url(f"**#comment-{cid}")
    assert "1 个赞" in voter.locator(f"#comment-{cid}").inner_text()
