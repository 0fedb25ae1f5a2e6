"""Linked Entity Retrieval (clause 4.5.23): ``join=inline|flat`` and ``joinLevel``.

A Relationship (or ListRelationship) names other entities; with ``join`` the hub returns them
too, following links up to ``joinLevel`` hops:

* ``inline``: the target is embedded in the relationship, as ``entity`` (``entityList`` for a
  ListRelationship); in keyValues the relationship's value *is* the target entity.
* ``flat``: the targets are extra members of the result array, each entity once.

The attribute projection language (clause 4.21) carries pick/omit to linked entities with
braces: ``pick=id,locatedAt{id,name}`` keeps id and locatedAt on the entity and id and name on
the entity locatedAt points to. A member without braces leaves its linked entities whole, and
only relationships that survive the projection are followed.

Targets are loaded in batches, one ``EntityService.find`` per level, in the request's tenant,
and rendered with the parent's format, sysAttrs and lang. A target that does not exist (or
whose type differs from the relationship's ``objectType``) is left as a plain reference; a
link back to an entity already on the path (A -> B -> A) is not followed again, nor is a link
to an entity the client lists in ``containedBy`` ("entity ids which have previously been
encountered whilst retrieving the Entity Graph": a broker asked by another for one more level
of a graph leaves out what the asker already holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from smartcity.hub.entity import Doc, check_name, check_uri, render_entity
from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService

JOIN_MODES = ("inline", "flat")
# joinLevel is capped: every level costs a query, and a graph deeper than this is not what a
# client reading one response wants.
MAX_JOIN_LEVEL = 10
# Inline rendering copies a target once per link to it; this bounds the copies per request.
MAX_LINKED_ENTITIES = 10_000
CORE_MEMBERS = ("id", "type", "scope")


# -- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """One level of a pick/omit expression: the members named, in order, and for a member
    written with braces the projection of the entities it links to."""

    names: tuple[str, ...]
    nested: Mapping[str, Projection] = field(default_factory=dict)


def parse_projection(text: str, what: str) -> Projection:
    """Parse ``a,b{c,d{e}}`` (clause 4.21); 400 for empty names and unbalanced braces."""
    projection, end = _parse_list(text, 0, what, depth=0)
    if end != len(text):
        raise BadRequestData(f"{what}: unexpected '}}' at position {end} in {text!r}")
    return projection


def _parse_list(text: str, pos: int, what: str, depth: int) -> tuple[Projection, int]:
    if depth > MAX_JOIN_LEVEL:
        raise BadRequestData(f"{what} nests braces more than {MAX_JOIN_LEVEL} levels deep")
    names: list[str] = []
    nested: dict[str, Projection] = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",{}":
            pos += 1
        name = text[start:pos].strip()
        if not name:
            raise BadRequestData(
                f"{what}: a member name is missing at position {start} in {text!r} "
                "(write names separated by single commas, e.g. id,locatedAt{name})"
            )
        check_name(name, f"{what} member")
        if name not in names:
            names.append(name)
        if pos < len(text) and text[pos] == "{":
            if name in CORE_MEMBERS:
                raise BadRequestData(f"{what}: {name} links to no entity, it cannot take braces")
            if name in nested:
                raise BadRequestData(f"{what} gives {name!r} two projections")
            nested[name], pos = _parse_list(text, pos + 1, what, depth + 1)
            if pos >= len(text) or text[pos] != "}":
                raise BadRequestData(f"{what}: the brace after {name!r} is not closed")
            pos += 1
        if pos >= len(text) or text[pos] == "}":
            return Projection(tuple(names), nested), pos
        if text[pos] == "{":
            raise BadRequestData(f"{what}: unexpected '{{' at position {pos} in {text!r}")
        pos += 1  # the comma


@dataclass(frozen=True)
class Join:
    mode: str  # "inline" or "flat"
    level: int


def parse_join(join: str | None, join_level: str | None) -> Join | None:
    """``join`` and ``joinLevel`` as given in a query string; None when no join is asked for.

    joinLevel is "only applicable if join is present": without join (or with join=@none) a
    well-formed joinLevel is ignored, a malformed one is still refused. An empty value is an
    absent one, as for the hub's other parameters (``limit=``)."""
    level = 1
    if join_level:
        text = join_level.strip()
        if not text.isdigit() or not text.isascii():
            raise BadRequestData(f"joinLevel must be a positive whole number, got {join_level!r}")
        level = int(text)
        if not 1 <= level <= MAX_JOIN_LEVEL:
            raise BadRequestData(
                f"joinLevel must be between 1 and {MAX_JOIN_LEVEL}, got {join_level!r}"
            )
    if not join or join == "@none":
        return None
    if join not in JOIN_MODES:
        raise BadRequestData(f"join must be inline, flat or @none, got {join!r}")
    return Join(join, level)


@dataclass(frozen=True)
class LinkRequest:
    """What a request asks of linked entities. ``pick``/``omit`` are the top level's members
    (braces removed) for ``params.parse_selection``."""

    join: Join | None
    pick: str | None
    omit: str | None
    nested: Mapping[str, Projection]
    picking: bool  # the nested projections are picks (else omits)
    # containedBy: entities the client already holds, never linked again
    contained_by: frozenset[str] = frozenset()


def parse_contained_by(value: str | list[str] | None) -> frozenset[str]:
    """``containedBy``: entity ids (a comma-separated parameter or a Query body's array)."""
    if value is None:
        return frozenset()
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise BadRequestData("containedBy must list entity ids (URIs), separated by commas")
    return frozenset(check_uri(n, "containedBy entry") for n in names)


def parse_request(
    join: str | None,
    join_level: str | None,
    pick: str | None,
    omit: str | None,
    contained_by: str | list[str] | None = None,
) -> LinkRequest:
    parsed = parse_join(join, join_level)
    seen = parse_contained_by(contained_by)
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    raw = pick if pick is not None else omit
    if raw is None:
        return LinkRequest(parsed, None, None, {}, False, seen)
    what = "pick" if pick is not None else "omit"
    projection = parse_projection(raw, what)
    if pick is not None:
        return LinkRequest(parsed, ",".join(projection.names), None, projection.nested, True, seen)
    # omit=locatedAt{name} omits name from the linked entity, not locatedAt itself.
    top = [n for n in projection.names if n not in projection.nested]
    return LinkRequest(parsed, None, ",".join(top) or None, projection.nested, False, seen)


# -- resolving -------------------------------------------------------------------------------


class Selected(Protocol):
    """What the parent entities were rendered with (``api.params.Selection``)."""

    attrs: list[str] | None
    pick: set[str] | None
    omit: set[str] | None


@dataclass(frozen=True)
class View:
    """How entities are rendered: the parent's options, shared by its linked entities."""

    ctx: ActiveContext
    fmt: str = "normalized"
    sys_attrs: bool = False
    lang: str | None = None


@dataclass
class _Node:
    """A rendered entity whose relationships may still be followed."""

    doc: Doc
    out: dict[str, Any]
    attrs: set[str] | None
    pick: set[str] | None
    omit: set[str] | None
    nested: Mapping[str, Projection]  # by expanded attribute name
    path: frozenset[str]  # the entity ids from the top down to this one


@dataclass
class _Link:
    node: _Node
    iri: str
    key: str  # the attribute's name in node.out
    index: int  # instance index among the attribute's rendered instances
    inst: dict[str, Any]
    targets: list[str]


def _targets(inst: dict[str, Any]) -> list[str]:
    if inst.get("type") == "Relationship":
        value = inst.get("object")
        return [value] if isinstance(value, str) else list(value or [])
    if inst.get("type") == "ListRelationship":
        return list(inst.get("objectList") or [])
    return []


def _members(names: Iterable[str], ctx: ActiveContext) -> set[str]:
    return {n if n in CORE_MEMBERS else ctx.expand(n) for n in names}


def _by_iri(nested: Mapping[str, Projection], ctx: ActiveContext) -> dict[str, Projection]:
    return {ctx.expand(name): p for name, p in nested.items()}


def resolve(
    entities: EntityService,
    tenant: str,
    docs: list[Doc],
    rendered: list[dict[str, Any]],
    view: View,
    request: LinkRequest,
    *,
    attrs: Iterable[str] | None = None,
    pick: set[str] | None = None,
    omit: set[str] | None = None,
) -> list[tuple[Doc, dict[str, Any]]]:
    """Follow the links of ``docs`` (rendered as ``rendered`` with ``attrs``/``pick``/``omit``)
    as ``request.join`` says. Inline targets are written into ``rendered``; the flat ones are
    returned, as (stored document, rendered entity) pairs in the order found."""
    join = request.join
    if join is None:
        return []
    ctx = view.ctx
    nested = _by_iri(request.nested, ctx)
    frontier = [
        _Node(
            doc,
            out,
            set(attrs) if attrs is not None else None,
            pick,
            omit,
            nested,
            frozenset([doc["id"]]) | request.contained_by,
        )
        for doc, out in zip(docs, rendered, strict=True)
    ]
    seen = {doc["id"] for doc in docs} | request.contained_by  # flat: every entity once
    flat: list[tuple[Doc, dict[str, Any]]] = []
    loaded: dict[str, Doc | None] = {}
    budget = MAX_LINKED_ENTITIES
    for _ in range(join.level):
        links = [link for node in frontier for link in _links_of(node, view)]
        _load(entities, tenant, {t for link in links for t in link.targets}, loaded)
        frontier = []
        for link in links:
            found: list[_Node] = []
            for target_id in link.targets:
                target = loaded.get(target_id)
                if target is None or not _type_fits(target, link.inst):
                    continue
                if target_id in link.node.path or (join.mode == "flat" and target_id in seen):
                    continue
                if budget <= 0:
                    raise BadRequestData(
                        f"the linked entities exceed {MAX_LINKED_ENTITIES}; "
                        "lower joinLevel or narrow the query"
                    )
                budget -= 1
                seen.add(target_id)
                found.append(_render_target(target, link, view, request.picking))
            if join.mode == "inline":
                _embed(link, found, view.fmt)
            else:
                flat.extend((node.doc, node.out) for node in found)
            frontier.extend(found)
        if not frontier:
            break
    return flat


def _links_of(node: _Node, view: View) -> Iterable[_Link]:
    ctx = view.ctx
    for iri, instances in node.doc.get("attrs", {}).items():
        if node.attrs is not None and iri not in node.attrs:
            continue
        if (node.pick is not None and iri not in node.pick) or (node.omit and iri in node.omit):
            continue
        key = ctx.compact(iri)
        if key not in node.out:
            continue
        # keyValues shows the default (or first) instance only, as render_entity does.
        for index, inst in enumerate(instances[:1] if view.fmt == "keyValues" else instances):
            targets = _targets(inst)
            if targets:
                yield _Link(node, iri, key, index, inst, targets)


def _load(
    entities: EntityService, tenant: str, ids: set[str], loaded: dict[str, Doc | None]
) -> None:
    """One query for the ids not loaded yet; missing ones are remembered as None."""
    wanted = sorted(i for i in ids if i not in loaded)
    if not wanted:
        return
    docs, _ = entities.find(tenant, EntityQuery(ids=wanted), limit=len(wanted))
    for entity_id in wanted:
        loaded[entity_id] = None
    for doc in docs:
        loaded[doc["id"]] = doc


def _type_fits(target: Doc, inst: dict[str, Any]) -> bool:
    """A relationship's objectType names the type of its target (clause 4.5.23 uses it to
    select the linked entity): a target of another type is not linked."""
    wanted = inst.get("objectType")
    if wanted is None:
        return True
    types = target.get("type") or []
    return any(t in types for t in ([wanted] if isinstance(wanted, str) else wanted))


def _render_target(target: Doc, link: _Link, view: View, picking: bool) -> _Node:
    projection = link.node.nested.get(link.iri)
    pick = omit = None
    nested: dict[str, Projection] = {}
    if projection is not None:
        nested = _by_iri(projection.nested, view.ctx)
        if picking:
            pick = _members(projection.names, view.ctx)
        else:
            omit = _members((n for n in projection.names if n not in projection.nested), view.ctx)
    out = render_entity(
        target,
        view.ctx,
        fmt=view.fmt,
        sys_attrs=view.sys_attrs,
        lang=view.lang,
        pick=pick,
        omit=omit,
    )
    return _Node(target, out, None, pick, omit, nested, link.node.path | {target["id"]})


def _embed(link: _Link, found: list[_Node], fmt: str) -> None:
    """Write the linked entities into the relationship as rendered in ``link.node.out``."""
    if not found:
        return
    node, key = link.node, link.key
    by_id = {n.doc["id"]: n.out for n in found}
    many = isinstance(link.inst.get("object"), list) or link.inst["type"] == "ListRelationship"
    if fmt == "keyValues":
        if many:
            node.out[key] = [by_id.get(t, t) for t in link.targets]
        else:
            node.out[key] = found[0].out
        return
    value = node.out[key]
    instance = value[link.index] if isinstance(value, list) else value
    if not isinstance(instance, dict):
        return
    if link.inst["type"] == "ListRelationship":
        instance["entityList"] = [by_id[t] for t in link.targets if t in by_id]
    elif many:
        instance["entity"] = [by_id[t] for t in link.targets if t in by_id]
    else:
        instance["entity"] = found[0].out


async def follow(
    entities: EntityService,
    tenant: str,
    docs: list[Doc],
    rendered: list[dict[str, Any]],
    view: View,
    request: LinkRequest,
    selection: Selected,
) -> list[tuple[Doc, dict[str, Any]]]:
    """``resolve`` for an endpoint, off the event loop: the inline linked entities are written
    into ``rendered``, the flat ones returned (to follow the requested entities)."""
    if request.join is None or not docs:
        return []
    return await run_in_threadpool(
        resolve,
        entities,
        tenant,
        docs,
        rendered,
        view,
        request,
        attrs=selection.attrs,
        pick=selection.pick,
        omit=selection.omit,
    )
