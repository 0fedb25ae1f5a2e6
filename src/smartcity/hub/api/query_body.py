"""The Query body of POST /entityOperations/query and POST /temporal/entityOperations/query,
translated into the GET parameters it stands for, so POST and GET share one code path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from smartcity.config import Limits
from smartcity.hub.errors import BadRequestData

# '[' characters a Query body may hold besides its geometry's arrays: the entities, attrs,
# pick and omit arrays, and brackets inside q, scopeQ, idPattern or ids.
_OTHER_BRACKETS = 8192


def max_query_arrays(limits: Limits, geometries: int = 1) -> int:
    """The most '[' characters a valid body with ``geometries`` geometries can hold (a Query,
    a subscription's geoQ: one; a context source registration's location, observationSpace
    and operationSpace: three), checked on the raw bytes before parsing
    (``negotiation.read_json``): a geometry of N positions has at most 1.5 N + 1 arrays (a
    position is one; every line has at least 2 positions and every ring 4, plus one array per
    polygon), so a body past this bound is refused unparsed, whatever its size."""
    return 2 * geometries * limits.max_geometry_points + _OTHER_BRACKETS


@dataclass
class QueryParams:
    """A query as the GET endpoints spell it (strings, unvalidated). The POST forms (a Query
    body) are translated into this, so GET and POST run the same code."""

    id: str | None = None
    type: str | None = None
    idPattern: str | None = None
    attrs: str | None = None
    pick: str | None = None
    omit: str | None = None
    q: str | None = None
    scopeQ: str | None = None
    georel: str | None = None
    geometry: str | None = None
    coordinates: str | None = None
    geoproperty: str | None = None
    timeproperty: str | None = None
    timerel: str | None = None
    timeAt: str | None = None
    endTimeAt: str | None = None
    lastN: str | None = None
    lang: str | None = None
    aggrMethods: str | None = None
    aggrPeriodDuration: str | None = None
    datasetId: str | None = None
    options: str | None = None
    format: str | None = None
    limit: str | None = None
    offset: str | None = None
    count: str | None = None
    join: str | None = None
    joinLevel: str | None = None
    containedBy: str | None = None
    csf: str | None = None
    entityMap: str | None = None
    orderBy: str | None = None


# Members of a Query body (clause 5.2.23) the hub understands.
_QUERY_MEMBERS = {
    "type",
    "entities",
    "attrs",
    "pick",
    "omit",
    "q",
    "geoQ",
    "scopeQ",
    "temporalQ",
    "lang",
    "join",
    "joinLevel",
    "containedBy",
    "datasetId",
    "csf",
    "entityMap",
    "orderBy",
    "@context",
}
_TEMPORAL_Q_MEMBERS = {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"}
_GEO_Q_MEMBERS = {"geometry", "coordinates", "georel", "geoproperty"}
_SELECTOR_MEMBERS = {"id", "idPattern", "type"}


def query_params_from_body(body: Any) -> QueryParams:
    """A Query body as the GET parameters it stands for; 400 for what does not fit."""
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('the body must be a Query object: {"type": "Query", ...}')
    unknown = sorted(set(body) - _QUERY_MEMBERS)
    if unknown:
        raise BadRequestData(
            f"Query member(s) {', '.join(unknown)} not understood here; allowed: "
            + ", ".join(sorted(_QUERY_MEMBERS - {"@context"}))
        )
    p = QueryParams()
    if "entities" in body:
        p.id, p.type, p.idPattern = _selectors(body["entities"])
    p.attrs = _name_list(body, "attrs")
    p.pick = _name_list(body, "pick")
    p.omit = _name_list(body, "omit")
    p.q = _text(body, "q", "Query")
    p.scopeQ = _text(body, "scopeQ", "Query")
    p.lang = _text(body, "lang", "Query")
    p.join = _text(body, "join", "Query")
    join_level = body.get("joinLevel")
    if join_level is not None:
        # Linked entity retrieval (clause 4.5.23); linking.parse_join checks the range.
        if isinstance(join_level, bool) or not isinstance(join_level, int):
            raise BadRequestData(f"joinLevel must be a whole number, got {join_level!r}")
        p.joinLevel = str(join_level)
    if "containedBy" in body:
        # Linked entity retrieval (clause 4.5.23): linking.parse_contained_by checks each id.
        p.containedBy = _name_list(body, "containedBy")
    if "datasetId" in body:
        # An array of datasetId URIs, "@none" for the default instances (clause 4.5.5).
        p.datasetId = _name_list(body, "datasetId")
    p.csf = _text(body, "csf", "Query")
    entity_map = body.get("entityMap")
    if entity_map is not None:
        if not isinstance(entity_map, bool):
            raise BadRequestData(f"entityMap must be true or false, got {entity_map!r}")
        p.entityMap = "true" if entity_map else "false"
    p.orderBy = _text(body, "orderBy", "Query")
    geo = _object(body, "geoQ", _GEO_Q_MEMBERS)
    if geo:
        p.georel = _text(geo, "georel", "geoQ")
        p.geometry = _text(geo, "geometry", "geoQ")
        p.geoproperty = _text(geo, "geoproperty", "geoQ")
        coordinates = geo.get("coordinates")
        if coordinates is not None:
            if not isinstance(coordinates, (str, list)):
                raise BadRequestData("geoQ.coordinates must be an array or a string")
            p.coordinates = (
                coordinates if isinstance(coordinates, str) else orjson.dumps(coordinates).decode()
            )
    temporal = _object(body, "temporalQ", _TEMPORAL_Q_MEMBERS)
    if temporal:
        p.timerel = _text(temporal, "timerel", "temporalQ")
        p.timeAt = _text(temporal, "timeAt", "temporalQ")
        p.endTimeAt = _text(temporal, "endTimeAt", "temporalQ")
        p.timeproperty = _text(temporal, "timeproperty", "temporalQ")
        last_n = temporal.get("lastN")
        if last_n is not None:
            if isinstance(last_n, bool) or not isinstance(last_n, int):
                raise BadRequestData(f"temporalQ.lastN must be a whole number, got {last_n!r}")
            p.lastN = str(last_n)
    return p


def _selectors(entities: Any) -> tuple[str | None, str | None, str | None]:
    """EntitySelectors as (id, type, idPattern) parameters. Several selectors are alternatives;
    they are accepted when one GET query says the same: all by type only, or all by id with
    one type (or none)."""
    if not isinstance(entities, list) or not entities:
        raise BadRequestData("entities must be a non-empty array of {id?, idPattern?, type}")
    for selector in entities:
        if not isinstance(selector, dict):
            raise BadRequestData("each entities item must be an {id?, idPattern?, type} object")
        unknown = sorted(set(selector) - _SELECTOR_MEMBERS)
        if unknown:
            raise BadRequestData(
                f"entity selector member(s) {', '.join(unknown)} not understood; allowed: "
                "id, idPattern, type"
            )
        for name in _SELECTOR_MEMBERS:
            if name in selector and not (isinstance(selector[name], str) and selector[name]):
                raise BadRequestData(f"entities[].{name} must be a non-empty string")
    if len(entities) == 1:
        one = entities[0]
        # The id takes precedence over idPattern (clause 5.2.33).
        pattern = None if "id" in one else one.get("idPattern")
        return one.get("id"), one.get("type"), pattern
    if any("idPattern" in s and "id" not in s for s in entities):
        raise BadRequestData(
            "an entity selector with idPattern must be the only one; write the alternatives "
            "in one regular expression (a|b)"
        )
    with_id = [s for s in entities if "id" in s]
    if with_id and len(with_id) != len(entities):
        raise BadRequestData(
            "entity selectors must either all have an id or all select by type only; send "
            "separate queries"
        )
    if with_id:
        types = {s.get("type") for s in entities}
        if len(types) > 1:
            raise BadRequestData(
                "entity selectors with ids must all have the same type (or none); send "
                "separate queries per type"
            )
        return ",".join(s["id"] for s in entities), types.pop(), None
    if any("type" not in s for s in entities):
        return None, None, None  # a selector without anything selects every entity
    return None, ",".join(f"({s['type']})" for s in entities), None


def _name_list(body: dict[str, Any], name: str) -> str | None:
    names = body.get(name)
    if names is None:
        return None
    if not (isinstance(names, list) and names and all(isinstance(a, str) for a in names)):
        raise BadRequestData(f"{name} must be a non-empty array of names")
    if any("," in a for a in names):
        raise BadRequestData(f"{name}: a name cannot contain a comma")
    return ",".join(names)


def _text(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequestData(f"{where}.{name} must be a string, got {value!r}")
    return value


def _object(body: dict[str, Any], name: str, members: set[str]) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequestData(f"{name} must be an object with {', '.join(sorted(members))}")
    unknown = sorted(set(value) - members)
    if unknown:
        raise BadRequestData(
            f"{name} member(s) {', '.join(unknown)} not understood; allowed: "
            + ", ".join(sorted(members))
        )
    return value
