"""Entity endpoints: /entities and /entities/{id}/attrs (clauses 5.6 and 5.7)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub import linking
from smartcity.hub.api import cached, entity_maps
from smartcity.hub.api.deps import language_tag, parse_options
from smartcity.hub.api.negotiation import (
    GEOJSON,
    OBJECT_BODY,
    decode,
    error_response,
    geojson_response,
    location,
    ngsi_response,
)
from smartcity.hub.api.paging import page_of
from smartcity.hub.api.params import (
    member_names,
    parse_datasets,
    parse_selection,
    query_from_params,
    require_selector,
)
from smartcity.hub.api.preamble import Call, EntityTypeHint, LinkedCall, Manage, Read, Write
from smartcity.hub.api.query_body import QueryParams
from smartcity.hub.entity import Doc, check_name, check_uri, parse_entity, render_entity
from smartcity.hub.entity_maps import HEADER
from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.federation import reads as federation
from smartcity.hub.federation import write_ops, writes
from smartcity.hub.federation.csf import parse_csf
from smartcity.hub.federation.forwarding import entity_path, with_warnings
from smartcity.hub.geojson import to_feature, to_feature_collection
from smartcity.hub.service import UpdateResult
from smartcity.hub.simplified_input import normalized_fragment
from smartcity.hub.timeutil import parse_datetime_us
from smartcity.hub.types_expr import parse_type_selection

router = APIRouter(tags=["Context Information"])
BODY = OBJECT_BODY


def _format(options: set[str], fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("normalized", "keyValues", "simplified", "concise"):
            raise BadRequestData("format must be normalized, keyValues, simplified or concise")
        return "keyValues" if fmt == "simplified" else fmt
    if "keyValues" in options or "simplified" in options:
        return "keyValues"
    if "concise" in options:
        return "concise"
    return "normalized"


REPRESENTATIONS = {"keyValues", "simplified", "concise", "normalized"}
VIEW_OPTIONS = REPRESENTATIONS | {"sysAttrs"}


def _created(entity_id: str) -> Response:
    return Response(
        status_code=201, headers={"Location": location(f"/ngsi-ld/v1/entities/{entity_id}")}
    )


def _update_response(result: UpdateResult, ctx: Any) -> Response:
    if not result.not_updated:
        return Response(status_code=204)
    body = {
        "updated": [ctx.compact(i) for i in result.updated],
        "notUpdated": [
            {"attributeName": ctx.compact(i), "reason": reason} for i, reason in result.not_updated
        ],
    }
    return ngsi_response(body, accept="application/json", context=None, status=207)


@router.post("/entities", status_code=201, openapi_extra=BODY, summary="Create entity")
async def create_entity(call: Write) -> Response:
    h = call.hub
    decoded = await decode(call.request, h.contexts, h.settings.limits)
    doc = parse_entity(decoded.body, decoded.active)
    tenant = call.tenant
    w = await writes.plan(call.request, h.federation.forwarder, tenant, "createEntity")
    if w is not None:  # distributed create (clause 4.3.6): registered sources get their part

        async def create_here(part: dict[str, Any] | None) -> None:
            await run_in_threadpool(h.entities.create, tenant, part or doc)

        answer = await write_ops.entity_write(
            w, method="POST", entity_id=doc["id"], types=doc["type"], body=decoded.body,
            doc=doc, ctx=decoded.active, local=create_here, created=True,
            location=location(f"/ngsi-ld/v1/entities/{doc['id']}"),
        )  # fmt: skip
        if answer is not None:
            return answer
    await run_in_threadpool(h.entities.create, tenant, doc)
    return _created(doc["id"])


@router.get("/entities", summary="Query entities")
async def query_entities(
    call: Read,
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    q: str | None = None,
    csf: str | None = None,
    scopeQ: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    geometryProperty: str | None = None,
    lang: str | None = None,
    options: str | None = None,
    format: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    local: str | None = None,
    join: str | None = None,
    joinLevel: str | None = None,
    containedBy: str | None = None,
    orderBy: str | None = None,
    datasetId: str | None = None,
    entityMap: str | None = None,
    details: str | None = None,  # in the v1.8.1 OpenAPI, not acted upon (docs/conformance.md)
) -> Response:
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    limits = h.settings.limits
    accept = call.accept(geo=True)
    opts = parse_options(options, VIEW_OPTIONS)
    fmt = _format(opts, format)
    links = linking.parse_request(join, joinLevel, pick, omit, containedBy)
    params = QueryParams(
        id=id,
        type=type,
        idPattern=idPattern,
        attrs=attrs,
        pick=links.pick,
        omit=links.omit,
        q=q,
        scopeQ=scopeQ,
        georel=georel,
        geometry=geometry,
        coordinates=coordinates,
        geoproperty=geoproperty,
        orderBy=orderBy,
        datasetId=datasetId,
    )
    selection, query = query_from_params(ctx, limits, params)
    require_selector(query)
    source_filter = parse_csf(csf, max_length=limits.max_q_length)
    use = await entity_maps.map_use(call, entityMap)
    entity_maps.narrow(use, query)
    asked = page_of(limits, limit, offset, count)
    page, skip, want_count = asked.limit, asked.offset, asked.count
    # Distributed query (clause 4.3.6): matching registered brokers are asked concurrently.
    dist = None
    if accept != GEOJSON:
        dist = await federation.plan(
            request,
            h.federation,
            tenant,
            "queryEntity",
            query,
            attrs=selection.attrs,
            csf=source_filter,
            registrations=use.registrations,
        )
    window = federation.Window.of(dist, skip, page, limits.max_page_limit, want_count)
    remote = dist.start("/entities", **window.remote) if dist else None
    docs: list[Doc] = []
    total: int | None = 0 if want_count else None
    if not use.local_empty:
        docs, total = await run_in_threadpool(
            h.entities.find,
            tenant,
            query,
            limit=window.limit,
            offset=window.offset,
            count=want_count,
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
    # Linked entities are the hub's own: followed from the local entities, before merging.
    view = linking.View(ctx, fmt, "sysAttrs" in opts, lang)
    linked = await linking.follow(h.entities, tenant, docs, rendered, view, links, selection)
    warnings: list[str] = []
    if dist is not None and remote is not None:
        rendered, total, warnings = await federation.merge_page(
            dist, remote, rendered, total, window
        )
    docs, rendered = docs + [d for d, _ in linked], rendered + [r for _, r in linked]
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    headers.update(await entity_maps.finish(call, use, query, remote=remote))
    if accept == GEOJSON:
        geo_name = ctx.expand(check_name(geometryProperty or "location"))
        body = to_feature_collection(docs, rendered, ctx, geo_name, fmt, context)
        return geojson_response(body, request, context=context, headers=headers)
    response = ngsi_response(rendered, accept=accept, context=context, headers=headers)
    return with_warnings(response, warnings)


@router.get("/entities/{entityId:path}", summary="Retrieve entity")
async def retrieve_entity(
    call: Read,
    entityId: str,
    type: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    geometryProperty: str | None = None,
    lang: str | None = None,
    options: str | None = None,
    format: str | None = None,
    join: str | None = None,
    joinLevel: str | None = None,
    containedBy: str | None = None,
    datasetId: str | None = None,
    entityMap: str | None = None,
    details: str | None = None,  # in the v1.8.1 OpenAPI, not acted upon (docs/conformance.md)
) -> Response:
    return await retrieve(call, entityId)


async def retrieve(call: LinkedCall, entity_id: str) -> Response:
    """Retrieve one entity; shared by the route above and the lean path (api/hot.py), which
    is why it reads the query string itself rather than taking typed parameters."""
    request = call.request
    # (no query string: nothing to parse for entityMap, the usual retrieval)
    mapped = request.scope.get("query_string") and "entityMap" in request.query_params
    if not mapped and HEADER not in request.headers:
        return await cached.retrieve(call, entity_id, _retrieve)  # the common case, kept lean
    check_uri(entity_id, "entity id")
    use = await entity_maps.map_use(call, request.query_params.get("entityMap"))
    if use.used is not None and entity_id not in use.used.entities:
        raise ResourceNotFound(f"entity {entity_id} is not in EntityMap {use.used.id}")
    response = await _retrieve(call, entity_id)
    if response.status_code == 200:
        # The entity as this hub answers for it; sources that also did are not recorded.
        response.headers.update(await entity_maps.finish(call, use, None, [entity_id]))
    return response


async def _retrieve(call: LinkedCall, entity_id: str, text: str | None = None) -> Response:
    """The retrieval itself; ``text``: the entity's stored document, when already read."""
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    params = request.query_params
    check_uri(entity_id, "entity id")
    accept = call.accept(geo=True)
    opts = parse_options(params.get("options"), VIEW_OPTIONS)
    fmt = _format(opts, params.get("format"))
    links = linking.parse_request(
        params.get("join"),
        params.get("joinLevel"),
        params.get("pick"),
        params.get("omit"),
        params.get("containedBy"),
    )
    selection = parse_selection(ctx, params.get("attrs"), links.pick, links.omit)
    selection.datasets = parse_datasets(params.get("datasetId"))
    type_text = params.get("type")
    # type (clause 6.5.3.1) names what the client expects: an entity of other types is not it.
    types = parse_type_selection(type_text, ctx.expand) if type_text else None

    def render(doc: dict[str, Any]) -> dict[str, Any]:
        return render_entity(
            doc,
            ctx,
            fmt=fmt,
            sys_attrs="sysAttrs" in opts,
            attrs=selection.attrs,
            lang=params.get("lang"),
            pick=selection.pick,
            omit=selection.omit,
            datasets=selection.datasets,
        )

    dist = None
    if accept != GEOJSON:
        dist = await federation.plan(
            request,
            h.federation,
            tenant,
            "retrieveEntity",
            attrs=selection.attrs,
            entity_id=entity_id,
        )
    if dist is not None:  # the entity may be (partly) held by registered brokers
        remote = dist.start(entity_path("/entities", entity_id))
        try:
            local = render(await h.entities.get_async(tenant, entity_id))
        except ResourceNotFound:
            local = None
        merged, warnings = await federation.merge_one(dist, remote, local)
        if merged is None:
            missing = ResourceNotFound(f"entity {entity_id} does not exist")
            return with_warnings(error_response(missing), warnings)
        return with_warnings(ngsi_response(merged, accept=accept, context=context), warnings)
    if text is None:
        text = await h.entities.get_text_async(tenant, entity_id)
    doc = orjson.loads(text)
    if types is not None and not any(t <= set(doc["type"]) for t in types):
        raise ResourceNotFound(f"entity {entity_id} is not of type {type_text}")
    rendered = render(doc)
    if links.join is not None:
        view = linking.View(ctx, fmt, "sysAttrs" in opts, params.get("lang"))
        linked = await linking.follow(h.entities, tenant, [doc], [rendered], view, links, selection)
        if linked:  # join=flat found linked entities: the answer is an array of them
            docs, out = [doc] + [d for d, _ in linked], [rendered] + [r for _, r in linked]
            if accept == GEOJSON:
                geo_name = ctx.expand(check_name(params.get("geometryProperty") or "location"))
                body = to_feature_collection(docs, out, ctx, geo_name, fmt, context)
                return ngsi_response(body, accept=GEOJSON, context=context)
            return ngsi_response(out, accept=accept, context=context)
    if accept == GEOJSON:
        geo_name = ctx.expand(check_name(params.get("geometryProperty") or "location"))
        feature = to_feature(doc, rendered, ctx, geo_name, fmt, context)
        return geojson_response(feature, request, context=context)
    return ngsi_response(rendered, accept=accept, context=context)


@router.put(
    "/entities/{entityId:path}", status_code=204, openapi_extra=BODY, summary="Replace entity"
)
async def replace_entity(call: Write, entityId: str, _type: EntityTypeHint) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    decoded = await decode(call.request, h.contexts, h.settings.limits)
    body = decoded.body
    if not isinstance(body, dict):
        raise BadRequestData("an entity must be a JSON object")
    if body.get("id", entityId) != entityId:
        raise BadRequestData(f"the body's id {body.get('id')!r} differs from the URL's {entityId}")
    doc = parse_entity({**body, "id": entityId}, decoded.active, require_type=False)
    answer = await _distributed_entity_write(
        call, "replaceEntity", "PUT", entityId, body, doc, decoded.active,
        lambda part: h.entities.replace(tenant, part),
    )  # fmt: skip
    if answer is not None:
        return answer
    await run_in_threadpool(h.entities.replace, tenant, doc)
    return Response(status_code=204)


async def _distributed_entity_write(
    call: Call,
    operation: str,
    method: str,
    entity_id: str,
    body: dict[str, Any] | None,
    doc: dict[str, Any] | None,
    ctx: Any,
    write: Callable[[dict[str, Any]], object],
    *,
    read_as: Iterable[str] = (),
) -> Response | None:
    """Replace, merge or delete an entity that registered sources (also) hold (clause
    4.3.6); None when no registration offering ``operation`` is about it. ``read_as``: the
    parameters that said how to read the body, which the hub has read already (they are not
    sent on with the body as read)."""
    tenant, h = call.tenant, call.hub
    w = await writes.plan(call.request, h.federation.forwarder, tenant, operation)
    if w is None:
        return None
    w.already_read(read_as)
    types = (doc or {}).get("type") or await write_ops.known_types(h.entities, tenant, entity_id)

    async def here(part: dict[str, Any] | None) -> None:
        await run_in_threadpool(write, part if part is not None else {"id": entity_id})

    return await write_ops.entity_write(
        w, method=method, entity_id=entity_id, types=types, body=body, doc=doc, ctx=ctx,
        local=here,
    )  # fmt: skip


@router.patch(
    "/entities/{entityId:path}", status_code=204, openapi_extra=BODY, summary="Merge entity"
)
async def merge_entity(
    call: Write,
    entityId: str,
    _type: EntityTypeHint,
    options: str | None = None,
    observedAt: str | None = None,
    format: str | None = None,
    lang: str | None = None,
) -> Response:
    """Merge-patch the entity (clause 5.6.17). With ``format=keyValues`` (or the deprecated
    ``options=keyValues``) the fragment is simplified: each value is read as the value of the
    existing attribute of that name (hub/simplified_input.py), a LanguageProperty's text in
    ``lang``. ``observedAt`` stamps the merged attributes that had an observedAt and are
    given none."""
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    opts = parse_options(options, {"noOverwrite", "replace", "update"} | REPRESENTATIONS)
    fmt = _format(opts, format)
    if observedAt is not None:
        parse_datetime_us(observedAt, field="observedAt")
    language = language_tag(lang) if lang is not None else None
    decoded = await decode(call.request, h.contexts, h.settings.limits, allow_merge_patch=True)
    body = decoded.body
    if not isinstance(body, dict):
        raise BadRequestData("the merge patch must be a JSON object")
    if body.get("id", entityId) != entityId:
        raise BadRequestData(f"the body's id {body.get('id')!r} differs from the URL's {entityId}")
    forwarded: dict[str, Any] = body
    read_as: tuple[str, ...] = ()
    if fmt == "keyValues":
        try:
            current: Doc | None = await h.entities.get_async(tenant, entityId)
        except ResourceNotFound:  # (held by a registered source, or nowhere: said below)
            current = None
        body = normalized_fragment(body, current, decoded.active, language)
        # Read against the hub's copy, a source gets that reading (and not the parameters
        # that would make it read it as simplified values again); where the hub holds no copy,
        # each source gets the fragment as sent, to read against its own.
        if current is not None:
            forwarded, read_as = body, ("format", "lang", "options")
    doc = parse_entity({**body, "id": entityId}, decoded.active, require_type=False)
    answer = await _distributed_entity_write(
        call, "mergeEntity", "PATCH", entityId, forwarded, doc, decoded.active,
        lambda part: h.entities.merge(tenant, part, observed_at=observedAt), read_as=read_as,
    )  # fmt: skip
    if answer is not None:
        return answer
    await run_in_threadpool(lambda: h.entities.merge(tenant, doc, observed_at=observedAt))
    return Response(status_code=204)


@router.delete("/entities", status_code=204, summary="Purge entities")
async def purge_entities(
    call: Manage,
    type: str | None = None,
    id: str | None = None,
    idPattern: str | None = None,
    q: str | None = None,
    scopeQ: str | None = None,
    keep: str | None = None,
    drop: str | None = None,
    local: str | None = None,
) -> Response:
    """Delete the entities a query selects, or (keep/drop) some of their attributes."""
    h, tenant, ctx = call.hub, call.tenant, call.ctx
    if keep is not None and drop is not None:
        raise BadRequestData("keep and drop exclude each other: give one attribute list")
    params = QueryParams(id=id, type=type, idPattern=idPattern, q=q, scopeQ=scopeQ)
    _, query = query_from_params(ctx, h.settings.limits, params)
    require_selector(query)
    keep_names = member_names(keep, ctx, "keep")
    drop_names = member_names(drop, ctx, "drop")
    await run_in_threadpool(
        lambda: h.entities.purge(
            tenant,
            query,
            keep=sorted(keep_names) if keep_names is not None else None,
            drop=sorted(drop_names) if drop_names is not None else None,
        )
    )
    return Response(status_code=204)


@router.delete("/entities/{entityId:path}", status_code=204, summary="Delete entity")
async def delete_entity(call: Write, entityId: str, _type: EntityTypeHint) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    answer = await _distributed_entity_write(
        call, "deleteEntity", "DELETE", entityId, None, None, None,
        lambda _: h.entities.delete(tenant, entityId),
    )  # fmt: skip
    if answer is not None:
        return answer
    await run_in_threadpool(h.entities.delete, tenant, entityId)
    return Response(status_code=204)
