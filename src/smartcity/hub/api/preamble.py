"""What every NGSI-LD endpoint does before its own work, declared once as typed dependencies.

Each endpoint used to open with the same lines: read the tenant header (NGSILD-Tenant, or
Fiware-Service), check the API key for the tenant, fetch the hub from the app, and for reads
resolve the @context of the ``Link`` header. The dependencies below do exactly that, in that
order, so an endpoint declares what it is::

    async def query_entities(call: Read, type: str | None = None) -> Response:
        accept = call.accept(geo=True)
        docs = call.hub.entities.find(call.tenant, ...)

* ``Read``: a read-scoped key (checked on private tenants only) and the Link @context.
* ``Write``: a write-scoped key; the body (and its @context) is the endpoint's to decode.
* ``ReadAuth``: a read-scoped key only: a POST query's @context is in its body, and the
  /jsonldContexts reads need none.
* ``Manage``: a write-scoped key and the Link @context: reads of what only writers may see
  (subscriptions, registrations: their receivers and credentials) and deletions by query.

The functions are plain coroutines of the request, so the lean path of ``api/hot.py``, which
bypasses FastAPI's routing, calls them directly and runs the very same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from smartcity.hub.api.deps import hub, require
from smartcity.hub.api.negotiation import choose_accept, request_context, tenant_of
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.runtime import Hub


@dataclass(frozen=True)
class Call:
    """One authorised request: the hub it runs on and the tenant it is for."""

    request: Request
    hub: Hub
    tenant: str

    def accept(self, *, geo: bool = False) -> str:
        """The response media type the client accepts (406 when none can be produced)."""
        return choose_accept(self.request, geo=geo)


@dataclass(frozen=True)
class LinkedCall(Call):
    """A call that reads: with the @context of its Link header (``None``: the core one)."""

    context: Any
    ctx: ActiveContext


def _authorised(request: Request, scope: str) -> Call:
    tenant = tenant_of(request)
    require(request, tenant, scope)
    return Call(request, hub(request), tenant)


async def _linked(request: Request, scope: str) -> LinkedCall:
    call = _authorised(request, scope)
    context, ctx = await request_context(request, call.hub.contexts)
    return LinkedCall(request, call.hub, call.tenant, context, ctx)


async def reader(request: Request) -> LinkedCall:
    return await _linked(request, "read")


async def manager(request: Request) -> LinkedCall:
    return await _linked(request, "write")


async def body_reader(request: Request) -> Call:
    return _authorised(request, "read")


async def writer(request: Request) -> Call:
    # async: FastAPI would run a plain function in a worker thread, for no gain here
    return _authorised(request, "write")


Read = Annotated[LinkedCall, Depends(reader)]
Manage = Annotated[LinkedCall, Depends(manager)]
Write = Annotated[Call, Depends(writer)]
ReadAuth = Annotated[Call, Depends(body_reader)]
