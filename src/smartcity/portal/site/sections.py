"""Extension points of the site's pages: other features add a section to a page.

The feedback feature registers a renderer for "measure" and "area" pages::

    from smartcity.portal.site import sections
    sections.register("measure", render_comments)   # (request, subject_id, lang) -> HTML

A renderer returns trusted HTML (``markupsafe.Markup``, typically from its own ``Pages``), or
None to add nothing. Without any renderer the page shows a short placeholder.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from markupsafe import Markup

from smartcity.web.i18n import Lang

Renderer = Callable[[Request, str, Lang], Markup | str | None]
_RENDERERS: dict[str, list[Renderer]] = {"measure": [], "area": []}


def register(page: str, renderer: Renderer) -> None:
    _RENDERERS.setdefault(page, [])
    if renderer not in _RENDERERS[page]:
        _RENDERERS[page].append(renderer)


def render(page: str, request: Request, subject_id: str, lang: Lang) -> list[Markup]:
    out: list[Markup] = []
    for renderer in _RENDERERS.get(page, []):
        html = renderer(request, subject_id, lang)
        if html:
            out.append(Markup(html))
    return out


def has(page: str) -> bool:
    return bool(_RENDERERS.get(page))
