"""Subscription endpoints: /subscriptions and /subscriptions/{id} (clause 5.8, 6.10-6.11).

Every subscription endpoint, reads included, needs a write-scoped key (when authentication is
on): a subscription makes the hub send data to an address of the client's choosing, and its
receiverInfo often carries the receiver's credentials, so listing them is not a public read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
from smartcity.hub.api.preamble import Manage, Write
from smartcity.hub.api.query_body import max_query_arrays
from smartcity.hub.entity import check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation import subs as federated_subs
from smartcity.hub.federation.forwarding import with_warnings
from smartcity.hub.subscriptions.model import (
    apply_fragment,
    check_target,
    parse_subscription,
    render_subscription,
)
from smartcity.hub.subscriptions.service import StoredSubscription, SubscriptionService
from smartcity.hub.timeutil import now_us

router = APIRouter(tags=["Context Information Subscription"])
BODY = OBJECT_BODY
PREFIX = "/ngsi-ld/v1/subscriptions/"


def _service(h: Hub) -> SubscriptionService:
    if h.subscriptions is None:  # a Hub built by hand, without subscriptions
        raise BadRequestData("subscriptions are not enabled on this server")
    return h.subscriptions


async def _prepare(h: Hub, doc: dict[str, Any]) -> None:
    """Checks that need the network: the SSRF guard (resolving the receiver's host name, in a
    thread), and resolving the notification @context now, so a bad one is a 4xx/503 here
    rather than a failed notification later (resolved documents are also cached for the
    notifier)."""
    uri = doc["notification"]["endpoint"]["uri"]
    await run_in_threadpool(check_target, uri, h.settings.forbid_private_targets)
    await h.contexts.active_async(doc.get("jsonldContext") or doc.get("context"))


@router.post("/subscriptions", status_code=201, openapi_extra=BODY, summary="Create subscription")
async def create_subscription(call: Write) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    service = _service(h)
    # A geoQ's geometry is bounded before the body is parsed (see max_query_arrays).
    limits = h.settings.limits
    decoded = await decode(request, h.contexts, limits, max_arrays=max_query_arrays(limits))
    doc = parse_subscription(
        decoded.body,
        decoded.active,
        context=decoded.context,
        limits=h.settings.limits,
        now_us=now_us(),
    )
    await _prepare(h, doc)
    await run_in_threadpool(service.create, tenant, doc)
    response = Response(status_code=201, headers={"Location": location(PREFIX + doc["id"])})
    body = decoded.body if isinstance(decoded.body, dict) else {}
    warnings = await federated_subs.forward(
        request, h.federation.forwarder, tenant, "createSubscription", doc, "POST",
        "/subscriptions", {**body, "id": doc["id"]},
    )  # fmt: skip
    return with_warnings(response, warnings)


def _render(stored: StoredSubscription, ctx: Any, sys_attrs: bool) -> dict[str, Any]:
    return render_subscription(stored.doc, stored.stats, ctx, sys_attrs=sys_attrs, now_us=now_us())


@router.get("/subscriptions", summary="Query subscriptions")
async def query_subscriptions(
    call: Manage,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    options: str | None = None,
    local: str | None = None,
) -> Response:
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    service = _service(h)
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    page = page_of(h.settings.limits, limit, offset, count)
    # The total is always counted: the prev/next links need it, and it is one cheap query.
    found, total = await run_in_threadpool(
        service.query, tenant, limit=page.limit, offset=page.offset, count=True
    )
    assert total is not None
    body = [_render(s, ctx, sys_attrs) for s in found]
    response = ngsi_response(
        body, accept=accept, context=context, headers=count_header(page, total)
    )
    return add_page_links(response, request, page, total, accept)


@router.get("/subscriptions/{subscriptionId:path}", summary="Retrieve subscription")
async def retrieve_subscription(
    call: Manage, subscriptionId: str, options: str | None = None, local: str | None = None
) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    service = _service(h)
    check_uri(subscriptionId, "subscription id")
    accept = call.accept()
    sys_attrs = "sysAttrs" in parse_options(options, {"sysAttrs"})
    stored = await run_in_threadpool(service.get, tenant, subscriptionId)
    return ngsi_response(_render(stored, ctx, sys_attrs), accept=accept, context=context)


@router.patch(
    "/subscriptions/{subscriptionId:path}",
    status_code=204,
    openapi_extra=BODY,
    summary="Update subscription",
)
async def update_subscription(call: Write, subscriptionId: str) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    service = _service(h)
    check_uri(subscriptionId, "subscription id")
    limits = h.settings.limits
    decoded = await decode(
        request, h.contexts, limits, allow_merge_patch=True, max_arrays=max_query_arrays(limits)
    )
    stored = await run_in_threadpool(service.get, tenant, subscriptionId)
    doc = apply_fragment(
        stored.doc,
        decoded.body,
        decoded.active,
        context=decoded.context,
        limits=h.settings.limits,
        now_us=now_us(),
    )
    await _prepare(h, doc)
    await run_in_threadpool(
        lambda: service.update(tenant, doc, expected_modified=stored.stats["modified_at"])
    )
    warnings = await federated_subs.forward(
        request, h.federation.forwarder, tenant, "updateSubscription", doc, "PATCH",
        f"/subscriptions/{quote(subscriptionId, safe=':')}", decoded.body,
    )  # fmt: skip
    return with_warnings(Response(status_code=204), warnings)


@router.delete(
    "/subscriptions/{subscriptionId:path}", status_code=204, summary="Delete subscription"
)
async def delete_subscription(call: Write, subscriptionId: str) -> Response:
    h, tenant = call.hub, call.tenant
    service = _service(h)
    check_uri(subscriptionId, "subscription id")
    stored = None
    if not h.federation.registrations.surely_none(tenant):
        stored = await run_in_threadpool(service.get, tenant, subscriptionId)
    await run_in_threadpool(service.delete, tenant, subscriptionId)
    warnings: list[str] = []
    if stored is not None:
        warnings = await federated_subs.forward(
            call.request, h.federation.forwarder, tenant, "deleteSubscription", stored.doc,
            "DELETE", f"/subscriptions/{quote(subscriptionId, safe=':')}", None,
        )  # fmt: skip
    return with_warnings(Response(status_code=204), warnings)
