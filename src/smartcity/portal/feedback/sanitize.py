"""Checking what people type, and rendering it safely.

Comments are stored as the raw text people wrote (after the checks below); HTML is produced only
when shown, by ``render_comment_html``: everything is escaped, http(s) URLs become links, line
breaks become ``<br>`` / ``<p>``, and the result goes through nh3 (the maintained Rust
sanitiser, ammonia) with an allow-list of three tags as a second line of defence.
"""

from __future__ import annotations

import html
import re
import unicodedata

import nh3

from smartcity.portal.feedback.errors import InvalidFeedback

ALLOWED_TAGS = frozenset({"p", "br", "a"})
LINK_REL = "nofollow ugc noopener noreferrer"
# Bidirectional overrides and isolates reorder what readers see ("Trojan Source" spoofing).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_URL = re.compile(r"https?://[^\s<>\"'`\x00-\x20\x7f]+", re.IGNORECASE)
_ANY_LINK = re.compile(r"https?://|\bwww\.", re.IGNORECASE)
# Punctuation that ends a sentence rather than the URL (ASCII and CJK).
_TRAILING = ".,;:!?)]}'\"。，、；：！？）」』】"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def _is_noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def check_characters(text: str, field: str, *, multiline: bool) -> None:
    for ch in text:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            raise InvalidFeedback(
                "invalid_unicode", f"{field} holds a lone surrogate (U+{cp:04X}): invalid Unicode"
            )
        if _is_noncharacter(cp):
            raise InvalidFeedback(
                "invalid_unicode", f"{field} holds a Unicode noncharacter (U+{cp:04X})"
            )
        if ch in "\n\t" and multiline:
            continue
        if unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS or ch in "\u2028\u2029":
            raise InvalidFeedback(
                "control_character", f"{field} holds a control character (U+{cp:04X})"
            )


def clean_text(
    raw: object, field: str, *, max_chars: int, min_chars: int = 1, multiline: bool = True
) -> str:
    """Normalise (NFC, line ends, outer whitespace) and check one text field."""
    if not isinstance(raw, str):
        raise InvalidFeedback("invalid_type", f"{field} must be a string")
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    check_characters(text, field, multiline=multiline)
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) < min_chars:
        raise InvalidFeedback("too_short", f"{field} is empty (after trimming spaces)")
    if len(text) > max_chars:
        raise InvalidFeedback(
            "too_long", f"{field} has {len(text)} characters; at most {max_chars} are allowed"
        )
    return text


def clean_optional(raw: object, field: str, *, max_chars: int) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str) and not raw.strip():
        return None
    return clean_text(raw, field, max_chars=max_chars, multiline=False)


def normalise_email(raw: object) -> str | None:
    """Lower-cased, trimmed address, or None when left empty; rejects what cannot be one."""
    value = clean_optional(raw, "email", max_chars=254)
    if value is None:
        return None
    if not _EMAIL.match(value):
        raise InvalidFeedback("invalid_email", "email is not an e-mail address (name@domain)")
    return value.lower()


def count_links(text: str) -> int:
    return len(_ANY_LINK.findall(text))


def _split_url(match: str) -> tuple[str, str]:
    """The URL proper and the punctuation after it (kept as text)."""
    url = match
    while url and url[-1] in _TRAILING:
        # Keep a closing parenthesis that closes one inside the URL (Wikipedia-style links).
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url, match[len(url) :]


def _href_survives(href: str) -> bool:
    """Whether nh3 keeps this URL (it drops hrefs its URL parser rejects, e.g. bad hosts):
    such URLs stay plain text rather than become links that lead nowhere."""
    probe = nh3.clean(
        f'<a href="{href}">x</a>',
        tags={"a"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel=None,
    )
    return "href=" in probe


def _linkify_line(line: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(line):
        url, tail = _split_url(m.group(0))
        out.append(html.escape(line[pos : m.start()]))
        href = html.escape(url, quote=True)
        if len(url) > len("https://") and _href_survives(href):
            out.append(f'<a href="{href}">{href}</a>')
        else:
            out.append(html.escape(url))
        out.append(html.escape(tail))
        pos = m.end()
    out.append(html.escape(line[pos:]))
    return "".join(out)


def render_comment_html(text: str) -> str:
    """Safe HTML for a stored comment: escaped text, linked URLs, paragraphs and line breaks."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "".join(
        "<p>" + "<br>".join(_linkify_line(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    return nh3.clean(
        body,
        tags=set(ALLOWED_TAGS),
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel=LINK_REL,
        strip_comments=True,
    )
