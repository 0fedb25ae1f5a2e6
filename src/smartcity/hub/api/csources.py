"""Context source registration endpoints: /csourceRegistrations (clauses 5.9, 5.10, 6.8, 6.9)
and /csourceSubscriptions (clauses 5.11, 6.10, 6.11).

Like subscriptions, every endpoint here needs a write-scoped key when authentication is on:
a registration makes the hub send requests where it says, and its contextSourceInfo usually
carries the department broker's credentials, so even listing registrations is not a public read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import Hub, parse_options
from smartcity.hub.api.negotiation import (
    OBJECT_BODY,
    decode,
    location,
    ngsi_response,
)
from smartcity.hub.api.paging import add_page_links, count_header, page_of
from smartcity.hub.api.params import split_list
from smartcity.hub.api.preamble import Manage, Write
from smartcity.hub.api.query_body import max_query_arrays
from smartcity.hub.entity import check_name, check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation import Federation
from smartcity.hub.federation.csubs import CsourceSubscriptionService, parse_csub, patch_csub
from smartcity.hub.federation.matching import Wanted
from smartcity.hub.federation.model import (
    apply_fragment,
    check_source,
    parse_registration,
    render_registration,
)
from smartcity.hub.federation.regquery import parse_filter, passes
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.repository import check_regex
from smartcity.hub.subscriptions.model import check_target, render_subscription
from smartcity.hub.timeutil import now_us
from smartcity.hub.types_expr import parse_type_selection

router = APIRouter(tags=["Context Source Registration"])
PREFIX = "/ngsi-ld/v1/csourceRegistrations"


def _render(fed: Federation, tenant: str, doc: dict[str, Any], ctx: ActiveContext,
            sys_attrs: bool) -> dict[str, Any]:  # fmt: skip
    stats = fed.forwarder.health_of(tenant, doc["id"]).render()
    return render_registration(doc, ctx, stats=stats, sys_attrs=sys_attrs)


@router.post(
    "/csourceRegistrations",
    status_code=201,
    openapi_extra=OBJECT_BODY,
    summary="Register context source",
)
async def create_registration(call: Write) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    fed = h.federation
    limits = h.settings.limits
    # Three geometries at most (location, observationSpace, operationSpace), bounded before
    # the body is parsed (see max_query_arrays).
    decoded = await decode(request, h.contexts, limits, max_arrays=max_query_arrays(limits, 3))
    doc = parse_registration(
        decoded.body, decoded.active, now_us=now_us(), max_points=limits.max_geometry_points
    )
    await run_in_threadpool(check_source, doc["endpoint"], h.settings.forbid_private_targets)
    await run_in_threadpool(fed.registrations.create, tenant, doc)
    return Response(status_code=201, headers={"Location": location(f"{PREFIX}/{doc['id']}")})


def wanted_of(
    ctx: ActiveContext,
    *,
    id: str | None,
    type: str | None,
    idPattern: str | None,
    attrs: str | None,
) -> Wanted:
    """The selectors of a registration query (clause 5.10.2), names expanded."""
    types = None
    if type is not None:
        if not type.strip():
            raise BadRequestData("type must not be empty")
        types = parse_type_selection(type, ctx.expand)
    ids = None
    if id is not None:
        ids = [check_uri(i, "id") for i in split_list(id)]
        if not ids:
            raise BadRequestData("id must list at least one entity id")
    if idPattern is not None:
        check_regex(idPattern)
    names = [ctx.expand(check_name(a)) for a in split_list(attrs)] or None
    return Wanted(types=types, ids=ids, id_pattern=idPattern, attrs=names)


@router.get("/csourceRegistrations", summary="Query context source registrations")
async def query_registrations(
    call: Manage,
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,
    attrs: str | None = None,
    q: str | None = None,
    csf: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    timeproperty: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,
    endTimeAt: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    options: str | None = None,
    local: str | None = None,
    scopeQ: str | None = None,
    # in the v1.8.1 OpenAPI, without effect here: registrations are not rendered as GeoJSON,
    # and hold no LanguageProperty (docs/conformance.md)
    geometryProperty: str | None = None,
    lang: str | None = None,
) -> Response:
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    fed = h.federation
    limits = h.settings.limits
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    flt = parse_filter(
        q=q, csf=csf, georel=georel, geometry=geometry, coordinates=coordinates,
        geoproperty=geoproperty, timerel=timerel, timeAt=timeAt, endTimeAt=endTimeAt,
        timeproperty=timeproperty, max_q_length=limits.max_q_length,
        max_points=limits.max_geometry_points, scopeQ=scopeQ,
    )  # fmt: skip
    wanted = wanted_of(ctx, id=id, type=type, idPattern=idPattern, attrs=attrs)
    if not (wanted.types or wanted.attrs or wanted.ids or wanted.id_pattern or flt):
        # Clause 5.10.2.4: a registration query says what it is looking for.
        raise BadRequestData(
            "query registrations by type, attrs, id, idPattern, q, csf, scopeQ, a geo-query "
            "or a temporal query, e.g. ?type=Road"
        )
    page = page_of(limits, limit, offset, count)
    found, total = await run_in_threadpool(
        lambda: fed.registrations.query(
            tenant,
            wanted,
            limit=page.limit,
            offset=page.offset,
            keep=lambda doc: passes(doc, flt, ctx.expand),
        )
    )
    body = [_render(fed, tenant, d, ctx, sys_attrs) for d in found]
    response = ngsi_response(
        body, accept=accept, context=context, headers=count_header(page, total)
    )
    return add_page_links(response, request, page, total, accept)


@router.get("/csourceRegistrations/{registrationId:path}", summary="Retrieve registration")
async def retrieve_registration(
    call: Manage, registrationId: str, options: str | None = None, local: str | None = None
) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    fed = h.federation
    check_uri(registrationId, "registration id")
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    stored = await run_in_threadpool(fed.registrations.get, tenant, registrationId)
    body = _render(fed, tenant, stored.doc, ctx, sys_attrs)
    return ngsi_response(body, accept=accept, context=context)


@router.patch(
    "/csourceRegistrations/{registrationId:path}",
    status_code=204,
    openapi_extra=OBJECT_BODY,
    summary="Update registration",
)
async def update_registration(call: Write, registrationId: str) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    fed = h.federation
    check_uri(registrationId, "registration id")
    limits = h.settings.limits
    decoded = await decode(
        request, h.contexts, limits, allow_merge_patch=True, max_arrays=max_query_arrays(limits, 3)
    )
    stored = await run_in_threadpool(fed.registrations.get, tenant, registrationId)
    doc = apply_fragment(
        stored.doc, decoded.body, decoded.active, now_us=now_us(),
        max_points=limits.max_geometry_points,
    )  # fmt: skip
    if doc["endpoint"] != stored.doc["endpoint"]:
        await run_in_threadpool(check_source, doc["endpoint"], h.settings.forbid_private_targets)
    await run_in_threadpool(
        lambda: fed.registrations.update(tenant, doc, expected_modified=stored.modified_at)
    )
    return Response(status_code=204)


@router.delete(
    "/csourceRegistrations/{registrationId:path}",
    status_code=204,
    summary="Delete registration",
)
async def delete_registration(call: Write, registrationId: str) -> Response:
    h, tenant = call.hub, call.tenant
    fed = h.federation
    check_uri(registrationId, "registration id")
    await run_in_threadpool(fed.registrations.delete, tenant, registrationId)
    return Response(status_code=204)


# -- registration subscriptions (clause 5.11) ----------------------------------------------------
SUBS_PREFIX = "/ngsi-ld/v1/csourceSubscriptions"


def _csubs(h: Hub) -> CsourceSubscriptionService:
    service = h.federation.subscriptions
    if service is None:
        raise BadRequestData("registration subscriptions are not enabled on this server")
    return service


def _render_csub(doc: dict[str, Any], stats: dict[str, Any], ctx: ActiveContext,
                 sys_attrs: bool) -> dict[str, Any]:  # fmt: skip
    out = render_subscription(doc, stats, ctx, sys_attrs=sys_attrs, now_us=now_us())
    out.pop("notificationTrigger", None)  # entity triggers; see csubs.UNSUPPORTED
    for key in ("csf", "temporalQ"):  # (members of registration subscriptions only)
        if key in doc:
            out[key] = doc[key]
    return out


async def _check_receiver(h: Hub, doc: dict[str, Any]) -> None:
    """The SSRF guard (in a thread: it resolves the host name) and the notification
    @context (fetched without blocking the event loop), before storing."""
    uri = doc["notification"]["endpoint"]["uri"]
    await run_in_threadpool(check_target, uri, h.settings.forbid_private_targets)
    await h.contexts.active_async(doc.get("jsonldContext") or doc.get("context"))


@router.post(
    "/csourceSubscriptions",
    status_code=201,
    openapi_extra=OBJECT_BODY,
    summary="Subscribe to registrations",
)
async def create_csub(call: Write) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    service = _csubs(h)
    limits = h.settings.limits
    decoded = await decode(request, h.contexts, limits, max_arrays=max_query_arrays(limits))
    doc = parse_csub(
        decoded.body, decoded.active, context=decoded.context, limits=h.settings.limits
    )
    await _check_receiver(h, doc)
    await run_in_threadpool(service.create, tenant, doc)
    notifier = h.federation.notifier
    if notifier is not None:
        notifier.wake()  # the first notification: the registrations matching now
    return Response(status_code=201, headers={"Location": location(f"{SUBS_PREFIX}/{doc['id']}")})


@router.get("/csourceSubscriptions", summary="Query registration subscriptions")
async def query_csubs(
    call: Manage,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    options: str | None = None,
) -> Response:
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    service = _csubs(h)
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    page = page_of(h.settings.limits, limit, offset, count)
    found, total = await run_in_threadpool(
        lambda: service.query(tenant, limit=page.limit, offset=page.offset)
    )
    body = [_render_csub(doc, stats, ctx, sys_attrs) for doc, stats in found]
    response = ngsi_response(
        body, accept=accept, context=context, headers=count_header(page, total)
    )
    return add_page_links(response, request, page, total, accept)


@router.get(
    "/csourceSubscriptions/{subscriptionId:path}", summary="Retrieve registration subscription"
)
async def retrieve_csub(call: Manage, subscriptionId: str, options: str | None = None) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    service = _csubs(h)
    check_uri(subscriptionId, "subscription id")
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    doc, stats = await run_in_threadpool(service.get, tenant, subscriptionId)
    return ngsi_response(_render_csub(doc, stats, ctx, sys_attrs), accept=accept, context=context)


@router.patch(
    "/csourceSubscriptions/{subscriptionId:path}",
    status_code=204,
    openapi_extra=OBJECT_BODY,
    summary="Update registration subscription",
)
async def update_csub(call: Write, subscriptionId: str) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    service = _csubs(h)
    check_uri(subscriptionId, "subscription id")
    limits = h.settings.limits
    decoded = await decode(
        request, h.contexts, limits, allow_merge_patch=True, max_arrays=max_query_arrays(limits)
    )
    old, stats = await run_in_threadpool(service.get, tenant, subscriptionId)
    doc = patch_csub(old, decoded.body, decoded.active, context=decoded.context,
                     limits=h.settings.limits)  # fmt: skip
    await _check_receiver(h, doc)
    await run_in_threadpool(
        lambda: service.update(tenant, doc, expected_modified=stats["modified_at"])
    )
    return Response(status_code=204)


@router.delete(
    "/csourceSubscriptions/{subscriptionId:path}",
    status_code=204,
    summary="Delete registration subscription",
)
async def delete_csub(call: Write, subscriptionId: str) -> Response:
    h, tenant = call.hub, call.tenant
    service = _csubs(h)
    check_uri(subscriptionId, "subscription id")
    await run_in_threadpool(service.delete, tenant, subscriptionId)
    return Response(status_code=204)
