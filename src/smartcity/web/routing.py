"""Language-prefixed routes (/en, /tc, /sc), the root redirect, static files and HTML errors.

A page dependency that must answer instead of the page (a guard sending a visitor to sign
in, or a 403 page naming the missing role) raises ``PageAnswer`` with that response; the
handler ``install`` registers returns it. So a guard declared once as a typed dependency
answers before the handler runs, and before a form or an upload is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from smartcity.web import i18n
from smartcity.web.i18n import Lang
from smartcity.web.pages import STATIC_DIR, STATIC_PREFIX, framework_pages, lang_of_path

Endpoint = Callable[..., Any]


def page(router: APIRouter, path: str) -> Callable[[Endpoint], Endpoint]:
    """Register a GET page under every language prefix: ``@page(router, "/areas/{area}")``.

    The three prefixes are spelled out (no ``/{lang}/...`` catch-all) so site routes can never
    shadow another router's paths.
    """

    def decorator(endpoint: Endpoint) -> Endpoint:
        for lang in i18n.LANGS:
            router.add_api_route(
                f"/{lang.prefix}{path}" if path != "/" else f"/{lang.prefix}/",
                endpoint,
                methods=["GET"],
                response_class=HTMLResponse,
                include_in_schema=False,
                name=f"{endpoint.__name__}_{lang.prefix}",
            )
        return endpoint

    return decorator


def post_page(router: APIRouter, path: str) -> Callable[[Endpoint], Endpoint]:
    """Like ``page`` for a form's POST: one route per language prefix."""

    def decorator(endpoint: Endpoint) -> Endpoint:
        for lang in i18n.LANGS:
            router.add_api_route(
                f"/{lang.prefix}{path}",
                endpoint,
                methods=["POST"],
                include_in_schema=False,
                name=f"{endpoint.__name__}_post_{lang.prefix}",
            )
        return endpoint

    return decorator


def current_lang(request: Request) -> Lang:
    """FastAPI dependency: the language of the page being served."""
    return lang_of_path(request.url.path) or i18n.DEFAULT


# A page handler's parameter: ``lang: LangDep``.
LangDep = Annotated[Lang, Depends(current_lang)]


def is_site_path(path: str) -> bool:
    return lang_of_path(path) is not None


def error_page(request: Request, status_code: int = 404) -> Response:
    """The HTML error page for site paths (the API keeps its ProblemDetails JSON)."""
    return framework_pages.render(
        request,
        "error.html",
        {"status": status_code, "breadcrumbs": []},
        status_code=status_code,
    )


class PageAnswer(Exception):
    """Raised by a page dependency to answer with ``response`` instead of the page."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _page_answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageAnswer)
    return exc.response


def install(app: FastAPI) -> None:
    """Mount /static, the root redirect and the bare-prefix redirects on ``app``, and let
    page dependencies answer with ``PageAnswer``."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(PageAnswer, _page_answer)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        lang = i18n.negotiate(request.headers.get("accept-language"))
        # 307 keeps the method; Vary tells caches the answer depends on the header.
        return RedirectResponse(
            f"/{lang.prefix}/", status_code=307, headers={"Vary": "Accept-Language"}
        )

    def bare(lang: Lang) -> Endpoint:
        def redirect() -> Response:
            return RedirectResponse(f"/{lang.prefix}/", status_code=308)

        return redirect

    for lang in i18n.LANGS:
        app.add_api_route(f"/{lang.prefix}", bare(lang), methods=["GET"], include_in_schema=False)
