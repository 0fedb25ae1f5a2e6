"""The JSON-LD context API: /jsonldContexts (clause 5.13): host, list, serve, delete.

A hosted context belongs to the tenant (NGSILD-Tenant) that hosted it: another tenant neither
lists, serves nor deletes it (404, as for any object of another tenant). Cached contexts,
copies of documents published elsewhere, are shared by every tenant: each lists and serves
them, and only a write key for all tenants deletes (or reloads) them.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param, require_every_tenant
from smartcity.hub.api.negotiation import read_json
from smartcity.hub.api.preamble import ReadAuth, Write
from smartcity.hub.contexts import (
    CITY_CONTEXT_ID,
    CORE_CONTEXT_URL,
    city_document,
    core_document,
)
from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.timeutil import iso_from_us

router = APIRouter(tags=["JSON-LD Context API"])
PREFIX = "/ngsi-ld/v1/jsonldContexts/"


def _local_url(request: Request, context_id: str) -> str:
    return str(request.base_url).rstrip("/") + PREFIX + context_id


def _metadata(request: Request, entry: dict[str, Any]) -> dict[str, Any]:
    local = _local_url(request, entry["id"])
    return {
        "URL": entry["url"] or local,
        "localId": entry["id"],
        "kind": entry["kind"],
        "createdAt": iso_from_us(entry["createdAt"]),
    }


@router.post(
    "/jsonldContexts",
    status_code=201,
    summary="Add a user @context",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "required": True,
        }
    },
)
async def add_context(call: Write) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    body = await read_json(request, h.settings.limits)
    if not isinstance(body, dict) or "@context" not in body:
        raise BadRequestData('the body must be a JSON object with an "@context" member')
    context_id = await run_in_threadpool(h.contexts.host, body, tenant)
    return Response(status_code=201, headers={"Location": PREFIX + context_id})


@router.get("/jsonldContexts", summary="List stored @contexts")
async def list_contexts(
    call: ReadAuth, details: str | None = None, kind: str | None = None
) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    if kind is not None and kind not in ("Hosted", "Cached", "ImplicitlyCreated"):
        raise BadRequestData("kind must be Hosted, Cached or ImplicitlyCreated")
    entries = await run_in_threadpool(h.contexts.entries, tenant)
    if kind is not None:
        entries = [e for e in entries if e["kind"] == kind]
    if bool_param(details, "details"):
        body: Any = [_metadata(request, e) for e in entries]
    else:
        # The built-in ones first: the core context, and the city context the hub serves.
        body = (
            ([CORE_CONTEXT_URL] if kind in (None, "Cached") else [])
            + ([_local_url(request, CITY_CONTEXT_ID)] if kind in (None, "Hosted") else [])
            + [e["url"] or _local_url(request, e["id"]) for e in entries]
        )
    return Response(orjson.dumps(body), media_type="application/json")


def _find(entries: list[dict[str, Any]], context_id: str) -> dict[str, Any]:
    for entry in entries:
        if entry["id"] == context_id:
            return entry
    raise ResourceNotFound(f"no @context with id {context_id} is stored here")


@router.get("/jsonldContexts/{contextId:path}", summary="Serve a stored @context")
async def serve_context(call: ReadAuth, contextId: str, details: str | None = None) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    if contextId in ("core", CORE_CONTEXT_URL):
        return Response(orjson.dumps(core_document()), media_type="application/ld+json")
    if contextId == CITY_CONTEXT_ID:
        if bool_param(details, "details"):
            built_in = {"URL": _local_url(request, contextId), "localId": contextId}
            return Response(
                orjson.dumps({**built_in, "kind": "Hosted"}), media_type="application/json"
            )
        return Response(orjson.dumps(city_document()), media_type="application/ld+json")
    entry = _find(await run_in_threadpool(h.contexts.entries, tenant), contextId)
    if bool_param(details, "details"):
        return Response(orjson.dumps(_metadata(request, entry)), media_type="application/json")
    if entry["kind"] != "Hosted":
        raise BadRequestData(
            f"{contextId} is a cached copy of {entry['url']}; fetch it there, or ask for "
            "details=true"
        )
    return Response(entry["body"], media_type="application/ld+json")


@router.delete("/jsonldContexts/{contextId:path}", status_code=204, summary="Delete a @context")
async def delete_context(call: Write, contextId: str, reload: str | None = None) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    if contextId in ("core", CORE_CONTEXT_URL, CITY_CONTEXT_ID):
        raise BadRequestData(f"{contextId} is built into the hub and cannot be deleted")
    entry = _find(await run_in_threadpool(h.contexts.entries, tenant), contextId)
    if entry["kind"] != "Hosted":
        require_every_tenant(request, f"the cached @context {entry['url']}")
    await run_in_threadpool(h.contexts.remove, entry["stored"])
    if bool_param(reload, "reload") and entry["url"]:
        await run_in_threadpool(h.contexts.load, entry["url"])
    return Response(status_code=204)
