"""Rendering comments: no executable markup survives, whatever people type; plus the text
checks, CSRF tokens and the server secret."""

from __future__ import annotations

import os
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.portal.feedback.csrf import mint_csrf_token, verify_csrf_token
from smartcity.portal.feedback.errors import InvalidFeedback
from smartcity.portal.feedback.sanitize import (
    ALLOWED_TAGS,
    clean_text,
    count_links,
    render_comment_html,
)
from smartcity.portal.feedback.secret import Keyed, load_or_create_secret


class Markup(HTMLParser):
    """Collects what a browser would build: elements, their attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.other.append("decl")

    def handle_pi(self, data: str) -> None:
        self.other.append("pi")

    def unknown_decl(self, data: str) -> None:
        self.other.append("unknown")


def assert_safe(rendered: str) -> Markup:
    parser = Markup()
    parser.feed(rendered)
    parser.close()
    assert parser.other == [], rendered
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, rendered
        if tag == "a":
            assert set(attrs) <= {"href", "rel"}, rendered
            href = attrs.get("href") or ""
            assert href.lower().startswith(("http://", "https://")), rendered
            assert attrs.get("rel") == "nofollow ugc noopener noreferrer"
        else:
            assert attrs == {}, rendered
    for _, attrs in parser.tags:
        for value in attrs.values():
            # "http://javascript:0/" is a harmless http URL; what must never appear is a value
            # a browser would run: one whose scheme is javascript, vbscript or data.
            scheme = urlsplit((value or "").strip()).scheme.lower()
            assert scheme not in {"javascript", "vbscript", "data"}, rendered
    return parser


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<a href=jAvAsCrIpT:alert(1)>x</a>",
    "<svg/onload=alert(1)>",
    '"><script>alert(document.cookie)</script>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<a href='&#106;avascript:alert(1)'>x</a>",
    "<iframe src=javascript:alert(1)>",
    '<div style="background:url(javascript:alert(1))">',
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    'http://example.org/"onmouseover="alert(1)',
    "https://example.org/<script>alert(1)</script>",
    "http://x.org/'><img src=x onerror=alert(1)>",
    "javascript:alert(1)//http://example.org",
    "<p onclick=alert(1)>hi</p>",
    "<<script>script>alert(1)<</script>/script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_come_out_inert(payload: str) -> None:
    rendered = render_comment_html(payload)
    parser = assert_safe(rendered)
    # The payload is shown as the text it is, not dropped.
    assert "".join(parser.text).replace(" ", "") == payload.replace(" ", "")


def test_links_paragraphs_and_line_breaks() -> None:
    rendered = render_comment_html(
        "See https://www.td.gov.hk/en/a?x=1&y=2.\nThanks\n\n(Wiki: https://en.wikipedia.org/wiki/A_(b))"
    )
    assert rendered == (
        '<p>See <a href="https://www.td.gov.hk/en/a?x=1&amp;y=2" rel="nofollow ugc noopener '
        'noreferrer">https://www.td.gov.hk/en/a?x=1&amp;y=2</a>.<br>Thanks</p><p>(Wiki: <a '
        'href="https://en.wikipedia.org/wiki/A_(b)" rel="nofollow ugc noopener noreferrer">'
        "https://en.wikipedia.org/wiki/A_(b)</a>)</p>"
    )
    assert render_comment_html("停車場。https://data.gov.hk，好").count("<a ") == 1


_PIECES = st.sampled_from(
    [
        "<",
        ">",
        '"',
        "'",
        "&",
        "#",
        ";",
        "=",
        "/",
        ":",
        " ",
        "\n",
        "javascript:",
        "http://",
        "https://",
        "<a href=",
        "<script>",
        "onerror=",
        "&#106;",
        "&lt;",
        "(",
        ")",
        "\x00",
        "x",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.lists(_PIECES | st.text(max_size=3)).map("".join)))
def test_any_text_renders_to_allowed_markup_only(text: str) -> None:
    assert_safe(render_comment_html(text))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=4)).map("".join))
def test_accepted_text_keeps_every_visible_character(text: str) -> None:
    try:
        stored = clean_text(text, "text", max_chars=5000)
    except InvalidFeedback:
        return
    parser = assert_safe(render_comment_html(stored))
    shown = "".join(parser.text)
    assert "".join(shown.split()) == "".join(stored.split())


def test_text_checks() -> None:
    assert clean_text(" a\r\nb \r", "text", max_chars=10) == "a\nb"
    assert clean_text("e\u0301", "text", max_chars=10) == "\u00e9"  # NFC
    with pytest.raises(InvalidFeedback):
        clean_text("a\nb", "name", max_chars=10, multiline=False)
    with pytest.raises(InvalidFeedback):
        clean_text(3, "text", max_chars=10)
    assert count_links("http://a https://b www.c.example wwwx") == 3


def test_csrf_tokens() -> None:
    keyed = Keyed("a-server-secret-of-some-length")
    token = mint_csrf_token(keyed, "session-1", now=1000)
    assert verify_csrf_token(keyed, "session-1", token, now=1100)
    assert not verify_csrf_token(keyed, "session-2", token, now=1100)
    assert not verify_csrf_token(keyed, "session-1", token, now=1000 + 3 * 3600)
    # Change the last character to a different one (the token is random, so
    # a fixed replacement would sometimes equal the original).
    tampered = token[:-1] + ("1" if token[-1] == "0" else "0")
    assert tampered != token
    assert not verify_csrf_token(keyed, "session-1", tampered, now=1100)
    assert not verify_csrf_token(Keyed("another-secret-of-some-length"), "session-1", token)
    assert not verify_csrf_token(keyed, "session-1", None)
    assert not verify_csrf_token(keyed, "session-1", "1.2")


def test_secret_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    assert len(first) >= 40
    mode = stat.S_IMODE(os.stat(tmp_path / "secret").st_mode)
    assert mode == 0o600
    assert load_or_create_secret(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcity.config import FeedbackSettings, Settings

    assert Settings(database_url="sqlite://").feedback == FeedbackSettings()
    monkeypatch.setenv("SMARTCITY_FEEDBACK_REPORTS_TO_HIDE", "5")
    monkeypatch.setenv("SMARTCITY_FEEDBACK_PREMODERATION", "yes")
    monkeypatch.setenv("SMARTCITY_FEEDBACK_MAX_LINKS", "0")
    monkeypatch.setenv("SMARTCITY_FEEDBACK_RATE_COMMENT_IP", "7/60")
    monkeypatch.setenv("SMARTCITY_SECRET", "from-the-environment-123")
    feedback = Settings.from_env("sqlite://").feedback
    assert (feedback.reports_to_hide, feedback.premoderation, feedback.max_links) == (5, True, 0)
    assert feedback.comment_rate_ip == (7, 60)
    assert feedback.secret == "from-the-environment-123"
