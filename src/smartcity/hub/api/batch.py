"""Batch operations: /entityOperations/create|upsert|update|delete|merge|query (clause 5.6.7+).

Every entity is validated on its own: a bad one is reported in ``errors`` with its reason and
never stops or hides the good ones (207 Multi-Status when some failed).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub import linking
from smartcity.hub.api import entity_maps
from smartcity.hub.api.deps import parse_options
from smartcity.hub.api.entities import VIEW_OPTIONS, _format
from smartcity.hub.api.negotiation import (
    GEOJSON,
    JSON,
    JSONLD,
    OBJECT_BODY,
    decode,
    geojson_response,
    media_type,
    ngsi_response,
    read_json,
)
from smartcity.hub.api.paging import page_of
from smartcity.hub.api.params import query_from_params, require_selector
from smartcity.hub.api.preamble import Call, ReadAuth, Write
from smartcity.hub.api.query_body import max_query_arrays, query_params_from_body
from smartcity.hub.contexts import ContextStore
from smartcity.hub.entity import check_name, check_uri, parse_entity, render_entity
from smartcity.hub.errors import BadRequestData, NgsiError, UnsupportedMediaType
from smartcity.hub.federation.csf import parse_csf
from smartcity.hub.geojson import to_feature_collection
from smartcity.hub.service import BatchResult
from smartcity.hub.text import refuse_nul

router = APIRouter(tags=["Batch Operations"])
LIST_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/ld+json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
        "required": True,
    }
}


def _error(entity_id: Any, exc: NgsiError) -> dict[str, Any]:
    return {
        "entityId": entity_id if isinstance(entity_id, str) else str(entity_id),
        "error": exc.problem(),
    }


async def _parse_entities(
    call: Call, *, require_type: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    h, request = call.hub, call.request
    limits = h.settings.limits
    decoded = await decode(request, h.contexts, limits, body_is_list=True)
    if not isinstance(decoded.body, list):
        raise BadRequestData("a batch must be a JSON array of entities")
    if not decoded.body:
        raise BadRequestData("the batch is empty")
    if len(decoded.body) > limits.max_batch_entities:
        raise BadRequestData(
            f"a batch may hold at most {limits.max_batch_entities} entities; split it"
        )
    docs: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    store: ContextStore = h.contexts
    ld = media_type(request) == JSONLD
    for item in decoded.body:
        entity_id = item.get("id", "(no id)") if isinstance(item, dict) else "(not an object)"
        try:
            refuse_nul(item, "this entity")
            ctx = decoded.active
            if isinstance(item, dict) and ld != ("@context" in item):
                raise BadRequestData(
                    "with Content-Type application/ld+json each entity needs an @context member"
                    if ld
                    else "with Content-Type application/json an entity must not contain "
                    "@context; send it in a Link header or use application/ld+json"
                )
            if isinstance(item, dict) and "@context" in item:
                ctx = await store.active_async(item["@context"])
            docs.append(parse_entity(item, ctx, require_type=require_type))
        except NgsiError as exc:
            errors.append(_error(entity_id, exc))
    return docs, errors


def _respond(result: BatchResult, errors: list[dict[str, Any]], *, created: bool) -> Response:
    errors = errors + [_error(i, e) for i, e in result.errors]
    if not errors:
        if created:
            return ngsi_response(result.success, accept=JSON, context=None, status=201)
        return Response(status_code=204)
    body = {"success": result.success, "errors": errors}
    return ngsi_response(body, accept=JSON, context=None, status=207)


@router.post("/entityOperations/create", openapi_extra=LIST_BODY, summary="Batch create")
async def batch_create(call: Write) -> Response:
    tenant = call.tenant
    docs, errors = await _parse_entities(call, require_type=True)
    result = await run_in_threadpool(call.hub.entities.create_many, tenant, docs)
    return _respond(result, errors, created=True)


@router.post("/entityOperations/upsert", openapi_extra=LIST_BODY, summary="Batch upsert")
async def batch_upsert(call: Write, options: str | None = None) -> Response:
    tenant = call.tenant
    opts = parse_options(options, {"replace", "update"})
    if opts == {"replace", "update"}:
        raise BadRequestData("options replace and update exclude each other")
    docs, errors = await _parse_entities(call, require_type=False)
    h = call.hub
    result = await run_in_threadpool(
        lambda: h.entities.upsert_many(tenant, docs, replace="update" not in opts)
    )
    if not errors and not result.errors and result.created:
        # 201 lists the entities that were created; 204 when all of them existed already.
        return ngsi_response(result.created, accept=JSON, context=None, status=201)
    return _respond(result, errors, created=False)


@router.post("/entityOperations/update", openapi_extra=LIST_BODY, summary="Batch update")
async def batch_update(call: Write, options: str | None = None) -> Response:
    tenant = call.tenant
    opts = parse_options(options, {"noOverwrite"})
    docs, errors = await _parse_entities(call, require_type=False)
    result = await run_in_threadpool(
        lambda: call.hub.entities.update_many(tenant, docs, no_overwrite="noOverwrite" in opts)
    )
    return _respond(result, errors, created=False)


@router.post("/entityOperations/merge", openapi_extra=LIST_BODY, summary="Batch merge")
async def batch_merge(call: Write) -> Response:
    tenant = call.tenant
    docs, errors = await _parse_entities(call, require_type=False)
    h = call.hub
    result = BatchResult()

    def run() -> None:
        for doc in docs:
            try:
                h.entities.merge(tenant, doc)
                result.success.append(doc["id"])
            except NgsiError as exc:
                result.errors.append((doc["id"], exc))

    await run_in_threadpool(run)
    return _respond(result, errors, created=False)


@router.post(
    "/entityOperations/delete",
    summary="Batch delete",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "string"}}},
                "application/ld+json": {"schema": {"type": "array", "items": {"type": "string"}}},
            },
            "required": True,
        }
    },
)
async def batch_delete(call: Write) -> Response:
    h, tenant, request = call.hub, call.tenant, call.request
    # A JSON array of ids, under either media type: ids need no @context.
    ctype = media_type(request)
    if ctype not in (JSON, JSONLD):
        raise UnsupportedMediaType(
            f"Content-Type {ctype or '(none)'!r} is not supported here; use application/json"
        )
    body = await read_json(request, h.settings.limits, per_item=True)
    if not isinstance(body, list) or not body:
        raise BadRequestData("batch delete takes a non-empty JSON array of entity ids")
    ids: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in body:
        try:
            ids.append(check_uri(item, "entity id"))
        except NgsiError as exc:
            errors.append(_error(item, exc))
    result = await run_in_threadpool(h.entities.delete_many, tenant, ids)
    return _respond(result, errors, created=False)


@router.post(
    "/entityOperations/query",
    summary="Query entities (POST)",
    openapi_extra=OBJECT_BODY,
)
async def batch_query(
    call: ReadAuth,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    options: str | None = None,
    format: str | None = None,
    lang: str | None = None,
    join: str | None = None,
    joinLevel: str | None = None,
    containedBy: str | None = None,
    orderBy: str | None = None,
    datasetId: str | None = None,
    entityMap: str | None = None,
    geometryProperty: str | None = None,
) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    limits = h.settings.limits
    decoded = await decode(request, h.contexts, limits, max_arrays=max_query_arrays(limits))
    ctx = decoded.active
    accept = call.accept(geo=True)
    opts = parse_options(options, VIEW_OPTIONS)
    fmt = _format(opts, format)
    # The same translation as POST /temporal/entityOperations/query; a temporalQ is ignored.
    p = query_params_from_body(decoded.body)
    links = linking.parse_request(
        join or p.join,
        joinLevel or p.joinLevel,
        p.pick,
        p.omit,
        containedBy if containedBy is not None else p.containedBy,
    )
    p.pick, p.omit = links.pick, links.omit
    if orderBy is not None:
        p.orderBy = orderBy
    if datasetId is not None:
        p.datasetId = datasetId
    # A Query's geometry may hold 10,000 positions: validating it is work for a thread.
    selection, query = await run_in_threadpool(query_from_params, ctx, limits, p)
    require_selector(query)
    # Validated; this query is answered from the hub's own entities (no source is asked).
    parse_csf(p.csf, max_length=limits.max_q_length)
    use = await entity_maps.map_use(call, entityMap if entityMap is not None else p.entityMap)
    entity_maps.narrow(use, query)
    lang = lang if lang is not None else p.lang
    asked = page_of(limits, limit, offset, count)
    page, skip, want_count = asked.limit, asked.offset, asked.count
    docs: list[dict[str, Any]] = []
    total: int | None = 0 if want_count else None
    if not use.local_empty:
        docs, total = await run_in_threadpool(
            h.entities.find, tenant, query, limit=page, offset=skip, count=want_count
        )
    rendered = [
        render_entity(
            d,
            ctx,
            fmt=fmt,
            sys_attrs="sysAttrs" in opts,
            attrs=selection.attrs,
            lang=lang,
            pick=selection.pick,
            omit=selection.omit,
            datasets=selection.datasets,
        )
        for d in docs
    ]
    view = linking.View(ctx, fmt, "sysAttrs" in opts, lang)
    linked = await linking.follow(h.entities, tenant, docs, rendered, view, links, selection)
    rendered += [r for _, r in linked]
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    headers.update(await entity_maps.finish(call, use, query))
    if accept == GEOJSON:
        geo_name = ctx.expand(check_name(geometryProperty or "location"))
        body = to_feature_collection(docs, rendered, ctx, geo_name, fmt, decoded.context)
        return geojson_response(body, request, context=decoded.context, headers=headers)
    return ngsi_response(rendered, accept=accept, context=decoded.context, headers=headers)
