"""EntityMap endpoints (/entityMap/{id}, clause 5.14) and the ``entityMap`` parameter and
``NGSILD-EntityMap`` header of Query and Retrieve Entities (see ``smartcity.hub.entity_maps``).

The v1.8.1 OpenAPI names the query parameter of ``Query.entityMap`` ``details`` (a slip: its
description and the Query body's member say entityMap); the hub takes ``entityMap``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import bool_param
from smartcity.hub.api.negotiation import OBJECT_BODY, decode, ngsi_response
from smartcity.hub.api.preamble import Call, Read, Write
from smartcity.hub.entity import Doc
from smartcity.hub.entity_maps import (
    HEADER,
    LOCAL,
    MAX_MAPPED,
    EntityMap,
    EntityMapService,
    location,
    map_id_of_header,
)
from smartcity.hub.federation.forwarding import Answer
from smartcity.hub.querying import EntityQuery

router = APIRouter(tags=["Entity Map Operations"])


def service(call: Call) -> EntityMapService:
    return EntityMapService(call.hub.db)


@dataclass
class MapUse:
    """What a read does with EntityMaps: make one (``entityMap=true``), read by one (the
    ``NGSILD-EntityMap`` header), or neither."""

    make: bool = False
    used: EntityMap | None = None
    local_empty: bool = False  # the map holds none of the hub's own entities

    @property
    def registrations(self) -> set[str] | None:
        """The sources to ask: those the map names (None: as the query's registrations say)."""
        return self.used.registrations() if self.used is not None else None


async def map_use(call: Call, entity_map: str | bool | None) -> MapUse:
    make = entity_map if isinstance(entity_map, bool) else bool_param(entity_map, "entityMap")
    header = call.request.headers.get(HEADER.lower())
    if not header:
        return MapUse(make)
    map_id = map_id_of_header(header)
    used = await run_in_threadpool(service(call).get, call.tenant, map_id)
    return MapUse(make, used)


def narrow(use: MapUse, query: EntityQuery) -> None:
    """Select the map's own entities only (within the query's ids, if it has some)."""
    if use.used is None:
        return
    local = use.used.local_ids()
    if query.ids:
        given = set(query.ids)
        local = [i for i in local if i in given]
    query.ids = local
    use.local_empty = not local


def remote_places(remote: asyncio.Task[list[Answer]] | None) -> list[tuple[str, str]]:
    """(entity id, registration id) of what the sources answered, once ``remote`` is done."""
    if remote is None or not remote.done() or remote.cancelled() or remote.exception():
        return []
    places: list[tuple[str, str]] = []
    for answer in remote.result():
        body = answer.body
        items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                places.append((item["id"], answer.target.registration["id"]))
    return places


async def finish(
    call: Call,
    use: MapUse,
    query: EntityQuery | None,
    local_ids: Iterable[str] = (),
    remote: asyncio.Task[list[Answer]] | None = None,
) -> dict[str, str]:
    """The NGSILD-EntityMap response header: the map used, or the one made now (every entity
    ``query`` selects, or ``local_ids`` for a retrieval, and the sources' answers)."""
    if use.used is not None:
        return {HEADER: location(use.used.id)}
    if not use.make:
        return {}
    h, tenant = call.hub, call.tenant
    ids = list(local_ids)
    if query is not None:
        docs, _ = await run_in_threadpool(
            h.entities.find, tenant, query, limit=MAX_MAPPED + 1, offset=0
        )
        ids = [d["id"] for d in docs]
    places = [(i, LOCAL) for i in ids] + remote_places(remote)
    made = await run_in_threadpool(service(call).create, tenant, places)
    return {HEADER: location(made.id)}


@router.get("/entityMap/{entityMapId:path}", summary="Retrieve EntityMap")
async def retrieve_entity_map(call: Read, entityMapId: str) -> Response:
    accept = call.accept()
    found = await run_in_threadpool(service(call).get, call.tenant, entityMapId)
    body: Doc = found.render()
    return ngsi_response(body, accept=accept, context=call.context)


@router.patch(
    "/entityMap/{entityMapId:path}",
    status_code=204,
    openapi_extra=OBJECT_BODY,
    summary="Update EntityMap",
)
async def update_entity_map(call: Write, entityMapId: str) -> Response:
    h = call.hub
    decoded = await decode(call.request, h.contexts, h.settings.limits, allow_merge_patch=True)
    await run_in_threadpool(service(call).update, call.tenant, entityMapId, decoded.body)
    return Response(status_code=204)


@router.delete("/entityMap/{entityMapId:path}", status_code=204, summary="Delete EntityMap")
async def delete_entity_map(call: Write, entityMapId: str) -> Response:
    await run_in_threadpool(service(call).delete, call.tenant, entityMapId)
    return Response(status_code=204)
