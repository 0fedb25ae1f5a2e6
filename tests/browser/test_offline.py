"""Every page works offline: nothing is requested from another host (``offline_page``, in
conftest.py), and the API documentation pages (/docs, /redoc) render from vendored assets."""

from __future__ import annotations

from typing import Any

import pytest

PAGES = [
    "/en/",
    "/tc/",
    "/sc/measures/mobility-12",
    "/en/areas/mobility",
    "/en/search?q=parking",
    "/en/kpis",
    "/en/dashboard",
    "/en/login",
    "/docs",
    "/redoc",
]


@pytest.mark.parametrize("path", PAGES)
def test_no_page_asks_another_host(server: str, offline_page: Any, path: str) -> None:
    response = offline_page.goto(server + path, wait_until="networkidle")
    assert response is not None and response.status == 200, path
    assert offline_page.outside == [], f"{path} requested {offline_page.outside}"


def test_swagger_ui_renders_offline(server: str, offline_page: Any) -> None:
    offline_page.goto(server + "/docs")
    offline_page.wait_for_selector(".swagger-ui .info .title")
    assert "smartcity" in offline_page.inner_text(".swagger-ui .info .title")
    # Operations are listed: the document came from /openapi.json and rendered. (Which tag
    # sections Swagger UI opens first changes as the API grows, so any operation will do.)
    offline_page.wait_for_selector(".opblock-summary-path[data-path]")
    assert offline_page.outside == []


def test_redoc_renders_offline(server: str, offline_page: Any) -> None:
    offline_page.goto(server + "/redoc")
    offline_page.wait_for_selector("h1")
    assert "smartcity" in offline_page.inner_text("h1")
    assert offline_page.outside == []
