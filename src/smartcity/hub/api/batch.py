"""Batch operations: /entityOperations/create|upsert|update|delete|merge|query (clause 5.6.7+).

Every entity is validated on its own: a bad one is reported in ``errors`` with its reason and
never stops or hides the good ones (207 Multi-Status when some failed).
"""

from __future__ import annotations

from collections.abc import Callable
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
from smartcity.hub.federation import reads as federation
from smartcity.hub.federation import write_ops, writes
from smartcity.hub.federation.csf import parse_csf
from smartcity.hub.federation.forwarding import with_warnings
from smartcity.hub.federation.write_ops import BatchItem
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
    call: Call, *, require_type: bool, items: list[BatchItem] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The valid entities, parsed, and an error entry for each invalid one; ``items`` (when
    given) receives each valid entity's JSON and @context too, for forwarding."""
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
            if items is not None:
                items.append(BatchItem(docs[-1]["id"], item, docs[-1], ctx))
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
    tenant, h = call.tenant, call.hub
    items: list[BatchItem] = []
    docs, errors = await _parse_entities(call, require_type=True, items=items)

    def create(local: list[BatchItem]) -> BatchResult:
        return h.entities.create_many(tenant, _docs(local))

    answer = await _distributed(call, "createBatch", "create", items, errors, create)
    if answer is not None:
        return answer
    result = await run_in_threadpool(h.entities.create_many, tenant, docs)
    return _respond(result, errors, created=True)


def _docs(items: list[BatchItem]) -> list[dict[str, Any]]:
    return [i.doc for i in items if i.doc is not None]


async def _distributed(
    call: Call,
    operation: str,
    kind: str,
    items: list[BatchItem],
    errors: list[dict[str, Any]],
    write: Callable[[list[BatchItem]], BatchResult],
) -> Response | None:
    """A batch some of whose entities registered sources (also) hold (clause 4.3.6): each
    source gets one request with its share; None when no registration is about the batch."""
    tenant, h = call.tenant, call.hub
    w = await writes.plan(call.request, h.federation.forwarder, tenant, operation)
    if w is None or not items:
        return None

    async def types_of(entity_id: str) -> list[str] | None:
        return await write_ops.known_types(h.entities, tenant, entity_id)

    async def here(local: list[BatchItem]) -> BatchResult:
        return await run_in_threadpool(write, local)

    out = await write_ops.batch_write(
        w, path=f"/entityOperations/{kind}", items=items, types_of=types_of, local=here
    )
    if out is None:
        return None
    return write_ops.batch_response(out, errors, kind=kind)


@router.post("/entityOperations/upsert", openapi_extra=LIST_BODY, summary="Batch upsert")
async def batch_upsert(call: Write, options: str | None = None) -> Response:
    tenant = call.tenant
    opts = parse_options(options, {"replace", "update"})
    if opts == {"replace", "update"}:
        raise BadRequestData("options replace and update exclude each other")
    items: list[BatchItem] = []
    docs, errors = await _parse_entities(call, require_type=False, items=items)
    h = call.hub

    def upsert(local: list[BatchItem]) -> BatchResult:
        return h.entities.upsert_many(tenant, _docs(local), replace="update" not in opts)

    answer = await _distributed(call, "upsertBatch", "upsert", items, errors, upsert)
    if answer is not None:
        return answer
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
    items: list[BatchItem] = []
    docs, errors = await _parse_entities(call, require_type=False, items=items)
    h = call.hub

    def update(local: list[BatchItem]) -> BatchResult:
        return h.entities.update_many(tenant, _docs(local), no_overwrite="noOverwrite" in opts)

    answer = await _distributed(call, "updateBatch", "update", items, errors, update)
    if answer is not None:
        return answer
    result = await run_in_threadpool(
        lambda: h.entities.update_many(tenant, docs, no_overwrite="noOverwrite" in opts)
    )
    return _respond(result, errors, created=False)


@router.post("/entityOperations/merge", openapi_extra=LIST_BODY, summary="Batch merge")
async def batch_merge(call: Write) -> Response:
    tenant, h = call.tenant, call.hub
    items: list[BatchItem] = []
    _, errors = await _parse_entities(call, require_type=False, items=items)

    def merge(local: list[BatchItem]) -> BatchResult:
        result = BatchResult()
        for doc in _docs(local):
            try:
                h.entities.merge(tenant, doc)
                result.success.append(doc["id"])
            except NgsiError as exc:
                result.errors.append((doc["id"], exc))
        return result

    answer = await _distributed(call, "mergeBatch", "merge", items, errors, merge)
    if answer is not None:
        return answer
    result = await run_in_threadpool(merge, items)
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

    def delete(local: list[BatchItem]) -> BatchResult:
        return h.entities.delete_many(tenant, [i.entity_id for i in local])

    items = [BatchItem(i, i, None, None) for i in ids]
    answer = await _distributed(call, "deleteBatch", "delete", items, errors, delete)
    if answer is not None:
        return answer
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
    # Distributed like GET /entities (clause 4.3.6): the Query is forwarded as the equivalent
    # GET, with the URL's view parameters.
    dist = None
    if accept != GEOJSON:
        forwarded = {**vars(p), "options": options, "format": format, "lang": lang}
        dist = await federation.plan(
            request, h.federation, tenant, "queryBatch", query, attrs=selection.attrs,
            body=forwarded, context=decoded.context,
        )  # fmt: skip
    window = federation.Window.of(dist, skip, page, limits.max_page_limit, want_count)
    remote = dist.start("/entities", **window.remote) if dist else None
    docs: list[dict[str, Any]] = []
    total: int | None = 0 if want_count else None
    if not use.local_empty:  # an EntityMap that names no entity of the hub's: ask nobody here
        docs, total = await run_in_threadpool(
            h.entities.find, tenant, query, limit=window.limit, offset=window.offset,
            count=want_count,
        )  # fmt: skip
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
    warnings: list[str] = []
    if dist is not None and remote is not None:
        rendered, total, warnings = await federation.merge_page(
            dist, remote, rendered, total, window
        )
    rendered += [r for _, r in linked]
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    headers.update(await entity_maps.finish(call, use, query))
    if accept == GEOJSON:
        geo_name = ctx.expand(check_name(geometryProperty or "location"))
        body = to_feature_collection(docs, rendered, ctx, geo_name, fmt, decoded.context)
        return geojson_response(body, request, context=decoded.context, headers=headers)
    response = ngsi_response(rendered, accept=accept, context=decoded.context, headers=headers)
    return with_warnings(response, warnings)
