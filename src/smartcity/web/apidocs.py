"""The API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served from vendored
assets (web/vendor.json) so that they render with no request to another host.

FastAPI's defaults load both from a CDN (and Swagger UI's favicon from fastapi.tiangolo.com);
on a city's closed network, or a newcomer's laptop offline, the pages came up blank.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from smartcity.web.pages import STATIC_PREFIX

VENDOR = f"{STATIC_PREFIX}/vendor"
# Both pages start with an inline script and inline styles (FastAPI's templates); everything
# else is this host's. The policy also stops ReDoc's sidebar logo, which it always loads from
# cdn.redoc.ly (no option turns it off; the link text stays).
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc for ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _offline(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=title,
                swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
                swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
                swagger_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
                # Swagger UI would otherwise send the document to validator.swagger.io.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _offline(
            get_redoc_html(
                openapi_url=openapi_url,
                title=title,
                redoc_js_url=f"{VENDOR}/redoc/bundles/redoc.standalone.js",
                redoc_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
                with_google_fonts=False,
            )
        )
