"""The distributed versions of the write endpoints (see ``writes`` for who receives what).

Each function returns the response to send, or None when no registration is about the
entity, in which case the endpoint carries on with its usual local write. The hub's own part
and the sources' parts run concurrently; the answer waits at most for the slowest source's
timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.federation.writes import (
    Outcome,
    Sent,
    Writes,
    empty_response,
    entity_url,
    json_response,
    local_doc,
    only_missing,
    part_of,
    run_local,
)
from smartcity.hub.jsonld import ActiveContext

if TYPE_CHECKING:
    from smartcity.hub.service import BatchResult, EntityService, UpdateResult

Doc = dict[str, Any]


async def known_types(entities: EntityService, tenant: str, entity_id: str) -> list[str] | None:
    """The types of the hub's own copy of an entity, to match registrations by type when the
    request does not say (None: the hub does not hold it)."""
    try:
        doc = await entities.get_async(tenant, entity_id)
    except ResourceNotFound:
        return None
    types = doc.get("type")
    return list(types) if types else None


# -- single entity --------------------------------------------------------------------------------
async def entity_write(
    w: Writes,
    *,
    method: str,
    entity_id: str,
    types: Sequence[str] | None,
    body: Doc | None,
    doc: Doc | None,
    ctx: ActiveContext | None,
    local: Callable[[Doc | None], Awaitable[Any]],
    created: bool = False,
    location: str | None = None,
) -> Response | None:
    """createEntity, mergeEntity, replaceEntity, deleteEntity: 201/204 when every part was
    written, else 207 with a BatchOperationResult."""
    names = set(doc["attrs"]) if doc is not None else set()
    split = w.split(entity_id, types, names)
    if not split.routes:
        return None
    path = "/entities" if created else entity_url(entity_id)
    requests = [(r.registration, method, path,
                 part_of(body, r.names, ctx) if body is not None and ctx else None)
                for r in split.routes]  # fmt: skip
    outcome = Outcome(entity_id)

    async def mine() -> None:
        if split.local:
            outcome.local_done = True
            _, outcome.local_error = await run_local(
                lambda: local(local_doc(doc, split.taken) if doc is not None else None)
            )

    sent, _ = await asyncio.gather(w.send_all(requests), mine())
    outcome.sent = sent
    _forgive_local_absence(outcome)
    warnings = w.warnings(sent)
    if only_missing(outcome) and not created:
        raise ResourceNotFound(f"entity {entity_id} does not exist here nor in its sources")
    if outcome.all_ok():
        if created:
            return empty_response(201, warnings, {"Location": location or ""})
        return empty_response(204, warnings)
    return json_response(outcome.batch_result(), 207, warnings)


def _forgive_local_absence(outcome: Outcome) -> None:
    """An entity the hub does not hold but a source wrote is not an error of the hub's."""
    if isinstance(outcome.local_error, ResourceNotFound) and any(s.ok for s in outcome.sent):
        outcome.local_error = None
        outcome.local_done = False


# -- attributes -----------------------------------------------------------------------------------
async def attrs_write(
    w: Writes,
    *,
    method: str,
    entity_id: str,
    types: Sequence[str] | None,
    path: str,
    body: Doc | None,
    names: set[str],
    ctx: ActiveContext,
    local: Callable[[set[str]], Awaitable[UpdateResult | None]],
    narrow: bool = True,
) -> Response | None:
    """appendAttrs, updateEntity, updateAttrs, replaceAttrs, deleteAttrs: 204 when every
    attribute was written, else 207 with an UpdateResult whose notUpdated entries name the
    registration of a source's part. ``narrow``: the body maps attribute names to
    attributes (and each source gets its own); else it is one attribute's, sent whole."""
    split = w.split(entity_id, types, names)
    if not split.routes:
        return None
    requests = [(r.registration, method, path,
                 part_of(body, r.names, ctx) if body is not None and narrow else body)
                for r in split.routes]  # fmt: skip
    local_names = names - split.taken
    outcome = Outcome(entity_id)
    result: list[UpdateResult | None] = [None]

    async def mine() -> None:
        if split.local:
            outcome.local_done = True
            result[0], outcome.local_error = await run_local(lambda: local(local_names))

    sent, _ = await asyncio.gather(w.send_all(requests), mine())
    outcome.sent = sent
    _forgive_local_absence(outcome)
    warnings = w.warnings(sent)
    if only_missing(outcome):
        raise ResourceNotFound(f"entity {entity_id} does not exist here nor in its sources")
    updated: list[str] = []
    not_updated: list[Doc] = []
    if outcome.local_done:
        if outcome.local_error is not None:
            reason = outcome.local_error.detail
            not_updated += [{"attributeName": n, "reason": reason} for n in sorted(local_names)]
        elif result[0] is not None:
            updated += result[0].updated
            not_updated += [{"attributeName": n, "reason": why} for n, why in result[0].not_updated]
        else:
            updated += sorted(local_names)
    for route, s in zip(split.routes, sent, strict=True):
        forwarded = names if route.names is None else route.names
        _source_update_result(s, forwarded, ctx, updated, not_updated)
    if not not_updated:
        return empty_response(204, warnings)
    body_out = {
        "updated": list(dict.fromkeys(ctx.compact(n) for n in updated)),
        "notUpdated": [
            {**entry, "attributeName": ctx.compact(entry["attributeName"])} for entry in not_updated
        ],
    }
    return json_response(body_out, 207, warnings)


def _source_update_result(sent: Sent, forwarded: set[str], ctx: ActiveContext,
                          updated: list[str], not_updated: list[Doc]) -> None:  # fmt: skip
    reg_id = sent.registration["id"]
    if sent.status == 207 and isinstance(sent.body, dict):
        failed = {}
        for entry in sent.body.get("notUpdated", []):
            if isinstance(entry, dict) and isinstance(entry.get("attributeName"), str):
                failed[ctx.expand(entry["attributeName"])] = str(entry.get("reason", ""))
        for name in sorted(forwarded):
            if name in failed:
                not_updated.append(
                    {"attributeName": name, "reason": failed[name], "registrationId": reg_id}
                )
            else:
                updated.append(name)
        return
    if sent.ok:
        updated.extend(sorted(forwarded))
        return
    problem = sent.problem()
    reason = str(problem.get("detail") or problem.get("title") or "the source failed")
    not_updated += [
        {"attributeName": n, "reason": reason, "registrationId": reg_id} for n in sorted(forwarded)
    ]


# -- batches --------------------------------------------------------------------------------------
@dataclass
class BatchItem:
    """One entity of a batch: its id, the client's JSON, its parsed form (None for a delete)
    and the @context its names were expanded with."""

    entity_id: str
    body: Any
    doc: Doc | None
    ctx: ActiveContext | None


@dataclass
class BatchOutcome:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[Doc] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def batch_write(
    w: Writes,
    *,
    path: str,
    items: Sequence[BatchItem],
    types_of: Callable[[str], Awaitable[list[str] | None]],
    local: Callable[[list[BatchItem]], Awaitable[BatchResult]],
) -> BatchOutcome | None:
    """createBatch, upsertBatch, updateBatch, mergeBatch, deleteBatch: one request per
    source with its share of every entity; None when no entity is about a registration."""
    per_source: dict[str, tuple[Doc, list[Any], list[str]]] = {}
    local_items: list[BatchItem] = []
    for item in items:
        doc = item.doc
        types = doc.get("type") if doc is not None else None
        if types is None:
            types = await types_of(item.entity_id)
        names = set(doc["attrs"]) if doc is not None else set()
        split = w.split(item.entity_id, types, names)
        for route in split.routes:
            reg = route.registration
            entry = per_source.setdefault(reg["id"], (reg, [], []))
            part = item.body
            if doc is not None and item.ctx is not None:
                part = part_of(item.body, route.names, item.ctx)
            entry[1].append(part)
            entry[2].append(item.entity_id)
        if split.local:
            reduced = local_doc(doc, split.taken) if doc is not None else None
            local_items.append(BatchItem(item.entity_id, item.body, reduced, item.ctx))
    if not per_source:
        return None
    requests = [(reg, "POST", path, parts) for reg, parts, _ in per_source.values()]
    local_result: list[BatchResult | None] = [None]

    async def mine() -> None:
        if local_items:
            local_result[0] = await local(local_items)

    sent, _ = await asyncio.gather(w.send_all(requests), mine())
    out = BatchOutcome(warnings=w.warnings(sent))
    if local_result[0] is not None:
        res = local_result[0]
        out.success += res.success
        out.created += res.created
        out.errors += [{"entityId": i, "error": e.problem()} for i, e in res.errors]
    for (_, _, ids), s in zip(per_source.values(), sent, strict=True):
        _source_batch_result(s, ids, out)
    # An entity the hub does not hold but a source wrote is not an error of the hub's; an
    # entity is a success when any part of it was written (its failed parts are errors).
    written = set(out.success)
    out.errors = [
        e for e in out.errors
        if not ("registrationId" not in e and e["error"].get("status") == 404
                and e["entityId"] in written)
    ]  # fmt: skip
    out.success = list(dict.fromkeys(out.success))
    out.created = list(dict.fromkeys(out.created))
    return out


def _source_batch_result(sent: Sent, ids: list[str], out: BatchOutcome) -> None:
    reg_id = sent.registration["id"]
    if sent.status == 207 and isinstance(sent.body, dict):
        out.success += [i for i in sent.body.get("success", []) if isinstance(i, str)]
        for error in sent.body.get("errors", []):
            if isinstance(error, dict):
                out.errors.append({**error, "registrationId": reg_id})
        return
    if sent.ok:
        out.success += ids
        if sent.status == 201 and isinstance(sent.body, list):
            out.created += [i for i in sent.body if isinstance(i, str)]
        return
    problem = sent.problem()
    out.errors += [{"entityId": i, "registrationId": reg_id, "error": problem} for i in ids]


def batch_response(out: BatchOutcome, errors: list[Doc], *, kind: str) -> Response:
    """The batch's answer: ``errors`` are those found while parsing the request."""
    all_errors = errors + out.errors
    if all_errors:
        body = {"success": out.success, "errors": all_errors}
        return json_response(body, 207, out.warnings)
    if kind == "create":
        return json_response(out.success, 201, out.warnings)
    if kind == "upsert" and out.created:
        return json_response(out.created, 201, out.warnings)
    return empty_response(204, out.warnings)
