"""The one ASGI app: the hub's NGSI-LD API plus every feature's router, composed here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartcity import __version__
from smartcity.config import Settings
from smartcity.hub.api import (
    attrs,
    batch,
    discovery,
    entities,
    jsonld_contexts,
    subscriptions,
    temporal,
)
from smartcity.hub.api.deps import Hub
from smartcity.hub.api.hot import HotRoutes
from smartcity.hub.api.negotiation import error_response
from smartcity.hub.contexts import ContextStore
from smartcity.hub.errors import ERROR_BASE, NgsiError
from smartcity.hub.service import EntityService
from smartcity.hub.subscriptions.matcher import Matcher
from smartcity.hub.subscriptions.notifier import Notifier
from smartcity.hub.subscriptions.senders import Senders
from smartcity.hub.subscriptions.service import SubscriptionService
from smartcity.hub.temporal.service import TemporalService
from smartcity.live.dashboard import endpoints as dashboard
from smartcity.live.devices import api as devices_api
from smartcity.live.ingest import http as ingest_http
from smartcity.live.ingest.runtime import build_ingest
from smartcity.portal.feedback import endpoints as feedback_api
from smartcity.portal.feedback import moderation_api as feedback_moderation_api
from smartcity.portal.feedback.service import FeedbackService
from smartcity.portal.feedback.targets import catalogue_target_check
from smartcity.portal.measures import endpoints as portal_api
from smartcity.portal.site import routes as site_routes
from smartcity.security.keys import KeyStore
from smartcity.storage import migrate
from smartcity.storage.engine import Database
from smartcity.web import routing as web_routing

log = logging.getLogger("smartcity")
NGSI_PREFIX = "/ngsi-ld/v1"


def problem_response(status: int, type_name: str, title: str, detail: str) -> Response:
    body = {"type": ERROR_BASE + type_name, "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def build_hub(settings: Settings, db: Database | None = None) -> Hub:
    db = db or Database(settings.database_url)
    contexts = ContextStore(
        db,
        timeout=settings.limits.context_fetch_timeout,
        max_bytes=settings.limits.max_context_bytes,
        forbid_private=settings.forbid_private_targets,
    )
    entities_service = EntityService(db)
    # Subscriptions: the matcher queues notifications inside each write transaction; the
    # notifier (started in the app's lifespan) delivers them and is woken on commit.
    subscriptions_service = SubscriptionService(db)
    matcher = Matcher(subscriptions_service)
    entities_service.change_hooks.append(matcher.on_change)
    entities_service.commit_listeners.append(matcher.after_commit)
    notifier = Notifier(
        db,
        subscriptions_service,
        entities_service,
        contexts,
        senders=Senders(forbid_private=settings.forbid_private_targets),
    )
    matcher.on_queued.append(notifier.wake)
    subscriptions_service.change_listeners.append(lambda _tenant, _sub_id: notifier.wake())
    return Hub(
        settings=settings,
        entities=entities_service,
        contexts=contexts,
        keys=KeyStore(db),
        extras={"temporal": TemporalService(db, entities_service), "notifier": notifier},
        subscriptions=subscriptions_service,
    )


def create_app(settings: Settings, *, check_schema: bool = True) -> FastAPI:
    db = Database(settings.database_url)
    if check_schema:
        migrate.ensure_current(db)
    hub = build_hub(settings, db)
    # Device ingestion (live data): registry, batching writer, MQTT if SMARTCITY_MQTT_URL is set.
    ingest = build_ingest(db, hub.entities, hub.contexts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth_required:
            log.warning(
                "AUTHENTICATION IS OFF (--no-auth): anyone who can reach this server can write. "
                "Use it for local testing only."
            )
        notifier = hub.extras["notifier"]
        # Delivers whatever the outbox still holds from before the restart, then keeps going.
        notifier.start()
        ingest.start()
        try:
            yield
        finally:
            ingest.stop()  # commits (and acknowledges) what is queued
            notifier.stop()
            db.dispose()

    app = FastAPI(
        title="smartcity",
        version=__version__,
        description="City data hub (NGSI-LD, ETSI GS CIM 009 v1.8) and city platform API.",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.ingest = ingest
    # Public feedback (portal/feedback): the JSON API below and the site's forms share it.
    app.state.feedback = FeedbackService(
        db, settings.feedback, target_exists=catalogue_target_check(db)
    )

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
        if exc.status_code == 404:
            return problem_response(404, "ResourceNotFound", "Not found", "no such endpoint")
        if exc.status_code == 405:
            return problem_response(
                405, "OperationNotSupported", "Method not allowed", str(exc.detail)
            )
        return problem_response(exc.status_code, "InvalidRequest", "Error", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
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
        return {
            "status": "ok",
            "version": __version__,
            "database": "postgresql" if db.is_postgres else "sqlite",
        }

    # The lean path for retrieve-by-id and partial attribute update (see hub/api/hot.py).
    app.add_middleware(HotRoutes)
    # Attribute routes first: '/entities/{id}' would otherwise swallow '/entities/{id}/attrs'.
    for module in (attrs, entities, batch, discovery, subscriptions, jsonld_contexts, temporal):
        app.include_router(module.router, prefix=NGSI_PREFIX)
    # Devices and their readings (live/devices, live/ingest).
    app.include_router(ingest_http.router)  # before /devices/{id}: its /readings path
    app.include_router(devices_api.router)
    # The portal's JSON/CSV API: measures, areas, KPIs (portal/measures/endpoints.py).
    app.include_router(portal_api.router, prefix="/api/v1")
    app.include_router(feedback_api.router)  # /api/v1/comments, /api/v1/privacy
    app.include_router(feedback_moderation_api.router)  # /api/v1/moderation
    # The real-time city dashboard: pages, JSON, live events (live/dashboard/endpoints.py).
    dashboard.install(app)
    # The public site: /static, the language redirects, then the portal's pages.
    web_routing.install(app)
    app.include_router(site_routes.router)
    site_routes.auth.install(app)  # sessions (sign-in, CSRF, flash messages) on /en, /tc, /sc only
    return app
