"""Discovery: /types, /types/{type}, /attributes, /attributes/{attr} (clause 5.7.5-5.7.10),
with what registered context sources provide (see federation.discovery)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param
from smartcity.hub.api.negotiation import error_response, ngsi_response
from smartcity.hub.api.preamble import Read
from smartcity.hub.entity import check_name
from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.federation import discovery as remote_discovery
from smartcity.hub.federation.forwarding import with_warnings
from smartcity.hub.federation.matching import Wanted

router = APIRouter(tags=["Context Information"])


def _attribute_types(docs: list[dict[str, Any]], iri: str) -> list[str]:
    kinds = {inst["type"] for d in docs for inst in d["attrs"].get(iri, [])}
    return sorted(kinds)


@router.get("/types", summary="Retrieve available entity types")
async def list_types(call: Read, details: str | None = None) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    detailed = bool_param(details, "details")
    operation = "retrieveEntityTypeDetails" if detailed else "retrieveEntityTypes"
    remote = await remote_discovery.ask(
        call.request, h.federation, tenant, operation, "/types", Wanted()
    )
    types = await run_in_threadpool(h.entities.types, tenant)
    if detailed:
        local: dict[str, list[str]] = {}
        for etype, _ in types:
            info = await run_in_threadpool(h.entities.type_details, tenant, etype)
            local[etype] = info[1] if info else []
        merged = remote_discovery.type_details_list(local, remote, ctx)
        body_list = [
            {
                "id": etype,
                "type": "EntityType",
                "typeName": ctx.compact(etype),
                "attributeNames": [ctx.compact(a) for a in attrs],
            }
            for etype, attrs in merged.items()
        ]
        response = ngsi_response(body_list, accept=accept, context=context)
        return with_warnings(response, remote.warnings)
    names = remote_discovery.type_list([t for t, _ in types], remote, ctx)
    body = {
        "id": f"urn:ngsi-ld:EntityTypeList:{tenant or 'default'}",
        "type": "EntityTypeList",
        "typeList": [ctx.compact(t) for t in names],
    }
    return with_warnings(ngsi_response(body, accept=accept, context=context), remote.warnings)


@router.get("/types/{type}", summary="Details of an entity type")
async def type_details(call: Read, type: str) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    iri = ctx.expand(check_name(type, "entity type"))
    remote = await remote_discovery.ask(
        call.request, h.federation, tenant, "retrieveEntityTypeInfo",
        f"/types/{quote(type, safe=':')}", Wanted(types=[frozenset({iri})]),
    )  # fmt: skip
    info = await run_in_threadpool(h.entities.type_details, tenant, iri)
    local = None
    if info is not None:
        count, attrs = info
        from smartcity.hub import repository

        def sample() -> list[dict[str, Any]]:
            with h.entities.db.read() as conn:
                return repository.docs_of_type(conn, tenant, iri, limit=200)

        docs = await run_in_threadpool(sample)
        local = {
            "entityCount": count,
            "attributeDetails": [
                {"id": a, "attributeTypes": _attribute_types(docs, a)} for a in attrs
            ],
        }
    body = remote_discovery.type_info(iri, local, remote, ctx)
    if body is None:
        missing = error_response(ResourceNotFound(f"no entity of type {type} exists"))
        return with_warnings(missing, remote.warnings)
    return with_warnings(ngsi_response(body, accept=accept, context=context), remote.warnings)


@router.get("/attributes", summary="Retrieve available attributes")
async def list_attributes(call: Read, details: str | None = None) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    detailed = bool_param(details, "details")
    operation = "retrieveAttrTypeDetails" if detailed else "retrieveAttrTypes"
    remote = await remote_discovery.ask(
        call.request, h.federation, tenant, operation, "/attributes", Wanted()
    )
    attrs = await run_in_threadpool(h.entities.attributes, tenant)
    names = remote_discovery.attribute_list([a for a, _ in attrs], remote, ctx)
    if detailed:
        detailed_list = []
        for attr in names:
            info = await run_in_threadpool(h.entities.attribute_details, tenant, attr)
            merged = remote_discovery.attribute_info(
                attr, _local_attribute(attr, info), remote, ctx
            )
            if merged is not None:
                detailed_list.append(merged)
        response = ngsi_response(detailed_list, accept=accept, context=context)
        return with_warnings(response, remote.warnings)
    body = {
        "id": f"urn:ngsi-ld:AttributeList:{tenant or 'default'}",
        "type": "AttributeList",
        "attributeList": [ctx.compact(a) for a in names],
    }
    return with_warnings(ngsi_response(body, accept=accept, context=context), remote.warnings)


def _local_attribute(
    attr: str, info: tuple[int, list[str], list[dict[str, Any]]] | None
) -> dict[str, Any] | None:
    """The hub's own Attribute details, names expanded (None: no local entity has it)."""
    if info is None:
        return None
    count, types, docs = info
    return {
        "attributeCount": count,
        "attributeTypes": _attribute_types(docs, attr),
        "typeNames": types,
    }


@router.get("/attributes/{attrId}", summary="Details of an attribute")
async def attribute_details(call: Read, attrId: str) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    iri = ctx.expand(check_name(attrId))
    remote = await remote_discovery.ask(
        call.request, h.federation, tenant, "retrieveAttrTypeInfo",
        f"/attributes/{quote(attrId, safe=':')}", Wanted(attrs=[iri]),
    )  # fmt: skip
    info = await run_in_threadpool(h.entities.attribute_details, tenant, iri)
    body = remote_discovery.attribute_info(iri, _local_attribute(iri, info), remote, ctx)
    if body is None:
        missing = error_response(ResourceNotFound(f"no entity has an attribute {attrId}"))
        return with_warnings(missing, remote.warnings)
    return with_warnings(ngsi_response(body, accept=accept, context=context), remote.warnings)
