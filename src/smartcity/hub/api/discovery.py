"""Discovery: /types, /types/{type}, /attributes, /attributes/{attr} (clause 5.7.5-5.7.10)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param
from smartcity.hub.api.negotiation import ngsi_response
from smartcity.hub.api.preamble import Read
from smartcity.hub.entity import check_name
from smartcity.hub.errors import ResourceNotFound

router = APIRouter(tags=["Context Information"])


def _attribute_types(docs: list[dict[str, Any]], iri: str) -> list[str]:
    kinds = {inst["type"] for d in docs for inst in d["attrs"].get(iri, [])}
    return sorted(kinds)


@router.get("/types", summary="Retrieve available entity types")
async def list_types(call: Read, details: str | None = None) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    types = await run_in_threadpool(h.entities.types, tenant)
    if bool_param(details, "details"):
        detailed = []
        for etype, _ in types:
            info = await run_in_threadpool(h.entities.type_details, tenant, etype)
            attrs = info[1] if info else []
            detailed.append(
                {
                    "id": etype,
                    "type": "EntityType",
                    "typeName": ctx.compact(etype),
                    "attributeNames": [ctx.compact(a) for a in attrs],
                }
            )
        return ngsi_response(detailed, accept=accept, context=context)
    body = {
        "id": f"urn:ngsi-ld:EntityTypeList:{tenant or 'default'}",
        "type": "EntityTypeList",
        "typeList": [ctx.compact(t) for t, _ in types],
    }
    return ngsi_response(body, accept=accept, context=context)


@router.get("/types/{type}", summary="Details of an entity type")
async def type_details(call: Read, type: str) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    iri = ctx.expand(check_name(type, "entity type"))
    info = await run_in_threadpool(h.entities.type_details, tenant, iri)
    if info is None:
        raise ResourceNotFound(f"no entity of type {type} exists")
    count, attrs = info
    from smartcity.hub import repository

    def sample() -> list[dict[str, Any]]:
        with h.entities.db.read() as conn:
            return repository.docs_of_type(conn, tenant, iri, limit=200)

    docs = await run_in_threadpool(sample)
    body = {
        "id": iri,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact(iri),
        "entityCount": count,
        "attributeDetails": [
            {
                "id": a,
                "type": "Attribute",
                "attributeName": ctx.compact(a),
                "attributeTypes": _attribute_types(docs, a),
            }
            for a in attrs
        ],
    }
    return ngsi_response(body, accept=accept, context=context)


@router.get("/attributes", summary="Retrieve available attributes")
async def list_attributes(call: Read, details: str | None = None) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    attrs = await run_in_threadpool(h.entities.attributes, tenant)
    if bool_param(details, "details"):
        detailed = []
        for attr, _count in attrs:
            info = await run_in_threadpool(h.entities.attribute_details, tenant, attr)
            if info is None:
                continue
            detailed.append(_attribute_body(attr, ctx, *info))
        return ngsi_response(detailed, accept=accept, context=context)
    body = {
        "id": f"urn:ngsi-ld:AttributeList:{tenant or 'default'}",
        "type": "AttributeList",
        "attributeList": [ctx.compact(a) for a, _ in attrs],
    }
    return ngsi_response(body, accept=accept, context=context)


def _attribute_body(
    attr: str, ctx: Any, count: int, types: list[str], docs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": attr,
        "type": "Attribute",
        "attributeName": ctx.compact(attr),
        "attributeCount": count,
        "attributeTypes": _attribute_types(docs, attr),
        "typeNames": [ctx.compact(t) for t in types],
    }


@router.get("/attributes/{attrId}", summary="Details of an attribute")
async def attribute_details(call: Read, attrId: str) -> Response:
    h, tenant, context, ctx = call.hub, call.tenant, call.context, call.ctx
    accept = call.accept()
    iri = ctx.expand(check_name(attrId))
    info = await run_in_threadpool(h.entities.attribute_details, tenant, iri)
    if info is None:
        raise ResourceNotFound(f"no entity has an attribute {attrId}")
    return ngsi_response(_attribute_body(iri, ctx, *info), accept=accept, context=context)
