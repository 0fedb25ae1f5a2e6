"""A browser that posts more than a page takes is shown a page, in its language and without
axe violations, not the API's JSON (web/refusals.py). The form is the sign-in page's, sent
with a field past the site forms' limit (128 KB), as a pasted file or a runaway script would."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser import axe

pytest.importorskip("axe_playwright_python.sync_playwright")
expect = pytest.importorskip("playwright.sync_api").expect

SUBMIT_TOO_MUCH = """(size) => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = location.pathname;
  const field = document.createElement('input');
  field.type = 'hidden';
  field.name = 'username';
  field.value = 'x'.repeat(size);
  form.appendChild(field);
  document.body.appendChild(form);
  form.submit();
}"""


@pytest.mark.parametrize(
    ("prefix", "heading"), [("en", "What you sent is too large"), ("tc", "你送出的內容太大")]
)
def test_a_form_past_the_limit_shows_an_accessible_page(
    server: str, page: Any, prefix: str, heading: str
) -> None:
    page.goto(f"{server}/{prefix}/login")
    with page.expect_navigation() as navigation:
        page.evaluate(SUBMIT_TOO_MUCH, 200 * 1024)
    response = navigation.value
    assert response.status == 413
    expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator("main a[href$='/login']")).to_be_visible()  # back to the form
    report = axe.violations(page)
    assert not report, f"too large [{prefix}]:\n{report}"
