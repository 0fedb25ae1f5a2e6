"""Context source registrations in and out (clauses 5.2.9, 5.2.10, 5.2.34, 5.9).

A department broker (TD, EPD, WSD...) registers itself with the hub by a registration that
says what it can answer for (``information``), how (``mode``, ``operations``) and where
(``endpoint``). The stored document keeps the payload's structure with every entity type and
attribute name expanded to an IRI by the request's @context, so that matching a query needs no
@context, and rendering compacts them again with the reader's::

    {"id": "urn:ngsi-ld:ContextSourceRegistration:td", "type": "ContextSourceRegistration",
     "information": [{"entities": [{"type": ["https://.../TrafficFlowObserved"]}],
                      "propertyNames": ["https://.../intensity"]}],
     "endpoint": "http://td-broker:8000", "mode": "inclusive", "operations": ["federationOps"],
     "management": {"timeout": 2000}, "createdAt": ..., "modifiedAt": ...}
"""

from __future__ import annotations

import copy
import math
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from smartcity.hub.entity import check_name, check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.outbound import TargetGuard
from smartcity.hub.query.qregex import check_pattern
from smartcity.hub.timeutil import iso_from_us, normalise_datetime, parse_datetime_us

Doc = dict[str, Any]

REGISTRATION_TYPE = "ContextSourceRegistration"
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
DEFAULT_MODE = "inclusive"

# Clause 4.20: the operations a context source may support, and the named groups of them.
_WRITE_OPS = (
    "createEntity",
    "updateEntity",
    "appendAttrs",
    "updateAttrs",
    "deleteAttrs",
    "deleteEntity",
    "createBatch",
    "upsertBatch",
    "updateBatch",
    "deleteBatch",
    "upsertTemporal",
    "appendAttrsTemporal",
    "deleteAttrsTemporal",
    "updateAttrsTemporal",
    "deleteAttrInstanceTemporal",
    "deleteTemporal",
    "mergeEntity",
    "replaceEntity",
    "replaceAttrs",
    "mergeBatch",
)
_READ_OPS = (
    "retrieveEntity",
    "queryEntity",
    "queryBatch",
    "retrieveTemporal",
    "queryTemporal",
    "retrieveEntityTypes",
    "retrieveEntityTypeDetails",
    "retrieveEntityTypeInfo",
    "retrieveAttrTypes",
    "retrieveAttrTypeDetails",
    "retrieveAttrTypeInfo",
)
_SUBSCRIPTION_OPS = (
    "createSubscription",
    "updateSubscription",
    "retrieveSubscription",
    "querySubscription",
    "deleteSubscription",
)
_ENTITY_MAP_OPS = (
    "queryEntityMap",
    "createEntityMap",
    "updateEntityMap",
    "deleteEntityMap",
    "retrieveEntityMap",
)
OPERATION_GROUPS: dict[str, tuple[str, ...]] = {
    "federationOps": _READ_OPS + _SUBSCRIPTION_OPS + _ENTITY_MAP_OPS,
    "updateOps": ("updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"),
    "retrieveOps": ("retrieveEntity", "queryEntity"),
    "redirectionOps": _WRITE_OPS + _READ_OPS,
}
OPERATIONS = frozenset(_WRITE_OPS + _READ_OPS + _SUBSCRIPTION_OPS + _ENTITY_MAP_OPS)
DEFAULT_OPERATIONS = ("federationOps",)
# The operations a registration with a time interval is asked (see ``of_a_period``).
TEMPORAL_OPERATIONS = frozenset(op for op in OPERATIONS if op.endswith("Temporal"))


def of_a_period(doc: Doc) -> bool:
    """Whether the registration gives an observationInterval or a managementInterval: its
    source is then for temporal representations only ("if latest Entity information is also
    provided, a separate Context Registration is needed", the v1.8.1 CsourceRegistration), and
    a registration query without a temporal query does not find it (clause 5.10.2)."""
    return "observationInterval" in doc or "managementInterval" in doc


def offers(doc: Doc, operation: str) -> bool:
    """Whether the registration's source is asked ``operation``: its ``operations`` name it,
    and, for an operation on the latest state, the registration is not of a period."""
    named = expand_operations(doc.get("operations", list(DEFAULT_OPERATIONS)))
    return operation in named and (operation in TEMPORAL_OPERATIONS or not of_a_period(doc))


# Members the broker computes; a client may send them back (a GET result) and they are ignored.
READ_ONLY = frozenset(
    {
        "status",
        "timesSent",
        "timesFailed",
        "lastSuccess",
        "lastFailure",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "@context",
    }
)
# Top-level members a PATCH may remove by setting them to urn:ngsi-ld:null.
REMOVABLE = frozenset(
    {
        "registrationName",
        "description",
        "contextSourceAlias",
        "datasetId",
        "tenant",
        "observationInterval",
        "managementInterval",
        "location",
        "observationSpace",
        "operationSpace",
        "expiresAt",
        "contextSourceInfo",
        "scope",
        "refreshRate",
        "management",
        "operations",
        "mode",
    }
)
NULL_URI = "urn:ngsi-ld:null"
# The stored document's member holding additional Context Source properties, names expanded.
PROPERTIES = "csourceProperties"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
# The tenant names NGSILD-Tenant accepts (hub.api.negotiation.TENANT_PATTERN).
_TENANT_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
_DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_MAX_TEXT = 4096
GEO_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
)


def new_registration_id() -> str:
    return f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}"


def expand_operations(operations: list[str]) -> frozenset[str]:
    """The operation names a registration's ``operations`` stand for (groups unfolded)."""
    out: set[str] = set()
    for op in operations:
        out.update(OPERATION_GROUPS.get(op, (op,)))
    return frozenset(out)


class _Parser:
    """One member at a time, so that create and PATCH share every rule."""

    def __init__(self, ctx: ActiveContext, now_us: int, max_points: int = 10_000) -> None:
        self.ctx = ctx
        self.now_us = now_us
        self.max_points = max_points

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise BadRequestData(f"{what} must be a non-empty string")
        if len(value) > _MAX_TEXT:
            raise BadRequestData(f"{what} is longer than {_MAX_TEXT} characters")
        return value

    def names(self, value: Any, what: str) -> list[str]:
        if not isinstance(value, list) or not value:
            raise BadRequestData(f"{what} must be a non-empty list of attribute names")
        return list(dict.fromkeys(self.ctx.expand(check_name(v, f"{what} entry")) for v in value))

    def information(self, value: Any) -> list[Doc]:
        if not isinstance(value, list) or not value:
            raise BadRequestData(
                "information must be a non-empty list of {entities, propertyNames, "
                "relationshipNames} objects (clause 5.2.10)"
            )
        out: list[Doc] = []
        for index, raw in enumerate(value):
            where = f"information[{index}]"
            if not isinstance(raw, dict):
                raise BadRequestData(f"{where} must be an object")
            unknown = set(raw) - {"entities", "propertyNames", "relationshipNames"}
            if unknown:
                raise BadRequestData(f"{where} has unknown members {', '.join(sorted(unknown))}")
            if not raw:
                raise BadRequestData(
                    f"{where} must give at least one of entities, propertyNames, relationshipNames"
                )
            info: Doc = {}
            if "entities" in raw:
                info["entities"] = self.entities(raw["entities"], where)
            for key in ("propertyNames", "relationshipNames"):
                if key in raw:
                    info[key] = self.names(raw[key], f"{where}.{key}")
            out.append(info)
        return out

    def entities(self, value: Any, where: str) -> list[Doc]:
        if not isinstance(value, list) or not value:
            raise BadRequestData(f"{where}.entities must be a non-empty list of EntityInfo")
        out: list[Doc] = []
        for index, raw in enumerate(value):
            at = f"{where}.entities[{index}]"
            if not isinstance(raw, dict):
                raise BadRequestData(f"{at} must be an object with type (and id or idPattern)")
            unknown = set(raw) - {"id", "idPattern", "type"}
            if unknown:
                raise BadRequestData(f"{at} has unknown members {', '.join(sorted(unknown))}")
            if "type" not in raw:
                raise BadRequestData(f"{at} needs a type (clause 5.2.8)")
            types = [raw["type"]] if isinstance(raw["type"], str) else raw["type"]
            if not isinstance(types, list) or not types:
                raise BadRequestData(f"{at}.type must be a type name or a list of them")
            selector: Doc = {
                "type": list(
                    dict.fromkeys(self.ctx.expand(check_name(t, f"{at}.type")) for t in types)
                )
            }
            if "id" in raw and "idPattern" in raw:
                raise BadRequestData(f"{at} may give id or idPattern, not both")
            if "id" in raw:
                selector["id"] = check_uri(raw["id"], f"{at}.id")
            if "idPattern" in raw:
                pattern = self.text(raw["idPattern"], f"{at}.idPattern")
                try:
                    check_pattern(pattern)
                except BadRequestData as exc:
                    raise BadRequestData(f"{at}.idPattern" + exc.detail.removeprefix("q")) from None
                selector["idPattern"] = pattern
            out.append(selector)
        return out

    def endpoint(self, value: Any) -> str:
        uri = check_uri(value, "endpoint")
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("http", "https"):
            raise BadRequestData(f"endpoint must be an http(s) URL of an NGSI-LD API, got {uri!r}")
        try:
            host, _ = parts.hostname, parts.port
        except ValueError:
            raise BadRequestData(f"endpoint {uri!r} has an invalid port") from None
        if not host:
            raise BadRequestData(f"endpoint {uri!r} has no host")
        if parts.query or parts.fragment:
            raise BadRequestData(f"endpoint {uri!r} must not have a query or fragment")
        try:
            httpx.URL(uri)  # what forwarding will send to
        except httpx.InvalidURL as exc:
            raise BadRequestData(f"endpoint {uri!r} is malformed: {exc}") from None
        return uri

    def mode(self, value: Any) -> str:
        if value not in MODES:
            raise BadRequestData(f"mode must be one of {', '.join(MODES)}, got {value!r}")
        return str(value)

    def operations(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise BadRequestData("operations must be a non-empty list of operation names")
        for op in value:
            if not isinstance(op, str) or (op not in OPERATIONS and op not in OPERATION_GROUPS):
                raise BadRequestData(
                    f"unknown operation {op!r}; use operation names of clause 4.20 or the "
                    f"groups {', '.join(OPERATION_GROUPS)}"
                )
        return list(dict.fromkeys(value))

    def management(self, value: Any) -> Doc:
        if not isinstance(value, dict):
            raise BadRequestData("management must be an object (clause 5.2.34)")
        unknown = set(value) - {"localOnly", "cacheDuration", "timeout", "cooldown"}
        if unknown:
            raise BadRequestData(f"management has unknown members {', '.join(sorted(unknown))}")
        out: Doc = {}
        if "localOnly" in value:
            if not isinstance(value["localOnly"], bool):
                raise BadRequestData("management.localOnly must be true or false")
            out["localOnly"] = value["localOnly"]
        if "cacheDuration" in value:
            out["cacheDuration"] = self.duration(value["cacheDuration"], "management.cacheDuration")
        for key in ("timeout", "cooldown"):
            if key in value:
                number = value[key]
                if (
                    isinstance(number, bool)
                    or not isinstance(number, int | float)
                    or not math.isfinite(number)
                    or number < 1
                ):
                    raise BadRequestData(
                        f"management.{key} must be a number of milliseconds (>= 1), got {number!r}"
                    )
                out[key] = number
        return out

    def duration(self, value: Any, what: str) -> str:
        text = self.text(value, what)
        if not _DURATION.match(text):
            raise BadRequestData(f"{what} must be an ISO 8601 duration such as PT10S, got {text!r}")
        return text

    def pairs(self, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list):
            raise BadRequestData("contextSourceInfo must be a list of {key, value} objects")
        out: list[dict[str, str]] = []
        for pair in value:
            if (
                not isinstance(pair, dict)
                or set(pair) != {"key", "value"}
                or not isinstance(pair["key"], str)
                or not isinstance(pair["value"], str)
            ):
                raise BadRequestData("contextSourceInfo entries must be {'key': str, 'value': str}")
            # They are sent to the context source as HTTP headers (clause 5.2.9).
            if not _HEADER_NAME.match(pair["key"]):
                raise BadRequestData(
                    f"contextSourceInfo key {pair['key']!r} is not a valid HTTP header name"
                )
            if not pair["value"].isascii() or any(c in pair["value"] for c in "\r\n\0"):
                raise BadRequestData(
                    f"contextSourceInfo value for {pair['key']!r} must be one line of ASCII"
                )
            out.append({"key": pair["key"], "value": pair["value"]})
        return out

    def tenant(self, value: Any) -> str:
        text = self.text(value, "tenant")
        if not _TENANT_RE.match(text):
            raise BadRequestData(
                "tenant must be 1-64 characters of letters, digits, '_', '-', '.' or ':'"
            )
        return text

    def expires(self, value: Any) -> str:
        iso = normalise_datetime(value, field="expiresAt")
        if parse_datetime_us(iso, field="expiresAt") <= self.now_us:
            raise BadRequestData(
                f"expiresAt {value!r} is in the past; give a future date-time or omit it"
            )
        return iso

    def interval(self, value: Any, what: str) -> Doc:
        if not isinstance(value, dict) or "startAt" not in value:
            raise BadRequestData(f"{what} must be an object with startAt (and endAt)")
        unknown = set(value) - {"startAt", "endAt"}
        if unknown:
            raise BadRequestData(f"{what} has unknown members {', '.join(sorted(unknown))}")
        out = {"startAt": normalise_datetime(value["startAt"], field=f"{what}.startAt")}
        if "endAt" in value:
            out["endAt"] = normalise_datetime(value["endAt"], field=f"{what}.endAt")
            if parse_datetime_us(out["endAt"], field="endAt") < parse_datetime_us(
                out["startAt"], field="startAt"
            ):
                raise BadRequestData(f"{what}.endAt is before its startAt")
        return out

    def geometry(self, value: Any, what: str) -> Doc:
        if (
            not isinstance(value, dict)
            or value.get("type") not in GEO_TYPES
            or not isinstance(value.get("coordinates"), list)
        ):
            raise BadRequestData(
                f"{what} must be a GeoJSON geometry ({', '.join(GEO_TYPES)}) with coordinates"
            )
        positions = _count_positions(value["coordinates"], self.max_points)
        if positions > self.max_points:
            raise BadRequestData(
                f"{what} has more than {self.max_points} positions; simplify the geometry"
            )
        return {"type": value["type"], "coordinates": value["coordinates"]}

    def scope(self, value: Any) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            raise BadRequestData("scope must be a string or a non-empty list of strings")
        return [self.text(v, "scope entry") for v in values]

    def dataset_ids(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise BadRequestData("datasetId must be a non-empty list of URIs")
        return [v if v == "@none" else check_uri(v, "datasetId entry") for v in value]


_MEMBERS: dict[str, Callable[[_Parser, Any], Any]] = {
    "registrationName": lambda p, v: p.text(v, "registrationName"),
    "description": lambda p, v: p.text(v, "description"),
    "contextSourceAlias": lambda p, v: p.text(v, "contextSourceAlias"),
    "information": lambda p, v: p.information(v),
    "datasetId": lambda p, v: p.dataset_ids(v),
    "tenant": lambda p, v: p.tenant(v),
    "observationInterval": lambda p, v: p.interval(v, "observationInterval"),
    "managementInterval": lambda p, v: p.interval(v, "managementInterval"),
    "location": lambda p, v: p.geometry(v, "location"),
    "observationSpace": lambda p, v: p.geometry(v, "observationSpace"),
    "operationSpace": lambda p, v: p.geometry(v, "operationSpace"),
    "expiresAt": lambda p, v: p.expires(v),
    "endpoint": lambda p, v: p.endpoint(v),
    "contextSourceInfo": lambda p, v: p.pairs(v),
    "scope": lambda p, v: p.scope(v),
    "mode": lambda p, v: p.mode(v),
    "operations": lambda p, v: p.operations(v),
    "refreshRate": lambda p, v: p.duration(v, "refreshRate"),
    "management": lambda p, v: p.management(v),
}


def _member(parser: _Parser, doc: Doc, key: str, value: Any) -> None:
    handler = _MEMBERS.get(key)
    if handler is None:
        # Clause 5.2.9: any other member is an additional Context Source property (what
        # q and csf of Query Context Source Registrations look at); its name follows the
        # attribute name rules and is expanded like one.
        try:
            name = check_name(key, "Context Source property name")
        except BadRequestData as exc:
            known = ", ".join(sorted([*_MEMBERS, "id", "type"]))
            raise BadRequestData(
                f"unknown ContextSourceRegistration member {key!r} is not a valid Context "
                f"Source property name either ({exc.detail}); known members: {known}"
            ) from None
        if value is None:
            raise BadRequestData(f"Context Source property {key!r} has no value")
        doc.setdefault(PROPERTIES, {})[parser.ctx.expand(name)] = copy.deepcopy(value)
        return
    doc[key] = handler(parser, value)


def _check_whole(doc: Doc) -> None:
    """Rules that involve several members (after create and after every PATCH)."""
    if "information" not in doc:
        raise BadRequestData("a registration needs information: what the source can provide")
    if "endpoint" not in doc:
        raise BadRequestData("a registration needs the endpoint of the source's NGSI-LD API")
    mode = doc.get("mode", DEFAULT_MODE)
    operations = expand_operations(doc.get("operations", list(DEFAULT_OPERATIONS)))
    if mode == "exclusive":
        # Clause 4.3.6.2: an exclusive registration is about named attributes of named
        # entities (the source is the only one to hold them).
        for index, info in enumerate(doc["information"]):
            entities = info.get("entities", [])
            if not entities or any("id" not in e for e in entities):
                raise BadRequestData(
                    f"an exclusive registration needs entities with an id in every information "
                    f"entry (information[{index}]); idPattern or type alone is not allowed"
                )
            if "propertyNames" not in info and "relationshipNames" not in info:
                raise BadRequestData(
                    f"an exclusive registration needs propertyNames or relationshipNames in "
                    f"every information entry (information[{index}])"
                )
    if mode == "redirect":
        for index, info in enumerate(doc["information"]):
            if "entities" not in info:
                raise BadRequestData(
                    f"a redirect registration needs entities (at least their type) in every "
                    f"information entry (information[{index}])"
                )
    if mode == "auxiliary":
        # Clause 4.3.6.3: auxiliary sources only ever serve reads.
        writes = sorted(operations & set(_WRITE_OPS))
        if writes:
            raise BadRequestData(
                "an auxiliary registration may only offer read operations, not " + ", ".join(writes)
            )


def _count_positions(coordinates: list[Any], at_most: int) -> int:
    """The positions (innermost arrays) of GeoJSON coordinates, counting stops past
    ``at_most``: a registration's geometry is matched against every query it may answer."""
    count = 0
    stack: list[Any] = [coordinates]
    while stack and count <= at_most:
        item = stack.pop()
        if isinstance(item, list):
            if item and not isinstance(item[0], list):
                count += 1
            else:
                stack.extend(item)
    return count


def parse_registration(
    payload: Any, ctx: ActiveContext, *, now_us: int, max_points: int = 10_000
) -> Doc:
    """Validate a Register Context Source payload (clause 5.9.2) into the stored layout."""
    if not isinstance(payload, dict):
        raise BadRequestData("a context source registration must be a JSON object")
    if payload.get("type") != REGISTRATION_TYPE:
        raise BadRequestData(
            f"a context source registration needs type {REGISTRATION_TYPE!r}, "
            f"got {payload.get('type')!r}"
        )
    reg_id = check_uri(payload["id"], "registration id") if "id" in payload else None
    doc: Doc = {"id": reg_id or new_registration_id(), "type": REGISTRATION_TYPE}
    parser = _Parser(ctx, now_us, max_points)
    for key, value in payload.items():
        if key in ("id", "type") or key in READ_ONLY:
            continue
        _member(parser, doc, key, value)
    _check_whole(doc)
    iso = iso_from_us(now_us)
    doc["createdAt"] = iso
    doc["modifiedAt"] = iso
    return doc


def apply_fragment(
    old: Doc, fragment: Any, ctx: ActiveContext, *, now_us: int, max_points: int = 10_000
) -> Doc:
    """Update Context Source Registration (clause 5.9.3): each member given replaces the
    stored one; ``urn:ngsi-ld:null`` removes an optional member."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("the registration fragment must be a non-empty JSON object")
    if "id" in fragment and fragment["id"] != old["id"]:
        raise BadRequestData(f"the fragment's id {fragment['id']!r} differs from {old['id']}")
    if "type" in fragment and fragment["type"] != REGISTRATION_TYPE:
        raise BadRequestData(f"a registration's type is always {REGISTRATION_TYPE!r}")
    doc = copy.deepcopy(old)
    parser = _Parser(ctx, now_us, max_points)
    for key, value in fragment.items():
        if key in ("id", "type") or key in READ_ONLY:
            continue
        if value == NULL_URI:
            extra = doc.get(PROPERTIES, {})
            if key not in _MEMBERS and ctx.expand(key) in extra:
                extra.pop(ctx.expand(key))
                if not extra:
                    doc.pop(PROPERTIES)
                continue
            if key not in REMOVABLE:
                raise BadRequestData(f"{key} cannot be removed from a registration")
            doc.pop(key, None)
            continue
        _member(parser, doc, key, value)
    _check_whole(doc)
    doc["modifiedAt"] = iso_from_us(now_us)
    return doc


def expires_us(doc: Doc) -> int | None:
    return parse_datetime_us(doc["expiresAt"], field="expiresAt") if "expiresAt" in doc else None


def render_registration(
    doc: Doc, ctx: ActiveContext, *, stats: Doc | None = None, sys_attrs: bool = False
) -> Doc:
    """The registration as a client sees it: names compacted with its @context, the status
    members of clause 5.2.9 from ``stats``, createdAt/modifiedAt only with sysAttrs."""
    out: Doc = {}
    for key, value in doc.items():
        if key in ("createdAt", "modifiedAt"):
            if sys_attrs:
                out[key] = value
            continue
        if key == "information":
            out[key] = [_render_info(info, ctx) for info in value]
        elif key == PROPERTIES:
            out.update({ctx.compact(k): copy.deepcopy(v) for k, v in value.items()})
        elif key.startswith("_"):
            continue  # bookkeeping of the service's cache
        else:
            out[key] = copy.deepcopy(value)
    out.setdefault("mode", DEFAULT_MODE)
    if stats:
        out.update({k: v for k, v in stats.items() if v is not None})
    return out


def _render_info(info: Doc, ctx: ActiveContext) -> Doc:
    out: Doc = {}
    if "entities" in info:
        rendered = []
        for selector in info["entities"]:
            types = [ctx.compact(t) for t in selector["type"]]
            item: Doc = {"type": types[0] if len(types) == 1 else types}
            for key in ("id", "idPattern"):
                if key in selector:
                    item[key] = selector[key]
            rendered.append(item)
        out["entities"] = rendered
    for key in ("propertyNames", "relationshipNames"):
        if key in info:
            out[key] = [ctx.compact(n) for n in info[key]]
    return out


def check_source(endpoint: str, forbid_private: bool) -> None:
    """SSRF guard at create/update time: with SMARTCITY_FORBID_PRIVATE_TARGETS, a source on a
    private or loopback network is a 400 now (forwarding checks again at every connection,
    since a name may resolve elsewhere later). Resolves the host name: off the event loop."""
    TargetGuard(forbid_private).check_url(endpoint, f"registration endpoint {endpoint}")
