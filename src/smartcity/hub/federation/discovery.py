"""Distributed discovery (clauses 5.7.5-5.7.10 with 4.3.6): /types, /types/{type},
/attributes and /attributes/{attr} also list what registered sources provide.

Two inputs, both used:

* the registrations' ``information``: every entity type and attribute name a matching
  registration declares is listed, whether or not its source answers (what a registration
  says it provides is part of what the city's hub can answer for);
* the sources' own answers: the same request is forwarded (``local=true``, same Via, tenant,
  timeout and cooldown rules as queries) to the registrations whose ``operations`` include
  the discovery operation (``federationOps`` does), and merged: lists are united, counts
  added, attribute types and type names united.

A source that fails adds an ``NGSILD-Warning`` as for queries; the registrations' declared
names are still listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from smartcity.hub.federation.forwarding import warning_of
from smartcity.hub.federation.matching import Wanted, info_matches
from smartcity.hub.jsonld import ActiveContext

if TYPE_CHECKING:
    from smartcity.hub.federation import Federation

Doc = dict[str, Any]


@dataclass
class Remote:
    """What the matching registrations declare and what their sources answered."""

    registrations: list[Doc] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def declared(self, wanted: Wanted) -> list[Doc]:
        """The matching information entries of the registrations."""
        return [
            info
            for reg in self.registrations
            for info in reg["information"]
            if info_matches(info, wanted)
        ]


async def ask(
    request: Request,
    federation: Federation,
    tenant: str,
    operation: str,
    path: str,
    wanted: Wanted,
) -> Remote:
    """Forward a discovery request to the sources that offer ``operation``."""
    if federation.registrations.surely_none(tenant):
        return Remote()
    params = [(k, v) for k, v in request.query_params.multi_items() if k in ("details", "local")]
    dist = await federation.forwarder.plan(
        request, tenant, operation, wanted, params=params, link=request.headers.get("link")
    )
    if dist is None:
        return Remote()
    for target in dist.targets:
        target.attrs = None  # discovery takes no attrs
    answers = await dist.start(path)
    out = Remote(registrations=[t.registration for t in dist.targets])
    for answer in answers:
        if answer.error is not None:
            out.warnings.append(warning_of(dist.alias, answer.target.registration, answer.error))
        elif answer.body is not None:
            out.bodies.append(answer.body)
    return out


def _names(info: Doc, key: str) -> list[str]:
    return list(info.get(key, ()))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- /types -------------------------------------------------------------------------------------
def type_list(local: list[str], remote: Remote, ctx: ActiveContext) -> list[str]:
    """Expanded type names: the hub's, the registrations' and the sources'."""
    out = dict.fromkeys(local)
    for info in remote.declared(Wanted()):
        for selector in info.get("entities", []):
            out.update(dict.fromkeys(selector["type"]))
    for body in remote.bodies:
        if isinstance(body, dict):
            out.update(dict.fromkeys(ctx.expand(t) for t in _strings(body.get("typeList"))))
    return list(out)


def type_details_list(local: dict[str, list[str]], remote: Remote,
                      ctx: ActiveContext) -> dict[str, list[str]]:  # fmt: skip
    """Expanded type name -> expanded attribute names, for ?details=true."""
    out = {t: list(a) for t, a in local.items()}
    for info in remote.declared(Wanted()):
        names = _names(info, "propertyNames") + _names(info, "relationshipNames")
        for selector in info.get("entities", []):
            for etype in selector["type"]:
                out[etype] = list(dict.fromkeys([*out.get(etype, []), *names]))
    for body in remote.bodies:
        for item in body if isinstance(body, list) else []:
            if isinstance(item, dict) and isinstance(item.get("typeName"), str):
                etype = ctx.expand(item["typeName"])
                names = [ctx.expand(a) for a in _strings(item.get("attributeNames"))]
                out[etype] = list(dict.fromkeys([*out.get(etype, []), *names]))
    return out


def type_info(etype: str, local: Doc | None, remote: Remote, ctx: ActiveContext) -> Doc | None:
    """EntityTypeInfo merged: ``local`` is the hub's own (attribute ids expanded), or None."""
    count = local["entityCount"] if local else 0
    details: dict[str, set[str]] = {}
    if local:
        for item in local["attributeDetails"]:
            details[item["id"]] = set(item["attributeTypes"])
    declared = remote.declared(Wanted(types=[frozenset({etype})]))
    for info in declared:
        for name in _names(info, "propertyNames"):
            details.setdefault(name, set()).add("Property")
        for name in _names(info, "relationshipNames"):
            details.setdefault(name, set()).add("Relationship")
    answered = False
    for body in remote.bodies:
        if not isinstance(body, dict):
            continue
        answered = True
        count += _count(body.get("entityCount"))
        for item in body.get("attributeDetails", []):
            if isinstance(item, dict) and isinstance(item.get("attributeName"), str):
                kinds = details.setdefault(ctx.expand(item["attributeName"]), set())
                kinds.update(_strings(item.get("attributeTypes")))
    if local is None and not declared and not answered:
        return None
    return {
        "id": etype,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact(etype),
        "entityCount": count,
        "attributeDetails": [
            {
                "id": name,
                "type": "Attribute",
                "attributeName": ctx.compact(name),
                "attributeTypes": sorted(kinds),
            }
            for name, kinds in details.items()
        ],
    }


# -- /attributes --------------------------------------------------------------------------------
def attribute_list(local: list[str], remote: Remote, ctx: ActiveContext) -> list[str]:
    out = dict.fromkeys(local)
    for info in remote.declared(Wanted()):
        out.update(dict.fromkeys(_names(info, "propertyNames")))
        out.update(dict.fromkeys(_names(info, "relationshipNames")))
    for body in remote.bodies:
        if isinstance(body, dict):
            out.update(dict.fromkeys(ctx.expand(a) for a in _strings(body.get("attributeList"))))
        for item in body if isinstance(body, list) else []:
            if isinstance(item, dict) and isinstance(item.get("attributeName"), str):
                out[ctx.expand(item["attributeName"])] = None
    return list(out)


def attribute_info(name: str, local: Doc | None, remote: Remote, ctx: ActiveContext) -> Doc | None:
    """An Attribute merged: ``local`` is the hub's own (type names expanded), or None."""
    count = local["attributeCount"] if local else 0
    kinds = set(local["attributeTypes"]) if local else set()
    types = dict.fromkeys(local["typeNames"]) if local else {}
    declared = False
    for info in remote.declared(Wanted(attrs=[name])):
        kind = "Property" if name in _names(info, "propertyNames") else None
        kind = kind or ("Relationship" if name in _names(info, "relationshipNames") else None)
        if kind is None:
            continue  # an entry that offers every attribute says nothing about this one
        declared = True
        kinds.add(kind)
        for selector in info.get("entities", []):
            types.update(dict.fromkeys(selector["type"]))
    for body in remote.bodies:
        items = body if isinstance(body, list) else [body]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("attributeName"), str):
                continue
            if ctx.expand(item["attributeName"]) != name:
                continue
            declared = True
            count += _count(item.get("attributeCount"))
            kinds.update(_strings(item.get("attributeTypes")))
            types.update(dict.fromkeys(ctx.expand(t) for t in _strings(item.get("typeNames"))))
    if local is None and not declared:
        return None
    return {
        "id": name,
        "type": "Attribute",
        "attributeName": ctx.compact(name),
        "attributeCount": count,
        "attributeTypes": sorted(kinds),
        "typeNames": [ctx.compact(t) for t in types],
    }
