"""The dashboard's pages (/{en,tc,sc}/dashboard, entity pages), JSON API and event stream.

/{lang}/dashboard                       the dashboard (works without JavaScript)
/{lang}/dashboard/entities/{id}         one entity: latest attributes and 24 h history
/api/v1/dashboard/tiles|alerts|layers|series|state|entities/{id}   JSON
/api/v1/dashboard/events                Server-Sent Events (see events.py)
/api/v1/dashboard/{layers,series,alerts,thresholds,entity}.csv   every table as CSV
/api/v1/dashboard/geo/{districts,coastline}.geojson
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlparse

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.runtime import Hub
from smartcity.live.dashboard import downloads
from smartcity.live.dashboard.events import LiveEvents
from smartcity.live.dashboard.kinds import BY_KEY, KINDS, RULES, DashboardConfig, Kind
from smartcity.live.dashboard.service import WINDOWS, DashboardService
from smartcity.live.dashboard.views import View, short_id
from smartcity.web import i18n
from smartcity.web.i18n import Lang
from smartcity.web.nav import N_, NavItem, register
from smartcity.web.pages import DEFAULT_CSP, Crumb, Pages
from smartcity.web.routing import LangDep, page

HERE = Path(__file__).parent
GEO = {
    "districts": HERE / "geo/hk-districts.geojson",
    "coastline": HERE / "geo/hk-coastline.geojson",
}
ASSETS = "/dashboard-assets"
API = "/api/v1/dashboard"
MAX_TABLE_ROWS = 200  # rows per layer in the page's tables (worst first); JSON has all

router = APIRouter()
pages = Pages(HERE / "templates", locale_dirs=[HERE / "locale"])
register(NavItem("dashboard", "/dashboard", N_("City dashboard"), 50, HERE / "locale"))


class Dashboard:
    """What one app holds: the service (state, figures) and the live event stream."""

    def __init__(self, hub: Hub, config: DashboardConfig | None = None) -> None:
        self.config = config or DashboardConfig.from_env()
        self.private = bool({"*", self.config.tenant} & set(hub.settings.private_read_tenants))
        self.service = DashboardService(hub.entities, self.config, hub.temporal)
        # Event ids of their own (several nodes, restarts: see LiveEvents); below 2**52, so
        # a browser's JavaScript number holds them exactly.
        self.events = LiveEvents(self.service, first_seq=secrets.randbelow(2**52))
        self.close = hub.feed.on_commit(self.events.on_commit)  # unplugs the live view


def install(app: FastAPI, hub: Hub, config: DashboardConfig | None = None) -> Dashboard:
    """Create the app's dashboard, include its routes and mount its assets."""
    dashboard = Dashboard(hub, config)
    app.state.dashboard = dashboard
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="dashboard-assets")
    return dashboard


def get_dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    if dashboard.private:
        # Reads of this tenant need a key; the dashboard is public, so it shows nothing.
        raise HTTPException(403, "the dashboard's tenant is private (SMARTCITY_DASHBOARD_TENANT)")
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]


def api_lang(lang: Annotated[str, Query(description="en, tc or sc")] = "en") -> Lang:
    found = i18n.by_prefix(lang)
    if found is None:
        raise BadRequestData(f"lang must be en, tc or sc, got {lang!r}")
    return found


ApiLangDep = Annotated[Lang, Depends(api_lang)]


def view(lang: Lang) -> View:
    return View(lang, lambda message: pages.gettext(lang, message))


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def asset(path: str) -> str:
    from smartcity import __version__

    return f"{ASSETS}/{path}?v={__version__}"


def csp(config: DashboardConfig) -> str:
    if not config.tile_url:
        return DEFAULT_CSP
    origin = urlparse(config.tile_url.replace("{s}", "a"))
    host = f"{origin.scheme}://{origin.netloc.replace('a.', '*.', 1)}"
    return DEFAULT_CSP.replace("img-src 'self' data:", f"img-src 'self' data: {host}")


# -- pages ---------------------------------------------------------------------------------------
@page(router, "/dashboard")
def dashboard_page(request: Request, lang: LangDep, dash: DashboardDep) -> Response:
    v = view(lang)
    service = dash.service
    tiles = service.tiles()
    alerts = service.alerts()
    outlook = service.likely_full_within()
    layers = []
    for kind in KINDS:
        items = service.layer(kind)
        rank = {a.entity_id: n for n, a in enumerate(alerts) if a.kind == kind.key}
        items.sort(key=lambda i: (rank.get(i.id, len(rank)), v.name(i)))
        shown = [v.feature(i, outlook) for i in items[:MAX_TABLE_ROWS]]
        layers.append((kind, len(items), shown))
    trends = [(kind, {w: service.series(kind.key, w) for w in WINDOWS}) for kind in KINDS]
    client = {
        "lang": lang.bcp47,
        "prefix": lang.prefix,
        "labels": v.labels(),
        "tileUrl": dash.config.tile_url,
        "tileAttribution": dash.config.tile_attribution,
    }
    return pages.render(
        request,
        "dashboard.html",
        {
            "title": pages.gettext(lang, "Real-time city dashboard"),
            "nav_key": "dashboard",
            "v": v,
            "tiles": [(BY_KEY[t.kind], t) for t in tiles],
            "alerts": [v.alert(a) for a in alerts[:MAX_TABLE_ROWS]],
            "alert_total": len(alerts),
            "rules": [(r, BY_KEY[r.kind], dash.config.thresholds[r.key]) for r in RULES],
            "layers": layers,
            "trends": [(k, {w: v.series(s) for w, s in by.items()}) for k, by in trends],
            "client": client,
            "simulated": sum(t.simulated for t in tiles),
            "api": API,
            "asset": asset,
            "breadcrumbs": [
                Crumb(pages.gettext(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(pages.gettext(lang, "City dashboard")),
            ],
        },
        csp=csp(dash.config),
    )


@page(router, "/dashboard/entities/{entity_id:path}")
def entity_page(request: Request, entity_id: str, lang: LangDep, dash: DashboardDep) -> Response:
    try:
        detail = dash.service.entity(entity_id)
    except ResourceNotFound:
        raise HTTPException(404, "no such entity") from None
    v = view(lang)
    name = v.name(detail.item) if detail.item else short_id(entity_id)
    for attr, value, _unit, _at in detail.attributes:
        if attr == "name" and detail.item is None:
            from smartcity.live.dashboard.views import pick_name

            name = pick_name(value, lang, name)
    return pages.render(
        request,
        "entity.html",
        {
            "title": name,
            "nav_key": "dashboard",
            "v": v,
            "d": detail,
            "name": name,
            "kind": detail.kind,
            "asset": asset,
            "csv_url": f"{API}/entity.csv?" + urlencode({"id": entity_id, "lang": lang.prefix}),
            "history": {
                "points": detail.history,
                "lang": lang.bcp47,
                "label": v.kind_title(detail.kind) if detail.kind else "",
            },
            "breadcrumbs": [
                Crumb(pages.gettext(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(pages.gettext(lang, "City dashboard"), f"/{lang.prefix}/dashboard"),
                Crumb(name),
            ],
        },
    )


# -- JSON ----------------------------------------------------------------------------------------


@router.get(f"{API}/tiles", tags=["Dashboard"], summary="KPI tiles")
def tiles(dash: DashboardDep, lang: ApiLangDep) -> Response:
    v = view(lang)
    return json({"tiles": [v.tile(t) for t in dash.service.tiles()]})


@router.get(f"{API}/alerts", tags=["Dashboard"], summary="Thresholds crossed now")
def alerts(dash: DashboardDep, lang: ApiLangDep) -> Response:
    v = view(lang)
    found = dash.service.alerts()
    return json(
        {
            "active": len(found),
            "thresholds": dict(dash.config.thresholds),
            "alerts": [v.alert(a) for a in found],
        }
    )


@router.get(f"{API}/layers", tags=["Dashboard"], summary="Map layers as GeoJSON")
def layers(
    dash: DashboardDep, lang: ApiLangDep, kind: Annotated[str | None, Query()] = None
) -> Response:
    if kind is not None and kind not in BY_KEY:
        raise BadRequestData(f"kind must be one of {', '.join(BY_KEY)}, got {kind!r}")
    v = view(lang)
    kinds = [BY_KEY[kind]] if kind else list(KINDS)
    outlook = dash.service.likely_full_within() if BY_KEY["carparks"] in kinds else None
    features = [v.feature(i, outlook) for k in kinds for i in dash.service.layer(k)]
    return Response(
        orjson.dumps({"type": "FeatureCollection", "features": features}),
        media_type="application/geo+json",
    )


@router.get(f"{API}/series", tags=["Dashboard"], summary="Hourly city-wide series")
def series(
    dash: DashboardDep,
    lang: ApiLangDep,
    kind: Annotated[str, Query()],
    window: Annotated[str, Query()] = "24h",
) -> Response:
    if kind not in BY_KEY:
        raise BadRequestData(f"kind must be one of {', '.join(BY_KEY)}, got {kind!r}")
    if window not in WINDOWS:
        raise BadRequestData(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    return json(view(lang).series(dash.service.series(kind, window)))


@router.get(f"{API}/state", tags=["Dashboard"], summary="Tiles and alerts (resync)")
def state(dash: DashboardDep, lang: ApiLangDep) -> Response:
    v = view(lang)
    return json(
        {
            "seq": dash.events._seq,
            "tiles": [v.tile(t) for t in dash.service.tiles()],
            "alerts": [v.alert(a) for a in dash.service.alerts()[:MAX_TABLE_ROWS]],
            # Car park id -> minutes until likely full on arrival (0 full now, null not
            # within the hour); {} without car park forecasts.
            "likelyFullWithin": dash.service.likely_full_within() or {},
        }
    )


@router.get(f"{API}/entities/{{entity_id:path}}", tags=["Dashboard"], summary="One entity")
def entity(entity_id: str, dash: DashboardDep, lang: ApiLangDep) -> Response:
    detail = dash.service.entity(entity_id)  # ResourceNotFound → NGSI-LD 404
    v = view(lang)
    return json(
        {
            "id": detail.id,
            "types": detail.types,
            "kind": detail.kind.key if detail.kind else None,
            "name": v.name(detail.item) if detail.item else short_id(detail.id),
            "feature": v.feature(detail.item) if detail.item else None,
            "attributes": [
                {"name": n, "value": val, "unitCode": u, "observedAt": at}
                for n, val, u, at in detail.attributes
            ],
            "history": [[t, x] for t, x in detail.history],
            "page": v.entity_page(detail.id),
            "urls": detail.urls,
        }
    )


@router.get(f"{API}/events", tags=["Dashboard"], summary="Live updates (Server-Sent Events)")
async def events(
    request: Request,
    heartbeat: Annotated[
        float | None, Query(ge=1, le=60, description="seconds between heartbeats (15)")
    ] = None,
) -> Response:
    """``update`` events (changed entities, tiles, alert changes), ``hello``, ``heartbeat``
    and ``resync``; see the dashboard's README for the format."""
    dash = get_dashboard(request)
    last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    try:
        stream = dash.events.stream(last, heartbeat)
        first = await stream.__anext__()
    except OverflowError:
        raise HTTPException(503, "too many live clients; try again later") from None

    async def body() -> Any:
        yield first
        async for chunk in stream:
            yield chunk

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(f"{API}/geo/{{name}}.geojson", tags=["Dashboard"], summary="Base map GeoJSON")
def geo(name: str) -> Response:
    path = GEO.get(name)
    if path is None:
        raise HTTPException(404, "no such map layer")
    return FileResponse(
        path, media_type="application/geo+json", headers={"Cache-Control": "max-age=86400"}
    )


# -- CSV: every table of the pages, all its rows (downloads.py) ----------------------------------
def csv_response(text: str, name: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def known_kind(kind: str) -> Kind:
    if kind not in BY_KEY:
        raise BadRequestData(f"kind must be one of {', '.join(BY_KEY)}, got {kind!r}")
    return BY_KEY[kind]


@router.get(f"{API}/layers.csv", tags=["Dashboard"], summary="A map layer's table as CSV")
def layer_csv(dash: DashboardDep, lang: ApiLangDep, kind: Annotated[str, Query()]) -> Response:
    found = known_kind(kind)
    items = sorted(dash.service.layer(found), key=lambda i: i.id)
    outlook = dash.service.likely_full_within() if found.key == "carparks" else None
    text = downloads.layer(view(lang), found, items, outlook)
    return csv_response(text, f"dashboard-{kind}")


@router.get(f"{API}/series.csv", tags=["Dashboard"], summary="A trend's table as CSV")
def series_csv(
    dash: DashboardDep,
    lang: ApiLangDep,
    kind: Annotated[str, Query()],
    window: Annotated[str, Query()] = "24h",
) -> Response:
    known_kind(kind)
    if window not in WINDOWS:
        raise BadRequestData(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    text = downloads.series(view(lang), dash.service.series(kind, window))
    return csv_response(text, f"dashboard-{kind}-{window}")


@router.get(f"{API}/alerts.csv", tags=["Dashboard"], summary="Active alerts as CSV")
def alerts_csv(dash: DashboardDep, lang: ApiLangDep) -> Response:
    return csv_response(downloads.alerts(view(lang), dash.service.alerts()), "dashboard-alerts")


@router.get(f"{API}/thresholds.csv", tags=["Dashboard"], summary="Alert thresholds as CSV")
def thresholds_csv(dash: DashboardDep, lang: ApiLangDep) -> Response:
    text = downloads.thresholds(view(lang), dash.config)
    return csv_response(text, "dashboard-thresholds")


@router.get(f"{API}/entity.csv", tags=["Dashboard"], summary="An entity page's table as CSV")
def entity_csv(
    dash: DashboardDep,
    lang: ApiLangDep,
    entity_id: Annotated[str, Query(alias="id")],
    table: Annotated[str, Query(description="attributes or history")] = "attributes",
) -> Response:
    if table not in ("attributes", "history"):
        raise BadRequestData(f"table must be attributes or history, got {table!r}")
    detail = dash.service.entity(entity_id)  # ResourceNotFound → NGSI-LD 404
    if table == "attributes":
        text = downloads.attributes(detail)
    else:
        text = downloads.history(view(lang), detail)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", short_id(entity_id))  # a header-safe file name
    return csv_response(text, f"{safe}-{table}")
