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

Every one of them also refuses a query parameter the operation does not know (400
InvalidRequest, ProblemDetails of clause 5.5.2: "parameters that are incompatible with the
operation"): a misspelt ``limt=`` or ``atrs=`` would otherwise be silently ignored and answer
something other than what the client asked for. What an operation knows is what its endpoint
declares (its FastAPI parameters and those of its dependencies) and ``local``.

The functions are plain coroutines of the request, so the lean path of ``api/hot.py``, which
bypasses FastAPI's routing, calls them directly and runs the very same checks (it names the
route whose parameters apply, ``known_params``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from weakref import ref

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute

from smartcity.hub.api.deps import hub, require
from smartcity.hub.api.negotiation import choose_accept, request_context, tenant_of
from smartcity.hub.errors import InvalidRequest
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


# Accepted by every operation: ``local=true`` keeps a request on this broker (clause 6.3.18);
# every operation that may be distributed takes it, and the hub's writes read it too.
EVERYWHERE = frozenset({"local"})
# Per route object, by id (routes are not hashable) with a weak reference to tell a route from
# a later one that reuses a freed route's id (apps come and go, in tests).
_known: dict[int, tuple[ref[APIRoute], frozenset[str]]] = {}


def _declared(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


def known_params(endpoint: Callable[..., Any], path: str) -> frozenset[str]:
    """The query parameters an endpoint declares at ``path`` (for the lean path, which has no
    route), read as FastAPI reads them for the route."""
    return EVERYWHERE | _declared(get_dependant(path=path, call=endpoint))


def check_params(request: Request, known: frozenset[str] | None = None) -> None:
    """400 InvalidRequest for a query parameter the operation does not know."""
    if not request.scope.get("query_string"):
        return
    if known is None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        entry = _known.get(id(route))
        if entry is None or entry[0]() is not route:
            entry = _known[id(route)] = (ref(route), EVERYWHERE | _declared(route.dependant))
        known = entry[1]
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise InvalidRequest(
            f"query parameter(s) {', '.join(unknown)} not known to this operation; it takes "
            + (", ".join(sorted(known)) or "none")
        )


def _authorised(request: Request, scope: str) -> Call:
    check_params(request)
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


def _entity_type(type: str | None = None) -> str | None:
    return type


# ``type`` on the writes to one entity (clause 6.5.3.2 and following): the entity's type, which
# a client may give for distributed operations. The hub knows its entities' types; accepted.
EntityTypeHint = Annotated[str | None, Depends(_entity_type)]

Read = Annotated[LinkedCall, Depends(reader)]
Manage = Annotated[LinkedCall, Depends(manager)]
Write = Annotated[Call, Depends(writer)]
ReadAuth = Annotated[Call, Depends(body_reader)]
