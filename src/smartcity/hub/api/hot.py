"""A lean path for the hub's hottest routes: retrieve an entity, patch one attribute, query.

On these routes FastAPI's routing and parameter machinery cost about as much as the work
itself (py-spy on `GET /entities/{id}`: ~45 % of the request in routing, dependency solving
and middleware layers; on `GET /entities?type=...&q=...`, FastAPI's checks of the query's 31
declared parameters took ~40 % of the event loop's time). The app (``smartcity.app.CityApp``)
hands every request to ``answer`` first, before its middleware stack; ``answer`` serves these
with the same functions the FastAPI endpoints call (`entities.retrieve`,
`attrs.patch_attribute`, `entities.query_entities`) and declines the rest.
The FastAPI routes stay registered: they document the API in OpenAPI and
answer whatever this path does not recognise, with the same result.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smartcity.hub.api.attrs import patch_attr, patch_attribute
from smartcity.hub.api.entities import query_entities, retrieve, retrieve_entity
from smartcity.hub.api.negotiation import error_response
from smartcity.hub.api.preamble import check_params, known_params, reader, writer
from smartcity.hub.errors import DatabaseUnavailable, NgsiError
from smartcity.storage.engine import database_unavailable

log = logging.getLogger("smartcity")
QUERY = "/ngsi-ld/v1/entities"
ENTITIES = QUERY + "/"
ATTRS = "/attrs/"

Handler = Callable[[Request], Awaitable[Response]]


def route(method: str, path: str) -> Handler | None:
    """The lean handler for a request, or None when the regular router should answer.

    Mirrors the FastAPI routes' matching: entity ids may contain '/', and for
    `/entities/{id}/attrs/{attr}` the id is everything before the last '/attrs/'."""
    if path == QUERY:
        return _query if method == "GET" else None
    if not path.startswith(ENTITIES):
        return None
    rest = path[len(ENTITIES) :]
    if method == "GET":
        if not rest or "/attrs" in rest:
            return None
        return lambda request: _retrieve(request, rest)
    if method == "PATCH":
        entity_id, sep, attr_id = rest.rpartition(ATTRS)
        if not sep or not entity_id or not attr_id or "/" in attr_id:
            return None
        return lambda request: _patch(request, entity_id, attr_id)
    return None


# The query parameters of the routes answered here, as the routes declare them.
RETRIEVE_PARAMS = known_params(retrieve_entity, "/entities/{entityId}")
PATCH_PARAMS = known_params(patch_attr, "/entities/{entityId}/attrs/{attrId}")
QUERY_PARAMS = known_params(query_entities, "/entities")


def _text_parameters(endpoint: Callable[..., object]) -> tuple[str, ...]:
    """The endpoint's parameters after ``call``: each must be an optional text, which FastAPI
    reads as ``request.query_params.get(name)`` (the last value of a repeated one)."""
    names = []
    for name, param in list(inspect.signature(endpoint).parameters.items())[1:]:
        if param.annotation != "str | None" or param.default is not None:
            raise TypeError(f"the lean path reads {name} as an optional text; it is not")
        names.append(name)
    return tuple(names)


_QUERY_NAMES = _text_parameters(query_entities)


async def _retrieve(request: Request, entity_id: str) -> Response:
    # The route's own dependency (api/preamble.py), called as FastAPI would have.
    call = await reader(request)
    check_params(request, RETRIEVE_PARAMS)
    return await retrieve(call, entity_id)


async def _query(request: Request) -> Response:
    call = await reader(request)
    check_params(request, QUERY_PARAMS)
    # As FastAPI reads them: the last value of a repeated parameter. (A dict of what was given,
    # because the multidict's get raises and catches KeyError for each of the 31 absent ones.)
    given = dict(request.query_params.multi_items())
    return await query_entities(call, **{name: given.get(name) for name in _QUERY_NAMES})


async def _patch(request: Request, entity_id: str, attr_id: str) -> Response:
    call = await writer(request)
    check_params(request, PATCH_PARAMS)
    return await patch_attribute(call, entity_id, attr_id)


PREFIX = "/ngsi-ld/v1/"


def without_trailing_slash(scope: Scope) -> Scope:
    """The specification writes its resources with a trailing slash (`POST /entities/`,
    `PATCH /entities/{id}/attrs/`) and so do the ETSI suite and FIWARE clients; the routes here
    are declared without. Both spellings name the same resource, for every method, so the slash
    is dropped before routing (no redirect: clients would have to resend their bodies)."""
    path: str = scope["path"]
    if len(path) > len(PREFIX) and path.endswith("/") and path.startswith(PREFIX):
        scope = dict(scope)
        scope["path"] = path[:-1]
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and raw.endswith(b"/"):
            scope["raw_path"] = raw[:-1]
    return scope


async def answer(scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer ``scope`` if it is one of the lean path's requests (True), else leave it to the
    app (False). Called by the app itself (``smartcity.app.CityApp``) before its middleware
    stack, which costs as much as a retrieval on these routes; ``scope["app"]`` is the app."""
    handler = route(scope["method"], scope["path"])
    if handler is None:
        return False
    try:
        response = await handler(Request(scope, receive))
    except NgsiError as exc:
        response = error_response(exc)
    except Exception as exc:  # as the app's own handlers do
        if database_unavailable(exc):
            log.warning("database unavailable: %s", exc)
            response = error_response(DatabaseUnavailable())
            await response(scope, receive, send)
            return True
        log.exception("unhandled error")
        response = error_response(
            NgsiError("the server failed unexpectedly; the error has been logged")
        )
    await response(scope, receive, send)
    return True
