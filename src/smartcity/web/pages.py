"""Rendering HTML pages: one Jinja2 environment per language, security headers, page context.

A feature makes one ``Pages`` with its own template folder (searched before the framework's,
so ``{% extends "base.html" %}`` works) and optionally its own ``locale`` folder, then calls
``pages.render(request, "thing.html", {...})`` from its routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from smartcity import __version__
from smartcity.web import i18n, nav
from smartcity.web.i18n import LANGS, Formatter, Lang

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"

# Self only: no inline script or style, no framing, forms post back here.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(csp: str = DEFAULT_CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
    }


def lang_of_path(path: str) -> Lang | None:
    """The language a path is in, from its first segment (``/tc/areas`` → TC)."""
    first = path.lstrip("/").split("/", 1)[0]
    return i18n.by_prefix(first)


def rest_of_path(path: str) -> str:
    """The path after the language prefix: ``/tc/areas/x`` → ``/areas/x``; ``/tc`` → ``/``."""
    parts = path.lstrip("/").split("/", 1)
    return "/" + (parts[1] if len(parts) > 1 else "")


@dataclass
class PageInfo:
    """Where a page is: its language, its path after the prefix, and its alternates."""

    lang: Lang
    rest: str
    query: str
    base_url: str

    def url_in(self, lang: Lang) -> str:
        """The same page in another language, query string kept."""
        url = f"/{lang.prefix}{self.rest}"
        return f"{url}?{self.query}" if self.query else url

    def absolute_in(self, lang: Lang) -> str:
        return self.base_url + self.url_in(lang)

    @property
    def x_default(self) -> str:
        return self.absolute_in(i18n.DEFAULT)


@dataclass
class Crumb:
    label: str
    url: str | None = None  # None: the current page


@dataclass
class PageContext:
    """Helpers every template gets as globals (bound to the request's language)."""

    lang: Lang
    fmt: Formatter
    extras: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str, **query: Any) -> str:
        """A site path in the current language: ``url('/areas/mobility')`` → ``/en/areas/...``."""
        target = f"/{self.lang.prefix}{path if path.startswith('/') else '/' + path}"
        params = {k: v for k, v in query.items() if v is not None and v != ""}
        return f"{target}?{urlencode(params)}" if params else target

    def t(self, text: Any) -> str:
        """A blueprint ``Text`` (or a dict keyed by language) in the current language."""
        if text is None:
            return ""
        if isinstance(text, Mapping):
            return str(text.get(self.lang.text) or text.get("en") or "")
        getter = getattr(text, "get", None)
        return str(getter(self.lang.text)) if getter else str(text)


def static_url(path: str) -> str:
    # The version busts caches across releases; files are immutable within one.
    return f"{STATIC_PREFIX}/{path.lstrip('/')}?v={__version__}"


class Pages:
    """Renders a feature's templates in the request's language."""

    def __init__(self, *template_dirs: Path, locale_dirs: Sequence[Path] = ()) -> None:
        self.template_dirs = [*template_dirs, TEMPLATE_DIR]
        self.locale_dirs = tuple(locale_dirs)
        self._envs: dict[str, Environment] = {}
        # A feature's own template globals (set at import, before the first render).
        self.extra_globals: dict[str, Any] = {}

    def env(self, lang: Lang) -> Environment:
        env = self._envs.get(lang.prefix)
        if env is None:
            env = Environment(
                loader=FileSystemLoader(self.template_dirs),
                autoescape=select_autoescape(default=True, default_for_string=True),
                undefined=StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(  # type: ignore[attr-defined]
                i18n.translations(lang, self.locale_dirs), newstyle=True
            )
            env.globals.update(
                langs=LANGS,
                static=static_url,
                nav_items=lambda: list(nav.NAV),
                nav_label=lambda item: self.nav_label(lang, item),
                version=__version__,
            )
            env.globals.update(self.extra_globals)
            self._envs[lang.prefix] = env
        return env

    def nav_label(self, lang: Lang, item: nav.NavItem) -> str:
        """A main-nav label in ``lang``: from its feature's catalogue, then this page's."""
        dirs = (item.locale_dir, *self.locale_dirs) if item.locale_dir else self.locale_dirs
        return i18n.translations(lang, tuple(dirs)).gettext(item.label)

    def gettext(self, lang: Lang, message: str) -> str:
        return i18n.translations(lang, self.locale_dirs).gettext(message)

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        lang: Lang | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        csp: str = DEFAULT_CSP,
    ) -> HTMLResponse:
        lang = lang or lang_of_path(request.url.path) or i18n.DEFAULT
        helpers = PageContext(lang, Formatter(lang))
        page = PageInfo(
            lang=lang,
            rest=rest_of_path(request.url.path),
            query=request.url.query,
            base_url=str(request.base_url).rstrip("/"),
        )
        values: dict[str, Any] = {
            "request": request,
            "lang": lang,
            "page": page,
            "fmt": helpers.fmt,
            "url": helpers.url,
            "t": helpers.t,
            "nav_key": None,
            "breadcrumbs": [],
            "title": "",
        }
        values.update(context or {})
        html = self.env(lang).get_template(template).render(values)
        all_headers = security_headers(csp)
        all_headers["Content-Language"] = lang.html
        all_headers.update(headers or {})
        return HTMLResponse(html, status_code=status_code, headers=all_headers)


# The framework's own pages (error pages); features make their own ``Pages``.
framework_pages = Pages()
