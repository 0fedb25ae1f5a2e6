"""Temporal API endpoints: /temporal/entities (clauses 5.6.11-5.6.16, 5.7.3, 5.7.4, 6.18-6.22)
and POST /temporal/entityOperations/query (clause 5.7.4, by POST).

Reads take the same selectors as GET /entities plus the temporal query (timerel, timeAt,
endTimeAt, timeproperty, lastN) and the representation (normalized, temporalValues or
aggregatedValues). The POST query carries the selectors and the temporal query in a Query
body; it is translated into the GET parameters and runs the same code. Writes change the
history only; see ``smartcity.hub.temporal.service``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param, int_param, parse_options
from smartcity.hub.api.entities import BODY
from smartcity.hub.api.negotiation import (
    OBJECT_BODY,
    choose_accept,
    decode,
    error_response,
    location,
    ngsi_response,
)
from smartcity.hub.api.paging import page_of
from smartcity.hub.api.params import Selection, parse_selection, query_from_params, split_list
from smartcity.hub.api.preamble import Call, Manage, Read, ReadAuth, Write
from smartcity.hub.api.query_body import QueryParams as _QueryParams
from smartcity.hub.api.query_body import max_query_arrays, query_params_from_body
from smartcity.hub.entity import (
    ENTITY_MEMBERS,
    KEY_TYPE,
    VALUE_KEY,
    Doc,
    Instance,
    check_name,
    check_uri,
    parse_instance,
    parse_scope,
    parse_types,
)
from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.federation import reads as federation
from smartcity.hub.federation.csf import parse_csf
from smartcity.hub.federation.forwarding import entity_path, with_warnings
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.temporal.render import (
    AGGREGATED_VALUES,
    NORMALIZED,
    TEMPORAL_VALUES,
    WRAPPED_TYPES,
    render_temporal,
)
from smartcity.hub.temporal.service import (
    TemporalQuery,
    TemporalResult,
    month_of,
    parse_period,
)
from smartcity.hub.timeutil import compact_iso_from_us, parse_datetime_us
from smartcity.hub.types_expr import parse_type_selection

router = APIRouter(tags=["Temporal Context Information"])
TEMPORAL_OPTIONS = {TEMPORAL_VALUES, AGGREGATED_VALUES, "sysAttrs"}
# Refuse aggregations that would produce more periods than this (e.g. PT1S over a year).
MAX_PERIODS = 100_000
# Simplified temporal input (clause 4.5.9): the member holding [value, time] pairs, by type.
_PAIRS_MEMBER = {
    "values": "Property",
    "objects": "Relationship",
    "languageMaps": "LanguageProperty",
    "vocabs": "VocabProperty",
    "jsons": "JsonProperty",
    "valueLists": "ListProperty",
    "objectLists": "ListRelationship",
}


# -- reading -----------------------------------------------------------------------------------


def _representation(options: set[str], fmt: str | None) -> str:
    """format wins over the (deprecated) options keywords, as clause 6.3.12 says."""
    if fmt is not None:
        if fmt not in (NORMALIZED, TEMPORAL_VALUES, AGGREGATED_VALUES):
            raise BadRequestData(
                f"format must be normalized, temporalValues or aggregatedValues, got {fmt!r}"
            )
        return fmt
    if TEMPORAL_VALUES in options and AGGREGATED_VALUES in options:
        raise BadRequestData("options may hold temporalValues or aggregatedValues, not both")
    if TEMPORAL_VALUES in options:
        return TEMPORAL_VALUES
    if AGGREGATED_VALUES in options:
        return AGGREGATED_VALUES
    return NORMALIZED


def _temporal_query(
    *,
    timerel: str | None,
    timeAt: str | None,
    endTimeAt: str | None,
    timeproperty: str | None,
    lastN: str | None,
    datasetId: str | None,
    aggrMethods: str | None,
    aggrPeriodDuration: str | None,
    options: set[str],
    fmt: str | None,
) -> tuple[TemporalQuery, str]:
    representation = _representation(options, fmt)
    if aggrMethods is not None and representation == NORMALIZED and fmt is None:
        representation = AGGREGATED_VALUES  # aggrMethods alone asks for aggregates
    if fmt is not None and fmt != AGGREGATED_VALUES:
        # format wins over options (clause 6.3.12): an options=aggregatedValues it overrides
        # takes its aggregation parameters with it.
        aggrMethods = aggrPeriodDuration = None
    methods = None
    if representation == AGGREGATED_VALUES:
        if not aggrMethods:
            raise BadRequestData(
                "the aggregated representation needs aggrMethods, e.g. aggrMethods=avg,max"
            )
        methods = list(dict.fromkeys(split_list(aggrMethods)))
    elif aggrMethods is not None:
        raise BadRequestData(f"aggrMethods cannot be used with the {representation} format")
    if aggrPeriodDuration is not None and methods is None:
        raise BadRequestData("aggrPeriodDuration only applies to aggregations (aggrMethods)")
    datasets = None
    if datasetId is not None:
        names = split_list(datasetId)
        if not names:
            raise BadRequestData("datasetId must list at least one datasetId (or @none)")
        datasets = ["" if d == "@none" else check_uri(d, "datasetId") for d in names]
    months, period = (0, 0) if aggrPeriodDuration is None else parse_period(aggrPeriodDuration)
    tq = TemporalQuery(
        timerel=timerel,
        time_at=None if timeAt is None else parse_datetime_us(timeAt, field="timeAt"),
        end_time_at=None if endTimeAt is None else parse_datetime_us(endTimeAt, field="endTimeAt"),
        time_property=timeproperty or "observedAt",
        last_n=None if lastN is None else int_param(lastN, "lastN", 1, low=1, high=2**31),
        datasets=datasets,
        aggr_methods=methods,
        aggr_period=period,
        aggr_months=months,
    )
    lo, hi = tq.bounds()
    if (period or months) and lo is not None and hi is not None:
        if months:
            periods = (month_of(hi - 1) // months) - (month_of(lo) // months) + 1
        else:
            periods = -(-(hi - lo) // period)
        if periods > MAX_PERIODS:
            raise BadRequestData(
                f"aggrPeriodDuration {aggrPeriodDuration} splits the interval into {periods} "
                f"periods; at most {MAX_PERIODS} are allowed, use a longer period"
            )
    return tq, representation


# Linked entity retrieval (clause 4.5.23) and EntityMaps are features of Retrieve and Query
# Entities (clauses 5.7.1, 5.7.2): the temporal operations (5.7.3, 5.7.4) take neither, and a
# silently ignored parameter would look like an empty graph.
_ENTITY_ONLY = ("join", "joinLevel", "containedBy", "entityMap")


def _refuse_entity_only(given: dict[str, str | None]) -> None:
    for name in _ENTITY_ONLY:
        value = given.get(name)
        if value is None or (name == "join" and value == "@none"):
            continue
        raise BadRequestData(
            f"{name} applies to Retrieve and Query Entities only (clauses 4.5.23, 5.7.1, "
            "5.7.2); the temporal API takes no join, joinLevel, containedBy or entityMap"
        )


def _entity_only_params(
    join: str | None = None,
    joinLevel: str | None = None,
    containedBy: str | None = None,
    entityMap: str | None = None,
) -> None:
    """Declared on the temporal reads so that these are refused with their reason rather than
    as parameters unknown to the operation."""
    given = {"join": join, "joinLevel": joinLevel, "containedBy": containedBy}
    _refuse_entity_only({**given, "entityMap": entityMap})


EntityOnly = Annotated[None, Depends(_entity_only_params)]


def _check_projection(attrs: str | None, pick: str | None, omit: str | None) -> None:
    """pick and omit replace attrs (clause 4.21): combining them is ambiguous."""
    for name, value in (("pick", pick), ("omit", omit)):
        if value is not None and attrs is not None:
            raise BadRequestData(f"{name} cannot be used together with attrs; use {name} alone")


def _projection(selection: Selection) -> tuple[list[str] | None, set[str] | None]:
    """The attributes to return (attrs and pick) and to leave out (omit)."""
    wanted = selection.attrs
    if selection.pick is not None:
        picked = [a for a in selection.pick if a not in ("id", "type", "scope")]
        wanted = [a for a in wanted if a in picked] if wanted else picked
    omitted = None
    if selection.omit is not None:
        omitted = {a for a in selection.omit if a not in ("id", "type", "scope")}
    return wanted, omitted


def _respond(
    request: Request,
    result: TemporalResult,
    rendered: Any,
    context: Any,
    tq: TemporalQuery,
    headers: dict[str, str],
) -> Response:
    accept = choose_accept(request)
    status = 200
    if result.partial is not None:
        # Clause 6.3.10: the server's limit left instances out; the range says which were
        # returned, the size is lastN (or * without it).
        start, end = result.partial
        size = str(tq.last_n) if tq.last_n else "*"
        headers["Content-Range"] = (
            f"date-time {compact_iso_from_us(start)}-{compact_iso_from_us(end)}/{size}"
        )
        status = 206
    return ngsi_response(rendered, accept=accept, context=context, status=status, headers=headers)


@router.get("/temporal/entities", summary="Query temporal evolution of entities")
async def query_temporal(
    call: Read,
    _refused: EntityOnly,
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    q: str | None = None,
    scopeQ: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    csf: str | None = None,
    timeproperty: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,
    endTimeAt: str | None = None,
    lastN: str | None = None,
    lang: str | None = None,
    aggrMethods: str | None = None,
    aggrPeriodDuration: str | None = None,
    datasetId: str | None = None,
    options: str | None = None,
    format: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    local: str | None = None,
) -> Response:
    call.accept()  # 406 before any work
    return await _query_temporal(
        call,
        call.context,
        call.ctx,
        local,
        _QueryParams(
            id=id,
            type=type,
            idPattern=idPattern,
            attrs=attrs,
            pick=pick,
            omit=omit,
            q=q,
            scopeQ=scopeQ,
            georel=georel,
            geometry=geometry,
            coordinates=coordinates,
            geoproperty=geoproperty,
            csf=csf,
            timeproperty=timeproperty,
            timerel=timerel,
            timeAt=timeAt,
            endTimeAt=endTimeAt,
            lastN=lastN,
            lang=lang,
            aggrMethods=aggrMethods,
            aggrPeriodDuration=aggrPeriodDuration,
            datasetId=datasetId,
            options=options,
            format=format,
            limit=limit,
            offset=offset,
            count=count,
        ),
    )


async def _query_temporal(
    call: Call,
    context: Any,
    ctx: ActiveContext,
    local: str | None,
    p: _QueryParams,
) -> Response:
    """Query Temporal Evolution of Entities (clause 5.7.4), for GET and POST alike."""
    request, h, tenant = call.request, call.hub, call.tenant
    limits = h.settings.limits
    opts = parse_options(p.options, TEMPORAL_OPTIONS)
    tq, representation = _temporal_query(
        timerel=p.timerel,
        timeAt=p.timeAt,
        endTimeAt=p.endTimeAt,
        timeproperty=p.timeproperty,
        lastN=p.lastN,
        datasetId=p.datasetId,
        aggrMethods=p.aggrMethods,
        aggrPeriodDuration=p.aggrPeriodDuration,
        options=opts,
        fmt=p.format,
    )
    _check_projection(p.attrs, p.pick, p.omit)
    # A Query's geometry may hold 10,000 positions: validating it is work for a thread.
    selection, query = await run_in_threadpool(query_from_params, ctx, limits, p)
    asked = page_of(limits, p.limit, p.offset, p.count)
    page, skip, want_count = asked.limit, asked.offset, asked.count
    selectors = (p.type, p.attrs, p.q, p.scopeQ, p.georel, p.geometry)
    if all(s is None for s in selectors) and not bool_param(local, "local"):
        # Clause 5.7.4 (as 5.7.2): a query needs a type, attrs, q or a geo-query (entity ids
        # or an idPattern alone are not enough); local=true asks for every entity.
        raise BadRequestData(
            "a temporal query needs at least one of type, attrs, q, scopeQ or a geo-query "
            "(id and idPattern only narrow them down), or local=true for every entity"
        )
    wanted, omitted = _projection(selection)
    # Distributed query (clause 4.3.6): matching registered brokers are asked concurrently.
    dist = await federation.plan(
        request,
        h.federation,
        tenant,
        "queryTemporal",
        query,
        attrs=selection.attrs,
        body=vars(p) if request.method == "POST" else None,
        context=context,
        csf=parse_csf(p.csf, max_length=limits.max_q_length),
    )
    window = federation.Window.of(dist, skip, page, limits.max_page_limit, want_count)
    remote = dist.start("/temporal/entities", **window.remote) if dist else None
    result = await run_in_threadpool(
        lambda: h.temporal.query(
            tenant,
            query,
            tq,
            attrs=wanted,
            omit=omitted,
            limit=window.limit,
            offset=window.offset,
            count=want_count,
        )
    )
    rendered = [
        render_temporal(
            e,
            ctx,
            fmt=representation,
            sys_attrs="sysAttrs" in opts,
            time_property=tq.time_property,
            aggr_methods=tq.aggr_methods or (),
            lang=p.lang,
            pick=selection.pick,
            omit=selection.omit,
        )
        for e in result.entities
    ]
    total = result.total
    warnings: list[str] = []
    if dist is not None and remote is not None:
        rendered, total, warnings = await federation.merge_page(
            dist, remote, rendered, total, window
        )
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else {}
    return with_warnings(_respond(request, result, rendered, context, tq, headers), warnings)


@router.get("/temporal/entities/{entityId:path}", summary="Retrieve temporal evolution of entity")
async def retrieve_temporal(
    call: Read,
    entityId: str,
    _refused: EntityOnly,
    type: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    timeproperty: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,
    endTimeAt: str | None = None,
    lastN: str | None = None,
    lang: str | None = None,
    aggrMethods: str | None = None,
    aggrPeriodDuration: str | None = None,
    datasetId: str | None = None,
    options: str | None = None,
    format: str | None = None,
    local: str | None = None,
) -> Response:
    request, h, tenant, context, ctx = call.request, call.hub, call.tenant, call.context, call.ctx
    check_uri(entityId, "entity id")
    call.accept()
    opts = parse_options(options, TEMPORAL_OPTIONS)
    tq, representation = _temporal_query(
        timerel=timerel,
        timeAt=timeAt,
        endTimeAt=endTimeAt,
        timeproperty=timeproperty,
        lastN=lastN,
        datasetId=datasetId,
        aggrMethods=aggrMethods,
        aggrPeriodDuration=aggrPeriodDuration,
        options=opts,
        fmt=format,
    )
    _check_projection(attrs, pick, omit)
    selection = parse_selection(ctx, attrs, pick, omit)
    wanted, omitted = _projection(selection)
    # type names what the client expects, as on Retrieve Entity (clause 6.5.3.1)
    types = parse_type_selection(type, ctx.expand) if type else None
    dist = await federation.plan(
        request, h.federation, tenant, "retrieveTemporal", attrs=selection.attrs, entity_id=entityId
    )
    remote = dist.start(entity_path("/temporal/entities", entityId)) if dist else None

    def render(entity: Any) -> Any:
        return render_temporal(
            entity,
            ctx,
            fmt=representation,
            sys_attrs="sysAttrs" in opts,
            time_property=tq.time_property,
            aggr_methods=tq.aggr_methods or (),
            lang=lang,
            pick=selection.pick,
            omit=selection.omit,
        )

    try:
        result = await run_in_threadpool(
            lambda: h.temporal.retrieve(
                tenant, entityId, tq, attrs=wanted, omit=omitted, required=selection.attrs
            )
        )
    except ResourceNotFound as exc:
        if dist is None or remote is None:
            raise
        merged, warnings = await federation.merge_one(dist, remote, None)
        if merged is None:
            return with_warnings(error_response(exc), warnings)
        accept = choose_accept(request)
        return with_warnings(ngsi_response(merged, accept=accept, context=context), warnings)
    if types is not None and not any(t <= set(result.entities[0].types) for t in types):
        raise ResourceNotFound(f"entity {entityId} is not of type {type}")
    rendered = render(result.entities[0])
    if not rendered and (selection.pick is not None or selection.omit is not None):
        # Clause 4.21: nothing of the entity is left to return.
        raise ResourceNotFound(
            f"pick/omit leave no member of entity {entityId} (neither id, type nor an attribute)"
        )
    warnings = []
    if dist is not None and remote is not None:
        rendered, warnings = await federation.merge_one(dist, remote, rendered)
    return with_warnings(_respond(request, result, rendered, context, tq, {}), warnings)


# -- writing -----------------------------------------------------------------------------------


def parse_temporal_attrs(fragment: dict[str, Any], ctx: ActiveContext) -> dict[str, list[Instance]]:
    """Attribute name -> instances: an array of instances (normalized or concise), one
    instance, or the simplified form ``{"type": ..., "values": [[value, time], ...]}``.

    Unlike an entity, an attribute here may have many instances with the same datasetId:
    they are its values at different times."""
    out: dict[str, list[Instance]] = {}
    for name, raw in fragment.items():
        if name in ENTITY_MEMBERS:
            continue
        iri = ctx.expand(check_name(name))
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise BadRequestData(f"attribute {name!r} has no instances")
        instances = out.setdefault(iri, [])
        for item in items:
            if isinstance(item, dict) and _is_simplified(item):
                instances.extend(_from_simplified(name, item, ctx))
            else:
                instances.append(parse_instance(name, item, ctx))
    return out


def _is_simplified(item: dict[str, Any]) -> bool:
    return any(k in item for k in _PAIRS_MEMBER) and not any(k in item for k in KEY_TYPE)


def _from_simplified(name: str, item: dict[str, Any], ctx: ActiveContext) -> list[Instance]:
    member = next(k for k in _PAIRS_MEMBER if k in item)
    kind = item.get("type", _PAIRS_MEMBER[member])
    if kind not in VALUE_KEY:
        raise BadRequestData(f"attribute {name!r} has type {kind!r}")
    pairs = item[member]
    if not isinstance(pairs, list) or not pairs:
        raise BadRequestData(f"{name}.{member} must be a non-empty array of [value, time] pairs")
    instances = []
    key = VALUE_KEY[kind]
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadRequestData(f"{name}.{member} items must be [value, time] pairs")
        value = pair[0]
        if kind in WRAPPED_TYPES and isinstance(value, dict) and set(value) == {key}:
            # [{"vocab": ...}, time] as the simplified output writes it (clause 4.5.9); a bare
            # value is accepted too.
            value = value[key]
        inst: dict[str, Any] = {"type": kind, key: value, "observedAt": pair[1]}
        if "datasetId" in item:
            inst["datasetId"] = item["datasetId"]
        instances.append(parse_instance(name, inst, ctx))
    return instances


def parse_temporal_entity(body: Any, ctx: ActiveContext) -> Doc:
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    doc: Doc = {"id": check_uri(body.get("id"), "entity id")}
    if "type" in body:
        doc["type"] = parse_types(body["type"], ctx)
    if "scope" in body:
        doc["scope"] = parse_scope(body["scope"])
    doc["attrs"] = parse_temporal_attrs(body, ctx)
    return doc


@router.post(
    "/temporal/entities",
    status_code=201,
    openapi_extra=BODY,
    summary="Create or update temporal evolution of entity",
)
async def upsert_temporal(call: Write, local: str | None = None) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    decoded = await decode(request, h.contexts, h.settings.limits)
    doc = parse_temporal_entity(decoded.body, decoded.active)
    created = await run_in_threadpool(h.temporal.upsert, tenant, doc)
    if created:
        path = f"/ngsi-ld/v1/temporal/entities/{doc['id']}"
        return Response(status_code=201, headers={"Location": location(path)})
    return Response(status_code=204)


@router.post(
    "/temporal/entities/{entityId:path}/attrs",
    status_code=204,
    openapi_extra=BODY,
    summary="Add attribute instances to temporal evolution",
)
async def append_temporal_attrs(call: Write, entityId: str, local: str | None = None) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    check_uri(entityId, "entity id")
    decoded = await decode(request, h.contexts, h.settings.limits)
    body = decoded.body
    if not isinstance(body, dict):
        raise BadRequestData("the attributes must be a JSON object")
    if "id" in body and body["id"] != entityId:
        raise BadRequestData(f"the body's id {body['id']!r} differs from the URL's {entityId}")
    attrs = parse_temporal_attrs(body, decoded.active)
    if not attrs:
        raise BadRequestData("the body names no attribute")
    await run_in_threadpool(h.temporal.append, tenant, entityId, attrs)
    return Response(status_code=204)


@router.patch(
    "/temporal/entities/{entityId:path}/attrs/{attrId}/{instanceId}",
    status_code=204,
    openapi_extra=BODY,
    summary="Modify an attribute instance",
)
async def patch_temporal_instance(
    call: Write, entityId: str, attrId: str, instanceId: str, local: str | None = None
) -> Response:
    request, h, tenant = call.request, call.hub, call.tenant
    check_uri(entityId, "entity id")
    check_uri(instanceId, "instanceId")
    decoded = await decode(request, h.contexts, h.settings.limits)
    iri = decoded.active.expand(check_name(attrId))
    patch = _instance_patch(attrId, iri, decoded.body, decoded.active)
    await run_in_threadpool(
        h.temporal.patch_instance, tenant, entityId, iri, instanceId, patch, attrId
    )
    return Response(status_code=204)


def _instance_patch(name: str, iri: str, body: Any, ctx: ActiveContext) -> Instance:
    """The body is ``{"<attr>": [instance]}`` (an EntityTemporal fragment, clause 5.6.14) or,
    leniently, the instance itself."""
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the body must be a JSON object holding the attribute instance")
    body = {k: v for k, v in body.items() if k != "@context"}
    named = [k for k in body if k not in ENTITY_MEMBERS and ctx.expand(k) == iri]
    if named:
        raw = body[named[0]]
        if isinstance(raw, list):
            if len(raw) != 1:
                raise BadRequestData(f"{name} must hold exactly one instance to modify")
            raw = raw[0]
    elif "type" in body or any(k in body for k in KEY_TYPE):
        raw = body
    else:
        raise BadRequestData(f"the body must hold attribute {name!r} with the new instance")
    return parse_instance(name, raw, ctx)


@router.delete(
    "/temporal/entities/{entityId:path}/attrs/{attrId}/{instanceId}",
    status_code=204,
    summary="Delete an attribute instance",
)
async def delete_temporal_instance(
    call: Manage, entityId: str, attrId: str, instanceId: str, local: str | None = None
) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    check_uri(instanceId, "instanceId")
    ctx = call.ctx
    iri = ctx.expand(check_name(attrId))
    await run_in_threadpool(h.temporal.delete_instance, tenant, entityId, iri, instanceId, attrId)
    return Response(status_code=204)


@router.delete(
    "/temporal/entities/{entityId:path}/attrs/{attrId}",
    status_code=204,
    summary="Delete an attribute from temporal evolution",
)
async def delete_temporal_attr(
    call: Manage,
    entityId: str,
    attrId: str,
    datasetId: str | None = None,
    deleteAll: str | None = None,
    local: str | None = None,
) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    ctx = call.ctx
    iri = ctx.expand(check_name(attrId))
    if datasetId is not None:
        check_uri(datasetId, "datasetId")
    delete_all = bool_param(deleteAll, "deleteAll")
    await run_in_threadpool(
        lambda: h.temporal.delete_attr(
            tenant, entityId, iri, attrId, dataset_id=datasetId, delete_all=delete_all
        )
    )
    return Response(status_code=204)


@router.delete(
    "/temporal/entities/{entityId:path}",
    status_code=204,
    summary="Delete temporal evolution of entity",
)
async def delete_temporal(call: Write, entityId: str, local: str | None = None) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    await run_in_threadpool(h.temporal.delete_entity, tenant, entityId)
    return Response(status_code=204)


@router.post(
    "/temporal/entityOperations/query",
    summary="Query temporal evolution of entities (POST)",
    openapi_extra=OBJECT_BODY,
)
async def query_temporal_post(
    call: ReadAuth,
    _refused: EntityOnly,
    limit: str | None = None,
    offset: str | None = None,
    count: str | None = None,
    options: str | None = None,
    format: str | None = None,
    aggrMethods: str | None = None,
    aggrPeriodDuration: str | None = None,
    lastN: str | None = None,
    datasetId: str | None = None,
    lang: str | None = None,
    local: str | None = None,
) -> Response:
    """The body is a Query (clause 5.2.23) with a temporalQ; the representation, paging and
    aggregation stay query parameters. Answers exactly as the equivalent GET."""
    request, h = call.request, call.hub
    limits = h.settings.limits
    decoded = await decode(request, h.contexts, limits, max_arrays=max_query_arrays(limits))
    call.accept()
    params = query_params_from_body(decoded.body)
    _refuse_entity_only(vars(params))  # the query string's: EntityOnly
    for name, value in (("lastN", lastN), ("lang", lang)):
        in_body = getattr(params, name)
        if value is not None and in_body is not None and value != in_body:
            raise BadRequestData(
                f"{name} is given both as a query parameter ({value!r}) and in the body "
                f"({in_body!r}); give it once"
            )
    params.lastN = params.lastN if params.lastN is not None else lastN
    params.lang = params.lang if params.lang is not None else lang
    params.limit, params.offset, params.count = limit, offset, count
    params.options, params.format = options, format
    params.datasetId = datasetId if datasetId is not None else params.datasetId
    params.aggrMethods, params.aggrPeriodDuration = aggrMethods, aggrPeriodDuration
    return await _query_temporal(call, decoded.context, decoded.active, local, params)
