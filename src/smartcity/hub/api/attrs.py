"""Attribute endpoints: /entities/{id}/attrs and /entities/{id}/attrs/{attr} (clause 5.6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param, parse_options
from smartcity.hub.api.entities import BODY, _update_response
from smartcity.hub.api.negotiation import decode
from smartcity.hub.api.preamble import Call, EntityTypeHint, Manage, Write
from smartcity.hub.entity import (
    ENTITY_MEMBERS,
    check_name,
    check_uri,
    parse_attribute,
    parse_attributes,
    parse_scope,
    parse_types,
)
from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation import write_ops, writes
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.service import UpdateResult

router = APIRouter(tags=["Context Information"])


@router.post(
    "/entities/{entityId:path}/attrs", openapi_extra=BODY, summary="Append entity attributes"
)
async def append_attrs(
    call: Write, entityId: str, _type: EntityTypeHint, options: str | None = None
) -> Response:
    h, tenant, request = call.hub, call.tenant, call.request
    check_uri(entityId, "entity id")
    opts = parse_options(options, {"noOverwrite"})
    decoded = await decode(request, h.contexts, h.settings.limits)
    body = decoded.body
    if not isinstance(body, dict):
        raise BadRequestData("the attributes must be a JSON object")
    if "id" in body and body["id"] != entityId:
        raise BadRequestData(f"the body's id {body['id']!r} differs from the URL's {entityId}")
    types = parse_types(body["type"], decoded.active) if "type" in body else None
    scope = parse_scope(body["scope"]) if "scope" in body else None
    attrs = parse_attributes(body, decoded.active)
    if not attrs and types is None and scope is None:
        raise BadRequestData("the body names no attribute to append")

    def append(names: set[str]) -> UpdateResult:
        return h.entities.append_attrs(
            tenant,
            entityId,
            {k: v for k, v in attrs.items() if k in names},
            no_overwrite="noOverwrite" in opts,
            types=types,
            scope=scope,
        )

    answer = await _distributed_attrs_write(
        call, "appendAttrs", "POST", entityId, "attrs", body, set(attrs), decoded.active,
        append, types=types,
    )  # fmt: skip
    if answer is not None:
        return answer
    result = await run_in_threadpool(append, set(attrs))
    return _update_response(result, decoded.active)


async def _distributed_attrs_write(
    call: Call,
    operation: str,
    method: str,
    entity_id: str,
    path: str,
    body: dict[str, Any] | None,
    names: set[str],
    ctx: ActiveContext,
    write: Callable[[set[str]], UpdateResult | None],
    *,
    types: list[str] | None = None,
) -> Response | None:
    """An attribute write on an entity that registered sources (also) hold (clause 4.3.6);
    None when no registration offering ``operation`` is about it."""
    tenant, h = call.tenant, call.hub
    w = await writes.plan(call.request, h.federation.forwarder, tenant, operation)
    if w is None:
        return None
    if types is None:
        types = await write_ops.known_types(h.entities, tenant, entity_id)
    parts = ("attrs",) if path == "attrs" else ("attrs", path)

    async def here(local_names: set[str]) -> UpdateResult | None:
        return await run_in_threadpool(write, local_names)

    return await write_ops.attrs_write(
        w, method=method, entity_id=entity_id, types=types,
        path=writes.entity_url(entity_id, *parts), body=body, names=names, ctx=ctx, local=here,
        narrow=path == "attrs",
    )  # fmt: skip


@router.patch(
    "/entities/{entityId:path}/attrs", openapi_extra=BODY, summary="Update entity attributes"
)
async def update_attrs(call: Write, entityId: str, _type: EntityTypeHint) -> Response:
    h, tenant, request = call.hub, call.tenant, call.request
    check_uri(entityId, "entity id")
    decoded = await decode(request, h.contexts, h.settings.limits)
    if not isinstance(decoded.body, dict):
        raise BadRequestData("the attributes must be a JSON object")
    fragment = {k: v for k, v in decoded.body.items() if k not in ENTITY_MEMBERS}
    if not fragment:
        raise BadRequestData("the body names no attribute to update")
    attrs = parse_attributes(fragment, decoded.active)

    def update(names: set[str]) -> UpdateResult:
        part = {k: v for k, v in attrs.items() if k in names}
        return h.entities.update_attrs(tenant, entityId, part)

    answer = await _distributed_attrs_write(
        call, "updateEntity", "PATCH", entityId, "attrs", decoded.body, set(attrs),
        decoded.active, update,
    )  # fmt: skip
    if answer is not None:
        return answer
    result = await run_in_threadpool(update, set(attrs))
    return _update_response(result, decoded.active)


@router.patch(
    "/entities/{entityId:path}/attrs/{attrId}",
    status_code=204,
    openapi_extra=BODY,
    summary="Partial attribute update",
)
async def patch_attr(call: Write, entityId: str, attrId: str, _type: EntityTypeHint) -> Response:
    return await patch_attribute(call, entityId, attrId)


async def patch_attribute(call: Call, entity_id: str, attr_id: str) -> Response:
    """Partial attribute update; shared by the route above and the lean path (api/hot.py)."""
    h, tenant, request = call.hub, call.tenant, call.request
    check_uri(entity_id, "entity id")
    decoded = await decode(request, h.contexts, h.settings.limits)
    body = decoded.body
    if not isinstance(body, dict) or not body:
        raise BadRequestData("the attribute fragment must be a non-empty JSON object")
    iri = decoded.active.expand(check_name(attr_id))
    patch = _parse_fragment(attr_id, body, decoded.active)
    if not h.federation.registrations.surely_none(tenant):  # the lean path's one extra check
        answer = await _distributed_attrs_write(
            call, "updateAttrs", "PATCH", entity_id, attr_id, body, {iri}, decoded.active,
            lambda _: h.entities.patch_attr(tenant, entity_id, iri, patch, attr_id),
        )  # fmt: skip
        if answer is not None:
            return answer
    await h.entities.patch_attr_async(tenant, entity_id, iri, patch, attr_id)
    return Response(status_code=204)


def _parse_fragment(name: str, body: dict[str, Any], ctx: ActiveContext) -> dict[str, Any]:
    """A partial update may omit the value or the type; validate what is there."""
    from smartcity.hub.entity import KEY_TYPE, VALUE_KEY, parse_instance

    declared = body.get("type")
    has_value = any(k in body for k in KEY_TYPE)
    if has_value or declared in VALUE_KEY:
        try:
            return parse_instance(name, body, ctx)
        except BadRequestData:
            if has_value:
                raise
    if declared is not None and declared not in VALUE_KEY:
        raise BadRequestData(
            f"attribute {name!r} has type {declared!r}; expected one of {', '.join(VALUE_KEY)}"
        )
    # Only metadata or sub-attributes: validate them as an instance with a placeholder value.
    probe = parse_instance(name, {**body, "type": "Property", "value": 0}, ctx)
    probe.pop("value")
    if declared is None:
        probe.pop("type")
    else:
        probe["type"] = declared  # the merge refuses a new type that comes without its value
    return probe


@router.put(
    "/entities/{entityId:path}/attrs/{attrId}",
    status_code=204,
    openapi_extra=BODY,
    summary="Replace attribute",
)
async def replace_attr(call: Write, entityId: str, attrId: str, _type: EntityTypeHint) -> Response:
    h, tenant, request = call.hub, call.tenant, call.request
    check_uri(entityId, "entity id")
    if attrId in ENTITY_MEMBERS:
        raise BadRequestData(
            f"{attrId} is an entity member, not an attribute; PUT cannot replace it"
        )
    decoded = await decode(request, h.contexts, h.settings.limits)
    iri = decoded.active.expand(check_name(attrId))
    instances = parse_attribute(attrId, _strip_context(decoded.body), decoded.active)
    body = decoded.body if isinstance(decoded.body, dict) else None
    answer = await _distributed_attrs_write(
        call, "replaceAttrs", "PUT", entityId, attrId, body, {iri}, decoded.active,
        lambda _: h.entities.replace_attr(tenant, entityId, iri, instances, attrId),
    )  # fmt: skip
    if answer is not None:
        return answer
    await run_in_threadpool(h.entities.replace_attr, tenant, entityId, iri, instances, attrId)
    return Response(status_code=204)


def _strip_context(body: object) -> object:
    if isinstance(body, dict) and "@context" in body:
        return {k: v for k, v in body.items() if k != "@context"}
    return body


@router.delete(
    "/entities/{entityId:path}/attrs/{attrId}", status_code=204, summary="Delete attribute"
)
async def delete_attr(
    call: Manage,
    entityId: str,
    attrId: str,
    _type: EntityTypeHint,
    datasetId: str | None = None,
    deleteAll: str | None = None,
) -> Response:
    h, tenant = call.hub, call.tenant
    check_uri(entityId, "entity id")
    if attrId == "scope":  # scope is an entity member, but clients delete it like an attribute
        await run_in_threadpool(h.entities.delete_scope, tenant, entityId)
        return Response(status_code=204)
    iri = call.ctx.expand(check_name(attrId))
    if datasetId is not None:
        check_uri(datasetId, "datasetId")
    delete_all = bool_param(deleteAll, "deleteAll")

    def delete(_: set[str]) -> None:
        h.entities.delete_attr(
            tenant, entityId, iri, attrId, dataset_id=datasetId, delete_all=delete_all
        )

    answer = await _distributed_attrs_write(
        call, "deleteAttrs", "DELETE", entityId, attrId, None, {iri}, call.ctx, delete
    )
    if answer is not None:
        return answer
    await run_in_threadpool(delete, {iri})
    return Response(status_code=204)
