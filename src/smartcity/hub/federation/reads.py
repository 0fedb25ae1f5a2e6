"""The distributed versions of the read endpoints, called from hub/api/entities.py and
hub/api/temporal.py: one ``plan`` call, then the page window, then the merge.

Paging over several sources: a page at ``offset`` of ``limit`` needs the first
``offset + limit`` entities of every source (the hub's own included) to know which ones come
first once merged and de-duplicated. While that window is at most the page size limit, that is
what is fetched and the merged list is sliced (merged order: the hub's entities in their own
order, then each source's new ones, in registration order). Deeper pages are asked of every
source at the same offset and merged as they come (a page may then hold more than ``limit``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from smartcity.hub.federation.csf import csf_matches
from smartcity.hub.federation.forwarding import Answer, Distributed, Merged
from smartcity.hub.federation.matching import Wanted

if TYPE_CHECKING:
    from smartcity.hub.federation import Federation
    from smartcity.hub.query.qlang import QNode
    from smartcity.hub.querying import EntityQuery

Doc = dict[str, Any]
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


async def plan(
    request: Request,
    federation: Federation | None,
    tenant: str,
    operation: str,
    query: EntityQuery | None = None,
    *,
    attrs: list[str] | None = None,
    entity_id: str | None = None,
    body: Mapping[str, str | None] | None = None,
    context: Any = None,
    csf: QNode | None = None,
    registrations: set[str] | None = None,
) -> Distributed | None:
    """The forwarding of this read, or None when it stays local (no federation on this hub,
    no matching registration, or local=true). A POST query passes its ``body`` translated into
    GET parameters, and its @context, which is forwarded when one URL can convey it. ``csf``
    (clause 4.9) narrows the matching registrations down to those it holds for, and
    ``registrations`` (an EntityMap's) to those named."""
    if federation is None or federation.registrations.surely_none(tenant):
        return None
    params, link = None, None
    if body is not None:
        if context is not None and not isinstance(context, str):
            return None  # an inline @context: the sources could not read the names
        params = [(k, v) for k, v in body.items() if v is not None]
        params.extend((k, v) for k, v in request.query_params.multi_items() if k == "local")
        link = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"' if context else None
    if query is not None:
        wanted = Wanted(query.types, query.ids, query.id_pattern, attrs)
    else:
        wanted = Wanted(ids=[entity_id] if entity_id else None, attrs=attrs)
    dist = await federation.forwarder.plan(
        request, tenant, operation, wanted, params=params, link=link
    )
    if dist is not None and (csf is not None or registrations is not None):
        dist.targets = [
            t
            for t in dist.targets
            if (csf is None or csf_matches(csf, t.registration))
            and (registrations is None or t.registration["id"] in registrations)
        ]
        if not dist.targets:
            return None
    return dist


@dataclass
class Window:
    """What to read locally and what to ask the sources for, for one page."""

    limit: int
    offset: int
    remote: dict[str, str] = field(default_factory=dict)
    cut: tuple[int, int] | None = None  # (offset, limit) to slice the merged list

    @classmethod
    def of(
        cls, dist: Distributed | None, offset: int, limit: int, max_limit: int, count: bool
    ) -> Window:
        if dist is None:
            return cls(limit, offset)
        counted = {"count": "true"} if count else {}
        if offset + limit <= max_limit:
            remote = {"limit": str(offset + limit), "offset": "0", **counted}
            return cls(offset + limit, 0, remote, (offset, limit))
        return cls(limit, offset, {"limit": str(limit), "offset": str(offset), **counted})


async def merge_page(
    dist: Distributed,
    remote: asyncio.Task[list[Answer]],
    local: list[Doc],
    local_total: int | None,
    window: Window,
) -> tuple[list[Doc], int | None, list[str]]:
    """The merged page, its total (when counted) and the warnings."""
    merged: Merged = await dist.merged(remote, local)
    entities = merged.entities
    if window.cut is not None:
        offset, limit = window.cut
        entities = entities[offset : offset + limit]
    total = None
    if local_total is not None:
        duplicates = merged.remote_fetched - merged.remote_only
        total = local_total + merged.remote_total - duplicates
    return entities, total, merged.warnings


async def merge_one(
    dist: Distributed, remote: asyncio.Task[list[Answer]], local: Doc | None
) -> tuple[Doc | None, list[str]]:
    """One entity from the hub's own (if any) and the sources' answers; None if nobody has it."""
    merged = await dist.merged(remote, [local] if local is not None else [], one=True)
    return (merged.entities[0] if merged.entities else None), merged.warnings
