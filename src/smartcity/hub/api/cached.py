"""Retrieve-by-id through the cache of rendered bodies (hub/body_cache.py).

A repeated retrieval of an unchanged entity with the same options answers with the bytes it
was answered with before: the read still runs (the stored text is the key, so a write is never
followed by a stale answer), but parsing the document, checking the query's options and
rendering are skipped. What the body depends on is all in the key: tenant, entity id, the
stored text, the raw query string (attrs, options, lang, type, pick, ...), the negotiated media
type and the @context (its Link URL and the resolved context object itself, so a remote
context fetched anew renders anew). Retrievals whose answer depends on more than the entity —
distributed ones (registrations), join, GeoJSON (``Prefer``) — and failures are not kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from smartcity.hub.api.negotiation import GEOJSON
from smartcity.hub.api.preamble import LinkedCall
from smartcity.hub.body_cache import Rendered
from smartcity.hub.errors import ResourceNotFound

# The uncached retrieval, given the stored text when it was already read.
Render = Callable[[LinkedCall, str, str | None], Awaitable[Response]]


class CachedResponse(Response):
    """A kept answer, sent as it was (no header building)."""

    def __init__(self, rendered: Rendered) -> None:
        self.status_code = 200
        self.body = rendered.body
        self.background = None
        self.raw_headers = list(rendered.raw_headers)


async def retrieve(call: LinkedCall, entity_id: str, render: Render) -> Response:
    h, tenant, request = call.hub, call.tenant, call.request
    cache = h.rendered
    if cache is None or not (
        h.federation is None or h.federation.registrations.surely_none(tenant)
    ):
        return await render(call, entity_id, None)
    accept = call.accept(geo=True)
    if accept == GEOJSON:
        return await render(call, entity_id, None)
    try:
        text = await h.entities.get_text_async(tenant, entity_id)
    except ResourceNotFound:
        # The uncached path checks the request's options before it reads: a bad option on a
        # missing entity is a 400, as it is without the cache.
        return await render(call, entity_id, None)
    variant = (request.scope.get("query_string", b""), accept, call.context, id(call.ctx))
    hit = cache.get(tenant, entity_id, text, variant)
    if hit is not None and hit.pinned is call.ctx:
        return CachedResponse(hit)
    response = await render(call, entity_id, text)
    if (
        response.status_code == 200
        and type(response) is Response
        and response.background is None
        and "join" not in request.query_params  # the answer holds other entities too
    ):
        body = bytes(response.body)
        cache.put(
            tenant, entity_id, text, variant, Rendered(body, tuple(response.raw_headers), call.ctx)
        )
    return response
