"""The one ASGI app: the hub's NGSI-LD API plus every feature's router, composed here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from smartcity import __version__
from smartcity.analytics import api as analytics_api
from smartcity.analytics import jobs as analytics_jobs
from smartcity.analytics.forecast import endpoints as forecast_api
from smartcity.analytics.parking import endpoints as parking_api
from smartcity.analytics.site import routes as analytics_site
from smartcity.analytics.traffic import endpoints as traffic_api
from smartcity.config import Settings
from smartcity.hub.api import (
    attrs,
    batch,
    csources,
    discovery,
    entities,
    entity_maps,
    hot,
    jsonld_contexts,
    notifications,
    read_routing,
    subscriptions,
    temporal,
)
from smartcity.hub.api import edge as edge_guard
from smartcity.hub.api.negotiation import error_response
from smartcity.hub.errors import ERROR_BASE, DatabaseUnavailable, NgsiError
from smartcity.hub.runtime import build_hub
from smartcity.live import connectors
from smartcity.live.dashboard import endpoints as dashboard
from smartcity.live.devices import api as devices_api
from smartcity.live.ingest import http as ingest_http
from smartcity.live.ingest.runtime import build_ingest
from smartcity.opendata.archive import endpoints as archive_api
from smartcity.opendata.archive.schedule import start_archiving
from smartcity.opendata.catalogue.public import dataset_exists
from smartcity.opendata.citydata import endpoints as citydata_api
from smartcity.opendata.citydata.provenance import FeedProvenance
from smartcity.opendata.ckan import endpoints as opendata_api
from smartcity.opendata.ckan.requests import FORM_OVERHEAD
from smartcity.opendata.datastore import routes as datastore_routes
from smartcity.opendata.dcat import endpoints as dcat_api
from smartcity.opendata.runtime import build_opendata
from smartcity.opendata.site import publishing as opendata_publishing
from smartcity.opendata.site import routes as opendata_site
from smartcity.portal.feedback import endpoints as feedback_api
from smartcity.portal.feedback import moderation_api as feedback_moderation_api
from smartcity.portal.feedback import schemas as feedback_schemas
from smartcity.portal.feedback.service import FeedbackService
from smartcity.portal.feedback.targets import catalogue_target_check
from smartcity.portal.measures import endpoints as portal_api
from smartcity.portal.site import MAX_FORM_BYTES
from smartcity.portal.site import routes as site_routes
from smartcity.portal.site.accounts import PortalAccounts
from smartcity.portal.site.sessions import include_site
from smartcity.portal.users.sessions import SessionStore
from smartcity.storage import migrate
from smartcity.storage.engine import Database, database_unavailable
from smartcity.web import apidocs
from smartcity.web import routing as web_routing
from smartcity.web.refusals import site_answer

log = logging.getLogger("smartcity")
NGSI_PREFIX = "/ngsi-ld/v1"


def connector_provenance() -> list[FeedProvenance]:
    """The Hong Kong connectors' DATA.GOV.HK feeds, as the open data portal records them on
    the datasets they fill (live and opendata do not import each other; the app joins them)."""
    return [
        FeedProvenance(
            connector=c.name,
            description=c.description,
            publisher=c.publisher,
            organisation=c.organisation,
            entity_types=c.entity_types,
            sources=c.sources,
        )
        for c in connectors.REGISTRY.values()
    ]


def lag_tolerant_reads() -> list[read_routing.LagRule]:
    """The requests whose reads a replica may serve, a little behind the primary (docs/deploy.md,
    "Read replicas"): NGSI-LD entity queries and retrieval, discovery and temporal queries, the
    open data portal's read-only CKAN actions (DataStore searches included) and DataStore
    dumps, and the analytics API. Everything else (writes, sign-in, subscriptions,
    notifications, the site's pages) reads from the primary."""
    rule = read_routing.LagRule.of
    return [
        rule("GET HEAD", NGSI_PREFIX + r"/(entities|temporal/entities|types|attributes)(/|$)"),
        rule("POST", NGSI_PREFIX + r"/(temporal/)?entityOperations/query/?$"),
        rule("GET HEAD POST", opendata_api.CKAN_ACTION_PATHS, opendata_api.is_read_action),
        rule("GET HEAD", r"/datastore/dump/"),
        rule("GET HEAD", r"/api/v1/analytics/"),
    ]


def problem_response(status: int, type_name: str, title: str, detail: str) -> Response:
    body = {"type": ERROR_BASE + type_name, "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class CityApp(FastAPI):
    """The platform's app. Before FastAPI's middleware stack, each request passes the edge
    (hub/api/edge.py: path and query string checked, the body read within the route's size
    limit, or refused), has the trailing slash of an NGSI-LD path dropped (the specification's
    spelling) and is offered to the hub's lean path (hub/api/hot.py): retrieve-by-id and
    partial attribute update skip the stack, which costs as much as their work.
    ``lean_path = False`` turns it off (tests compare both)."""

    lean_path = True
    edge: edge_guard.Edge | None = None
    # With read replicas: which requests' reads may lag, and read-your-writes
    # (hub/api/read_routing.py). None without replicas: nothing changes.
    replica_reads: read_routing.ReadRouting | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.replica_reads is not None:
            await self.replica_reads(scope, receive, send, self._answer)
            return
        await self._answer(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.edge is not None:
                admitted = await self.edge.admit(scope, receive, send)
                if admitted is None:
                    return
                receive = admitted
            scope = hot.without_trailing_slash(scope)
            if self.lean_path:
                scope["app"] = self
                if await hot.answer(scope, receive, send):
                    return
        await super().__call__(scope, receive, send)


def feedback_targets(db: Database) -> Callable[[str, str], bool]:
    """What feedback may be about: the portal's measures and areas, and public open datasets
    (kind ``dataset``, by name or id). Only the app knows both features."""
    portal = catalogue_target_check(db)

    def exists(kind: str, ident: str) -> bool:
        if kind == "dataset":
            return dataset_exists(db, ident)
        return portal(kind, ident)

    return exists


def create_app(settings: Settings, *, check_schema: bool = True) -> CityApp:
    db = Database(settings.database_url)
    if check_schema:
        migrate.ensure_current(db)
    if settings.replicas.urls:  # serve --read-database (storage/replicas.py)
        db.use_replicas(
            list(settings.replicas.urls),
            max_lag=settings.replicas.max_lag,
            probe_interval=settings.replicas.probe_interval,
        )
    hub = build_hub(settings, db)
    # Device ingestion (live data): registry, batching writer, MQTT if SMARTCITY_MQTT_URL is set.
    ingest = build_ingest(hub)
    alert_period = analytics_jobs.period_from_env()  # a bad value stops the start, said why

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth_required:
            log.warning(
                "AUTHENTICATION IS OFF (--no-auth): anyone who can reach this server can write. "
                "Use it for local testing only."
            )
        # Delivers whatever the outbox still holds from before the restart, then keeps going.
        hub.start()
        ingest.start()
        archiving = start_archiving(app.state.opendata, hub.scheduler)
        # Crowds, parking and water alerts as Alert entities, on a schedule when configured.
        alerting = (
            analytics_jobs.start(hub, app.state.parking, alert_period) if alert_period else None
        )
        try:
            yield
        finally:
            if alerting is not None:
                alerting()
            if archiving is not None:
                archiving()
            ingest.stop()  # commits (and acknowledges) what is queued
            live_view.close()
            hub.close()

    app = CityApp(
        title="smartcity",
        version=__version__,
        description="City data hub (NGSI-LD, ETSI GS CIM 009 v1.8) and city platform API.",
        lifespan=lifespan,
        # Served by web/apidocs.py from vendored assets, not FastAPI's CDN defaults.
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = hub
    app.state.ingest = ingest
    # The open data portal (opendata/): its catalogue, search and CKAN Action API.
    app.state.opendata = build_opendata(
        db,
        settings.opendata,
        hub,
        connector_provenance(),
        forbid_private_targets=settings.forbid_private_targets,
    )
    # Each route's largest body, enforced at the edge before any byte is kept (hub/api/edge.py).
    app.edge = edge_guard.Edge(
        edge_guard.BodyLimits(
            [
                (NGSI_PREFIX + "/", settings.limits.max_body_bytes),
                (r"/api/v1/devices/[^/]+/readings$", ingest_http.MAX_BODY),
                (r"/api/v1/(comments|privacy|moderation)(/|$)", feedback_schemas.MAX_BODY_BYTES),
                (
                    opendata_api.CKAN_PATHS,
                    opendata_api.edge_rule(settings.opendata.max_upload_bytes),
                ),
                # The open data editor pages' resource forms carry a file: as large as an
                # upload through the API, counted again as it streams in. A browser sent
                # past a page's limit gets a page that says so (web/refusals.py).
                (
                    opendata_publishing.UPLOAD_PATHS,
                    edge_guard.BodyRule(
                        settings.opendata.max_upload_bytes + FORM_OVERHEAD,
                        streamed=True,
                        answer=site_answer(settings.opendata.max_upload_bytes),
                    ),
                ),
                (
                    opendata_publishing.FORM_PATHS,
                    edge_guard.BodyRule(settings.limits.max_body_bytes, answer=site_answer()),
                ),
            ],
            # Everything else: the site's forms, device registration, the healthz probe.
            default=edge_guard.BodyRule(MAX_FORM_BYTES, answer=site_answer()),
        ),
    )
    if db.has_replicas:
        app.replica_reads = read_routing.ReadRouting(db, lag_tolerant_reads())
    # Public feedback (portal/feedback): the JSON API below and the site's forms share it.
    # Its targets: the portal's measures and areas, and the open data catalogue's public
    # datasets ("report a problem with this data" on a dataset page).
    app.state.feedback = FeedbackService(db, settings.feedback, target_exists=feedback_targets(db))
    # The site's signed-in sessions, kept in the database so they can be ended at once.
    app.state.site_sessions = SessionStore(db, settings.sessions)
    # Who is signed in, for features that do not own sign-in (the open data editor pages).
    app.state.site_accounts = PortalAccounts()
    # Links the portal's account bar shows for them: "Publish data" for open data editors.
    app.state.account_links = [opendata_site.account_link]

    @app.exception_handler(NgsiError)
    async def ngsi_error(_request: Request, exc: NgsiError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return problem_response(400, "BadRequestData", "Bad request data", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if web_routing.is_site_path(_request.url.path):  # the public site: an HTML page
            return web_routing.error_page(_request, exc.status_code)
        if opendata_api.is_ckan_path(_request.url.path):  # CKAN clients read CKAN's envelope
            return opendata_api.unrouted(_request, exc.status_code)
        if exc.status_code == 404:
            return problem_response(404, "ResourceNotFound", "Not found", "no such endpoint")
        if exc.status_code == 405:
            return problem_response(
                405, "OperationNotSupported", "Method not allowed", str(exc.detail)
            )
        return problem_response(exc.status_code, "InvalidRequest", "Error", str(exc.detail))

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> Response:
        if database_unavailable(exc):  # PostgreSQL restarting or failing over: retry later
            log.warning("database unavailable: %s", exc)
            return error_response(DatabaseUnavailable())
        return await unexpected(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        if database_unavailable(exc):  # PostgreSQL restarting or failing over: retry later
            log.warning("database unavailable: %s", exc)
            return error_response(DatabaseUnavailable())
        log.exception("unhandled error")
        if web_routing.is_site_path(_request.url.path):
            return web_routing.error_page(_request, 500)
        return problem_response(
            500,
            "InternalError",
            "Internal error",
            "the server failed unexpectedly; the error has been logged",
        )

    @app.get("/healthz", tags=["Operations"], summary="Readiness")
    def healthz() -> dict[str, Any]:
        with db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        health: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "database": "postgresql" if db.is_postgres else "sqlite",
            # Which process answered (host:pid:random, as in `smartcity db jobs`): behind a
            # load balancer, the node a request reached.
            "node": hub.scheduler.node,
            # The periodic jobs this node runs now, of the cluster's (docs/deploy.md).
            "jobs": hub.scheduler.jobs(),
        }
        replicas = db.replica_status()
        if replicas is not None:  # each read replica's state and lag, as the probe saw it
            health["replicas"] = replicas
        return health

    # Attribute routes first: '/entities/{id}' would otherwise swallow '/entities/{id}/attrs'.
    # Failed notifications before the subscription routes: '/subscriptions/{id:path}' would
    # otherwise swallow '/subscriptions/{id}/failedNotifications'.
    modules = (
        notifications,
        attrs,
        entities,
        batch,
        discovery,
        subscriptions,
        csources,
        jsonld_contexts,
        temporal,
        entity_maps,
    )
    for module in modules:
        app.include_router(module.router, prefix=NGSI_PREFIX)
    # Devices and their readings (live/devices, live/ingest).
    app.include_router(notifications.metrics_router)  # /api/v1/notifications/metrics
    app.include_router(ingest_http.router)  # before /devices/{id}: its /readings path
    app.include_router(devices_api.router)
    # The portal's JSON/CSV API: measures, areas, KPIs (portal/measures/endpoints.py).
    app.include_router(portal_api.router, prefix="/api/v1")
    app.include_router(feedback_api.router)  # /api/v1/comments, /api/v1/privacy
    app.include_router(feedback_moderation_api.router)  # /api/v1/moderation
    app.include_router(analytics_api.router)  # /api/v1/analytics/crowds, .../water
    # The open data portal's CKAN Action API and uploaded files (opendata/ckan/endpoints.py).
    app.include_router(opendata_api.router)
    # DATA.GOV.HK's historical archive API (opendata/archive/endpoints.py).
    app.include_router(archive_api.router)
    app.include_router(datastore_routes.router)  # /datastore/dump/{resource_id}
    # DCAT-AP 3: /catalog.{ttl,rdf,jsonld} and /dataset/{name}[.ext] (opendata/dcat/).
    app.include_router(dcat_api.router)
    app.include_router(citydata_api.router)  # live city datasets' files
    # /{en,tc,sc}/dataset, organisation pages, preview script; then the editor pages
    # (/{en,tc,sc}/publish...). Both behind the site's sessions: who is signed in decides
    # what the editor pages allow and whether a dataset page links to them.
    opendata_site.install(app, include_site)
    include_site(app, opendata_publishing.router)
    app.include_router(traffic_api.router)  # /api/v1/analytics/traffic (analytics/traffic)
    # The real-time city dashboard: pages, JSON, live events (live/dashboard/endpoints.py).
    live_view = dashboard.install(app, hub)
    forecast_api.install(app, hub)  # /api/v1/analytics/forecasts (analytics/forecast/)
    parking = parking_api.install(app, hub)  # /api/v1/analytics/parking (analytics/parking/)
    # The dashboard's car-park table shows "likely full on arrival" from the car park
    # forecasts, when both read the same tenant and its figures may be shown.
    if not parking.private and parking.service.tenant == live_view.config.tenant:
        live_view.service.car_park_outlook = parking.service.likely_full_within
    analytics_site.install(app)  # /{en,tc,sc}/analytics/traffic|forecasts (analytics/site/)
    # The public site: /static, the language redirects, then the portal's pages behind its
    # sessions (sign-in, CSRF, flash messages; portal/site/sessions.py).
    web_routing.install(app)
    apidocs.install(app)  # /docs and /redoc, offline
    include_site(app, site_routes.router)
    return app
