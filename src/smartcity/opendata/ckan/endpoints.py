"""CKAN's Action API over HTTP: ``/api/3/action/{action}``, ``/api/action/{action}`` (what
ckanapi calls) and DATA.GOV.HK's ``/{en,tc,sc}-data/api/3/action/{action}``, each of which
answers in its language; plus the download path of uploaded files.

Keys are read as CKAN clients send them: ``Authorization: <key>`` (``Bearer <key>`` too) or
``X-CKAN-API-Key: <key>``. Every answer, success or failure, is CKAN's envelope; nothing on
these paths redirects (a redirected POST loses its body).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from smartcity.hub.api.edge import BodyRule, Refusal
from smartcity.hub.errors import NgsiError
from smartcity.opendata.catalogue.access import ANONYMOUS, NO_AUTH, Principal, principal_for
from smartcity.opendata.ckan import actions, envelope
from smartcity.opendata.ckan.requests import FORM_OVERHEAD, body_params, query_params
from smartcity.opendata.errors import (
    BadRequest,
    NotAuthorized,
    NotFound,
    OpenDataError,
    ValidationFailed,
)
from smartcity.opendata.languages import BY_PREFIX, DEFAULT, Lang
from smartcity.opendata.runtime import OpenData

log = logging.getLogger("smartcity.opendata")
router = APIRouter(tags=["Open data (CKAN Action API)"])
METHODS = ["GET", "POST"]


def opendata(request: Request) -> OpenData:
    found: OpenData = request.app.state.opendata
    return found


def authenticate(request: Request) -> Principal:
    """The caller, from its API key; anonymous without one; everyone is a sysadmin under
    ``serve --no-auth``. A key that is unknown or revoked is refused, never ignored."""
    hub = request.app.state.hub
    if not hub.settings.auth_required:
        return NO_AUTH
    token = request.headers.get("authorization") or request.headers.get("x-ckan-api-key") or ""
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        return ANONYMOUS
    key = hub.keys.verify(token)
    if key is None:
        raise NotAuthorized("the API key is unknown or revoked")
    if not key.allows("", "read"):
        raise NotAuthorized(f"the API key {key.name!r} is not for this portal's tenant")
    with opendata(request).catalogue.db.read() as conn:
        return principal_for(
            conn,
            key.name,
            can_write=key.allows("", "write"),
            actor=f"{key.name} (key {key.key_id})",
        )


async def run_action(request: Request, name: str, lang: Lang, prefix: str) -> Response:
    base_url = str(request.base_url).rstrip("/")
    name = name.strip("/")
    help_url = f"{base_url}{prefix}/api/3/action/help_show?name={quote(name, safe='')}"
    try:
        found = actions.find(name)
        if found is None:
            raise BadRequest(f"Action name not known: {name}")
        od = opendata(request)
        upload = None
        if request.method == "GET":
            if not found.read_only:
                raise BadRequest(
                    f"JSON Error: {name} changes data: send it as POST with a JSON body"
                )
            data: dict[str, Any] = query_params(request)
        else:
            data, upload = await body_params(
                request, request.app.state.hub.settings.limits, od.settings.max_upload_bytes
            )
        data.pop("callback", None)  # JSONP is not offered
        handler = found.handler

        def call() -> Any:
            # The key's check and the action in one trip to the thread pool, not two: each
            # trip is a hand-over between threads, which a busy machine makes wait.
            principal = authenticate(request)
            return handler(actions.Call(od, principal, lang, base_url, upload), data)

        result = await run_in_threadpool(call)
        return envelope.ok(help_url, result)
    except OpenDataError as exc:
        return envelope.failed(help_url, exc)
    except Exception:
        log.exception("open data action %s failed", name)
        return envelope.failed(
            help_url, OpenDataError("Internal Server Error: the error has been logged")
        )


def _route(lang: Lang, prefix: str) -> Any:
    async def endpoint(request: Request, action: str) -> Response:
        return await run_action(request, action, lang, prefix)

    endpoint.__name__ = f"ckan_action_{prefix.strip('/').replace('-', '_') or 'api'}"
    return endpoint


def _add(path: str, lang: Lang, prefix: str, summary: str) -> None:
    # One route per method: FastAPI gives a route one operation id, which two methods would share.
    for method in METHODS:
        router.add_api_route(path, _route(lang, prefix), methods=[method], summary=summary)


for _path in ("/api/3/action/{action:path}", "/api/action/{action:path}"):
    _add(_path, DEFAULT, "", "A CKAN action (English)")
for _prefix, _lang in BY_PREFIX.items():
    for _path in ("/api/3/action/{action:path}", "/api/action/{action:path}"):
        _add(
            f"/{_prefix}-data{_path}",
            _lang,
            f"/{_prefix}-data",
            f"A CKAN action, answered in {_lang} (DATA.GOV.HK's path)",
        )


CKAN_PREFIXES = (
    "/api/3/action/",
    "/api/action/",
    *(f"/{p}-data/api/{v}action/" for p in BY_PREFIX for v in ("3/", "")),
    "/dataset/",
    "/datastore/",
    "/catalog",  # DCAT-AP (opendata/dcat): its errors are in the envelope too
)


# CKAN's paths, as a pattern for the app's edge (app.py).
CKAN_PATHS = "(" + "|".join(re.escape(p) for p in CKAN_PREFIXES) + ")"

# The Action API's paths (every language), as a pattern for the app's read routing (app.py).
CKAN_ACTION_PATHS = r"(/(en|tc|sc)-data)?/api/(3/)?action/"
_ACTION_NAME = re.compile(CKAN_ACTION_PATHS + r"(?P<name>[^/]+)/?$")


def is_read_action(path: str) -> bool:
    """Whether ``path`` calls a read-only action (CKAN's side_effect_free: package_show,
    package_search, datastore_search ...), by GET or POST alike: ckanapi POSTs every call.
    Such calls may be served by a read replica (app.py, hub/api/read_routing.py)."""
    match = _ACTION_NAME.match(path)
    if match is None:
        return False
    found = actions.find(match.group("name"))
    return found is not None and found.read_only


def is_ckan_path(path: str) -> bool:
    return path.startswith(CKAN_PREFIXES)


def unrouted(request: Request, status: int) -> Response:
    """The envelope for a CKAN path no route took (an action name no route pattern matches,
    e.g. one holding a newline): CKAN clients read errors only in the envelope."""
    exc: OpenDataError = (
        BadRequest("Action name not known: send /api/3/action/ACTION")
        if "/action/" in request.url.path
        else NotFound("no such file")
    )
    if status == 405:
        exc = BadRequest("send GET or POST")
    return envelope.failed("", exc)


@router.get("/api/3", summary="The Action API's version", include_in_schema=False)
def api_version() -> Response:
    return Response(b'{"version": 3}', media_type=envelope.MEDIA_TYPE)


@router.get(
    "/dataset/{dataset_id}/resource/{resource_id}/download/{filename}",
    summary="An uploaded resource's file",
)
async def download(request: Request, dataset_id: str, resource_id: str, filename: str) -> Response:
    try:
        principal = await run_in_threadpool(authenticate, request)
        path, mimetype = await run_in_threadpool(
            opendata(request).catalogue.upload_path, principal, dataset_id, resource_id
        )
    except OpenDataError as exc:
        return envelope.failed("", exc)
    return FileResponse(
        path,
        media_type=mimetype,
        filename=path.name,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"},
    )


def edge_rule(max_upload_bytes: int) -> BodyRule:
    """What the app's edge (hub/api/edge.py) admits on CKAN's paths: bodies up to the largest
    upload, streamed to the action (which counts them again as they come, ckan/requests.py),
    and refusals in CKAN's envelope, where ckanapi looks for them."""

    def answer(exc: NgsiError, scope: Scope, limit: int) -> Refusal:
        error: OpenDataError
        if exc.status == 413:
            ctype = dict(scope["headers"]).get(b"content-type", b"")
            field = "upload" if ctype.startswith(b"multipart/") else "body"
            error = ValidationFailed.one(field, exc.detail)
        else:
            error = BadRequest(exc.detail)
        body = {"help": None, "success": False, "error": envelope.error_body(error)}
        return Refusal(error.status, orjson.dumps(body))

    return BodyRule(max_upload_bytes + FORM_OVERHEAD, streamed=True, answer=answer)
