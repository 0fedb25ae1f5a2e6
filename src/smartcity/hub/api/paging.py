"""Paging of the hub's list endpoints, declared once: ``limit``/``offset``/``count`` checked
the same way everywhere, and the ``Link`` header of a page (rel="prev"/"next", clause 5.5.9)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from smartcity.config import Limits
from smartcity.hub.api.deps import bool_param, int_param
from smartcity.hub.errors import BadRequestData


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    count: bool  # the client asked for NGSILD-Results-Count


def page_of(limits: Limits, limit: str | None, offset: str | None, count: str | None) -> Page:
    """The page a request asks for; 400 for what the specification does not allow."""
    size = int_param(limit, "limit", limits.default_page_limit, low=0, high=limits.max_page_limit)
    skip = int_param(offset, "offset", 0, low=0, high=2**62)
    want_count = bool_param(count, "count")
    if size == 0 and not want_count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return Page(size, skip, want_count)


def count_header(page: Page, total: int | None) -> dict[str, str]:
    return {"NGSILD-Results-Count": str(total)} if page.count and total is not None else {}


def page_links(
    path: str, params: list[tuple[str, str]], *, limit: int, offset: int, total: int, media: str
) -> list[str]:
    """The Link header values of one page of a query (clause 5.5.9): rel="prev" when earlier
    items exist, rel="next" when later ones do. ``params`` are the request's other query
    parameters, kept in their order; limit and offset come last."""
    if limit <= 0:
        return []
    kept = [(k, v) for k, v in params if k not in ("limit", "offset")]

    def link(start: int, rel: str) -> str:
        query = urlencode([*kept, ("limit", str(limit)), ("offset", str(start))])
        return f'<{path}?{query}>; rel="{rel}"; type="{media}"'

    links = []
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    return links


def add_page_links(
    response: Response, request: Request, page: Page, total: int, media: str
) -> Response:
    """``response`` with the page's links; with application/json the @context link is already
    there, so the values share one comma-joined Link header."""
    links = page_links(
        request.url.path,
        request.query_params.multi_items(),
        limit=page.limit,
        offset=page.offset,
        total=total,
        media=media,
    )
    if links:
        present = response.headers.get("Link")
        response.headers["Link"] = ", ".join([present, *links] if present else links)
    return response
