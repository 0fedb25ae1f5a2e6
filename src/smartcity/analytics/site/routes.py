"""``/{en,tc,sc}/analytics/traffic`` and ``/{en,tc,sc}/analytics/forecasts``: the analytics
results as server-rendered, trilingual pages. Every figure is in a table; the map and the
charts (``static/analytics.js``, Leaflet and uPlot from ``web/static/vendor``) only add to
them, so the pages are complete without JavaScript (docs/analytics.md, "Pages")."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from smartcity import __version__
from smartcity.analytics.site.traffic_view import API, BANDS, LEVELS, STATUSES, load
from smartcity.analytics.traffic.pipeline import Store
from smartcity.web import nav
from smartcity.web.i18n import Lang
from smartcity.web.pages import DEFAULT_CSP, Crumb, Pages
from smartcity.web.routing import LangDep, page

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
ASSETS = "/analytics-assets"
router = APIRouter()
pages = Pages(HERE / "templates", locale_dirs=[HERE / "locale"])
# One item for both pages: the traffic page links to the forecasts and back.
nav.register(
    nav.NavItem("analytics", "/analytics/traffic", nav.N_("Traffic analytics"), 45, HERE / "locale")
)
# Leaflet draws its panes with style attributes set from script (allowed) and the map's
# vector layers as SVG; nothing else than the default is needed.
CSP = DEFAULT_CSP


def asset(path: str) -> str:
    return f"{ASSETS}/{path}?v={__version__}"


pages.extra_globals.update(asset=asset, bands=BANDS, statuses=dict(STATUSES))


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="analytics-assets")


def tr(lang: Lang, message: str) -> str:
    return pages.gettext(lang, message)


def crumbs(lang: Lang, title: str) -> list[Crumb]:
    return [Crumb(tr(lang, "Home"), f"/{lang.prefix}/"), Crumb(title)]


@page(router, "/analytics/traffic")
def traffic_page(request: Request, lang: LangDep) -> Response:
    params = request.query_params
    level = params.get("level") or "road"
    if level not in dict(LEVELS):
        level = "road"
    view = load(Store(), params.get("date") or None, level)
    day = view.day.isoformat() if view.day else None

    def csv(path: str, **query: str) -> str:
        parts = [f"date={day}", *(f"{k}={v}" for k, v in query.items()), "format=csv"]
        return f"{API}/{path}?{'&'.join(parts)}"

    title = tr(lang, "Traffic analytics")
    return pages.render(
        request,
        "traffic.html",
        {
            "title": title,
            "nav_key": "analytics",
            "breadcrumbs": crumbs(lang, title),
            "v": view,
            "level": level,
            "levels": LEVELS,
            "asked": params.get("date") or "",
            "csv": csv,
            "api": API,
        },
        csp=CSP,
    )


def _forecasts(request: Request, detector: str | None) -> dict[str, Any]:
    """The traffic forecasts (every detector, and the chosen one's observed series)."""
    holder = getattr(request.app.state, "forecasts", None)
    if holder is None or holder.private:
        return {"private": holder is not None and holder.private, "doc": None, "one": None}
    try:
        snap = holder.service.current("averageVehicleSpeed")
    except Exception:  # a broken model must not take the page down: the empty state shows
        log.warning("traffic forecasts failed; the page shows none", exc_info=True)
        return {"private": False, "doc": None, "one": None}
    doc = snap.document()
    if not doc["entities"]:
        return {"private": False, "doc": None, "one": None}
    ids = snap.ids
    chosen = detector if detector in ids else ids[0]
    one = snap.document(with_series=True, only=ids.index(chosen))["entities"][0]
    return {"private": False, "doc": doc, "one": one, "chosen": chosen}


def _parking(request: Request) -> dict[str, Any]:
    holder = getattr(request.app.state, "parking", None)
    if holder is None or holder.private:
        return {"status": None, "alerts": None}
    try:
        status = holder.service.status()
        alerts = holder.service.alerts()
    except Exception:  # as above: the page stays up, the log says why
        log.warning("car park forecasts failed; the page shows none", exc_info=True)
        return {"status": None, "alerts": None}
    if not status["carParks"]:
        return {"status": None, "alerts": None}
    return {"status": status, "alerts": alerts}


def when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def name_of(name: Any, lang: Lang, fallback: str) -> str:
    if isinstance(name, dict):
        for key in (lang.text, "en"):
            if isinstance(name.get(key), str):
                return str(name[key])
        return next((str(v) for v in name.values() if isinstance(v, str)), fallback)
    return str(name) if isinstance(name, str) and name else fallback


def short(entity_id: str) -> str:
    return entity_id.rsplit(":", 1)[-1]


@page(router, "/analytics/forecasts")
def forecasts_page(request: Request, lang: LangDep) -> Response:
    detector = request.query_params.get("detector") or None
    traffic = _forecasts(request, detector)
    parking = _parking(request)
    title = tr(lang, "Forecasts: traffic and parking")
    one = traffic.get("one")
    chart = None
    if one:
        chart = {
            "series": [
                {
                    "label": tr(lang, "Observed"),
                    "points": [[p["start"], p["value"]] for p in one["series"]],
                },
                {
                    "label": tr(lang, "Forecast"),
                    "points": (
                        [[one["observed"]["start"], one["observed"]["value"]]]
                        if one["observed"]
                        else []
                    )
                    + [
                        [f["start"], f["value"]] for f in one["forecasts"] if f["value"] is not None
                    ],
                },
            ]
        }
    return pages.render(
        request,
        "forecasts.html",
        {
            "title": title,
            "nav_key": "analytics",
            "breadcrumbs": crumbs(lang, title),
            **traffic,
            **parking,
            "chart": chart,
            "when": when,
            "short": short,
            "name_of": lambda name, eid: name_of(name, lang, short(eid)),
            "quote": lambda s: quote(s, safe=":"),
        },
        csp=CSP,
    )
