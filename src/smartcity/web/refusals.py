"""How the edge (hub/api/edge.py) refuses a request on the site's pages.

A browser that posts a form or a file larger than the page takes would otherwise be shown the
API's ProblemDetails JSON: a dead end in the middle of a task. A request to a site path
(``/en/...``, ``/tc/...``, ``/sc/...``) whose client reads HTML gets a page in that language
that says the limit, that nothing was kept, and what to do instead. Other clients — scripts
posting to the same paths — keep the JSON problem they can parse.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.types import Scope

from smartcity.hub.api.edge import Answer, Refusal
from smartcity.hub.errors import NgsiError
from smartcity.web import i18n
from smartcity.web.pages import framework_pages, lang_of_path


def site_answer(shown_limit: int | None = None) -> Answer:
    """The edge's answer on site paths: an HTML page for a browser's over-size request.
    ``shown_limit`` is the size the page states, when the route's limit adds room for the
    form's other fields to the file's own (the upload forms)."""

    def answer(exc: NgsiError, scope: Scope, limit: int) -> Refusal:
        return _answer(exc, scope, shown_limit or limit)

    return answer


def _answer(exc: NgsiError, scope: Scope, limit: int) -> Refusal:
    lang = lang_of_path(scope["path"])
    if exc.status != 413 or lang is None or not _reads_html(scope):
        return Refusal(exc.status, orjson.dumps(exc.problem()))
    request = Request(scope)
    fmt = i18n.Formatter(lang)
    response = framework_pages.render(
        request,
        "too_large.html",
        {"size": _size(limit, fmt), "back": scope["path"]},
        lang=lang,
        status_code=413,
        # The answer depends on Accept; a cache must not give the page to a script.
        headers={"Cache-Control": "no-store", "Vary": "Accept"},
    )
    headers = tuple((k, v) for k, v in response.raw_headers if k != b"content-length")
    return Refusal(413, bytes(response.body), headers)


def _reads_html(scope: Scope) -> bool:
    accept = b""
    for key, value in scope["headers"]:
        if key == b"accept":
            accept = bytes(value)
    return b"text/html" in accept or b"application/xhtml+xml" in accept


def _size(limit: int, fmt: i18n.Formatter) -> str:
    """A size as people read it, in the reader's number format: 100 MB, 128 KB."""
    if limit >= 1024 * 1024:
        return f"{fmt.number(round(limit / (1024 * 1024), 1))} MB"
    return f"{fmt.number(round(limit / 1024))} KB"
