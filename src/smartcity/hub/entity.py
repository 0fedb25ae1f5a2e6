"""Entities in and out: validate an NGSI-LD payload into the stored layout, and render it back.

The stored layout (one JSON document per entity) keeps NGSI-LD's structure with names expanded::

    {"id": "urn:ngsi-ld:OffStreetParking:1", "type": ["https://.../OffStreetParking"],
     "scope": ["/HK/Kowloon"], "createdAt": "...", "modifiedAt": "...",
     "attrs": {"https://.../availableSpotNumber": [{"type": "Property", "value": 121,
                                                     "observedAt": "...", ...}]}}

Every attribute maps to a list of instances, one per ``datasetId`` (the default instance has
none and comes first). Sub-attributes are stored inside an instance under their expanded name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.text import id_problem
from smartcity.hub.timeutil import parse_datetime_us

Doc = dict[str, Any]
Instance = dict[str, Any]

# attribute type -> the member that carries its value
VALUE_KEY = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
KEY_TYPE = {
    "value": "Property",
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
# Members of an attribute instance that are not sub-attributes.
INSTANCE_MEMBERS = frozenset(
    {
        "type",
        *KEY_TYPE,
        "observedAt",
        "unitCode",
        "datasetId",
        "objectType",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "lang",
        "previousValue",
    }
)
ENTITY_MEMBERS = frozenset(
    {"id", "type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt"}
)
GEO_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
GEO_ATTRS = frozenset({"location", "observationSpace", "operationSpace"})
# NGSI-LD Null (clause 4.5.x): in an update, an attribute (or sub-attribute) whose value is
# this marker is deleted rather than stored.
NULL_URI = "urn:ngsi-ld:null"
_FORBIDDEN_NAME_CHARS = frozenset("<>\"'=;()&?/#\\ \t\r\n")
_FORBIDDEN_IRI_CHARS = frozenset("{}|^`,")


def check_uri(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{what} must be a non-empty string, got {type(value).__name__}")
    if len(value) > 1024:
        raise BadRequestData(f"{what} is longer than 1024 characters")
    scheme, sep, rest = value.partition(":")
    if (
        not sep
        or not rest
        or not scheme[:1].isalpha()
        or not all(c.isalnum() or c in "+-." for c in scheme)
    ):
        raise BadRequestData(f"{what} must be a URI such as urn:ngsi-ld:Type:001, got {value!r}")
    if any(c.isspace() or c in '<>"' for c in value):
        raise BadRequestData(f"{what} {value!r} contains characters not allowed in a URI")
    problem = id_problem(value)
    if problem is not None:
        raise BadRequestData(f"{what} {value!r} {problem}")
    return value


def check_name(name: Any, what: str = "attribute name") -> str:
    """An attribute or type name: a short term (letters, digits, '_', '-', '.'; starting with a
    letter or '_') or a (compact) IRI without the characters the query languages reserve."""
    if not isinstance(name, str) or not name:
        raise BadRequestData(f"{what} must be a non-empty string")
    if len(name) > 512:
        raise BadRequestData(f"{what} {name[:40]!r}... is longer than 512 characters")
    problem = id_problem(name)
    if problem is not None:
        raise BadRequestData(f"{what} {name!r} {problem}")
    if ":" in name:
        forbidden = _FORBIDDEN_NAME_CHARS - {"/", "#"} | _FORBIDDEN_IRI_CHARS
        bad = sorted({c for c in name if c in forbidden or ord(c) < 32})
        if bad or name.startswith(":"):
            chars = "".join(bad) or ":"
            raise BadRequestData(f"{what} {name!r} contains forbidden characters {chars!r}")
        return name
    bad = sorted({c for c in name if not (c.isalnum() or c in "_-.")})
    if bad:
        raise BadRequestData(
            f"{what} {name!r} contains forbidden characters {''.join(bad)!r}: a name is "
            "letters, digits, '_', '-' and '.', or an IRI"
        )
    if not (name[0].isalpha() or name[0] == "_"):
        raise BadRequestData(f"{what} {name!r} must start with a letter or '_'")
    return name


def parse_types(raw: Any, ctx: ActiveContext) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values:
        raise BadRequestData("entity type must be a string or a non-empty list of strings")
    out: list[str] = []
    for value in values:
        iri = ctx.expand(check_name(value, "entity type"))
        if iri not in out:
            out.append(iri)
    return out


def parse_entity(payload: Any, ctx: ActiveContext, *, require_type: bool = True) -> Doc:
    """Validate a full entity payload (create/replace/upsert) into the stored layout."""
    if not isinstance(payload, dict):
        raise BadRequestData("an entity must be a JSON object")
    doc: Doc = {"id": check_uri(payload.get("id"), "entity id")}
    if "type" in payload:
        doc["type"] = parse_types(payload["type"], ctx)
    elif require_type:
        raise BadRequestData(f"entity {doc['id']} has no type")
    if "scope" in payload:
        doc["scope"] = parse_scope(payload["scope"])
    doc["attrs"] = parse_attributes(
        {k: v for k, v in payload.items() if k not in ENTITY_MEMBERS}, ctx
    )
    return doc


def parse_scope(raw: Any) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadRequestData("scope must be a string or a list of strings such as /HK/Kowloon")
    for value in values:
        segments = value.split("/")
        if (
            not value.startswith("/")
            or (value != "/" and "" in segments[1:])
            or ("#" in value or "+" in value)
        ):
            raise BadRequestData(f"scope {value!r} must look like /HK/Kowloon (no empty levels)")
    return list(dict.fromkeys(values))


def parse_attributes(fragment: Any, ctx: ActiveContext) -> dict[str, list[Instance]]:
    """Validate a map of attribute name -> attribute (or list of instances)."""
    if not isinstance(fragment, dict):
        raise BadRequestData("attributes must be given as a JSON object")
    out: dict[str, list[Instance]] = {}
    for name, raw in fragment.items():
        if name in ENTITY_MEMBERS:
            continue
        iri = ctx.expand(check_name(name))
        instances = parse_attribute(name, raw, ctx)
        existing = out.setdefault(iri, [])
        for inst in instances:
            _add_instance(existing, inst, name)
    return out


def _add_instance(instances: list[Instance], inst: Instance, name: str) -> None:
    dataset = inst.get("datasetId")
    if any(other.get("datasetId") == dataset for other in instances):
        label = f"datasetId {dataset}" if dataset else "the default instance (no datasetId)"
        raise BadRequestData(f"attribute {name!r} has {label} more than once")
    if dataset is None:
        instances.insert(0, inst)
    else:
        instances.append(inst)


def parse_attribute(name: str, raw: Any, ctx: ActiveContext, *, depth: int = 0) -> list[Instance]:
    if (
        isinstance(raw, list)
        and raw
        and all(isinstance(item, dict) for item in raw)
        and any("type" in item or any(k in item for k in KEY_TYPE) for item in raw)
    ):
        instances: list[Instance] = []
        for item in raw:
            _add_instance(instances, parse_instance(name, item, ctx, depth=depth), name)
        return instances
    return [parse_instance(name, raw, ctx, depth=depth)]


def _infer_type(name: str, raw: Any) -> tuple[str, Any]:
    """Concise representation: infer the attribute type from its members (clause 4.5.x)."""
    if not isinstance(raw, dict):
        return "Property", {"value": raw}
    if (raw.get("type") in GEO_TYPES and "coordinates" in raw) or raw.get("type") == (
        "GeometryCollection"
    ):
        return "GeoProperty", {"value": raw}
    for key, attr_type in KEY_TYPE.items():
        if key in raw:
            if (
                key == "value"
                and isinstance(raw["value"], dict)
                # (a value's "type" may be anything, a list too: data, not a geometry's name)
                and isinstance(raw["value"].get("type"), str)
                and (raw["value"]["type"] in GEO_TYPES and name in GEO_ATTRS)
            ):
                return "GeoProperty", raw
            return attr_type, raw
    # A bare JSON object without NGSI-LD members is a Property whose value is that object.
    return "Property", {"value": raw}


def parse_instance(name: str, raw: Any, ctx: ActiveContext, *, depth: int = 0) -> Instance:
    if depth > 8:
        raise BadRequestData(f"attribute {name!r} nests sub-attributes more than 8 levels deep")
    declared = raw.get("type") if isinstance(raw, dict) else None
    if declared is not None and not isinstance(declared, str):  # a list or object (found by
        # the fuzz test: it was a 500)
        raise BadRequestData(
            f"attribute {name!r} has a type that is not a string; expected one of "
            f"{', '.join(VALUE_KEY)}"
        )
    if declared in VALUE_KEY:
        attr_type, body = declared, raw
    elif declared is None or declared in GEO_TYPES:
        attr_type, body = _infer_type(name, raw)
    else:
        raise BadRequestData(
            f"attribute {name!r} has type {declared!r}; expected one of {', '.join(VALUE_KEY)}"
        )
    key = VALUE_KEY[attr_type]
    if key not in body:
        raise BadRequestData(f"attribute {name!r} of type {attr_type} has no '{key}' member")
    value = body[key]
    if value is None:
        raise BadRequestData(f"attribute {name!r} has a null {key}; use DELETE to remove it")
    if _is_null_value(attr_type, value):
        # A deletion: only the datasetId matters (which instance goes).
        deletion: Instance = {"type": attr_type, key: NULL_URI}
        if body.get("datasetId") is not None:
            deletion["datasetId"] = check_uri(body["datasetId"], f"{name}.datasetId")
        return deletion
    inst: Instance = {"type": attr_type, key: _check_value(name, attr_type, value, ctx)}
    for member, member_value in body.items():
        if member in ("type", key, "createdAt", "modifiedAt", "instanceId", "@context"):
            continue
        if member == "observedAt":
            parse_datetime_us(member_value, field=f"{name}.observedAt")
            inst["observedAt"] = member_value
        elif member == "unitCode":
            if not isinstance(member_value, str):
                raise BadRequestData(f"{name}.unitCode must be a string (UN/CEFACT code)")
            inst["unitCode"] = member_value
        elif member == "datasetId":
            inst["datasetId"] = check_uri(member_value, f"{name}.datasetId")
        elif member == "objectType":
            inst["objectType"] = ctx.expand(check_name(member_value, f"{name}.objectType"))
        elif member in KEY_TYPE or member in ("lang", "previousValue", "deletedAt"):
            raise BadRequestData(f"attribute {name!r} of type {attr_type} cannot have '{member}'")
        else:
            sub_iri = ctx.expand(check_name(member, "sub-attribute name"))
            inst[sub_iri] = parse_instance(member, member_value, ctx, depth=depth + 1)
    return inst


def _is_null_value(attr_type: str, value: Any) -> bool:
    """NGSI-LD Null as each attribute type spells it. A JsonProperty's json holding nulls is
    data (only the bare marker deletes it)."""
    if value == NULL_URI:
        return True
    if attr_type == "LanguageProperty":
        return value == {"@none": NULL_URI}
    if attr_type == "ListProperty":
        return value == [NULL_URI]
    if attr_type == "ListRelationship":
        return value in ([NULL_URI], [{"object": NULL_URI}])
    return False


def is_null(inst: Any) -> bool:
    """Whether a parsed instance is an NGSI-LD Null, i.e. asks for its deletion."""
    if not isinstance(inst, dict):
        return False
    return inst.get(VALUE_KEY.get(inst.get("type", ""), "value")) == NULL_URI


def without_nulls(inst: Instance) -> Instance:
    """The instance with its NGSI-LD Null sub-attributes left out (nothing to delete in a
    new instance), recursively."""
    return {
        k: (without_nulls(v) if k not in INSTANCE_MEMBERS and isinstance(v, dict) else v)
        for k, v in inst.items()
        if k in INSTANCE_MEMBERS or not is_null(v)
    }


def _check_value(name: str, attr_type: str, value: Any, ctx: ActiveContext) -> Any:
    if attr_type == "GeoProperty":
        from smartcity.hub.query.geo import validate_geometry

        return validate_geometry(value, where=f"{name}.value")
    if attr_type == "Relationship":
        if isinstance(value, list):
            return [check_uri(v, f"{name}.object") for v in value]
        return check_uri(value, f"{name}.object")
    if attr_type == "ListRelationship":
        if not isinstance(value, list):
            raise BadRequestData(f"{name}.objectList must be a list")
        return [
            check_uri(v.get("object") if isinstance(v, dict) else v, f"{name}.objectList item")
            for v in value
        ]
    if attr_type == "LanguageProperty":
        if not isinstance(value, dict) or not value:
            raise BadRequestData(f'{name}.languageMap must be an object such as {{"en": ".."}}')
        for lang, text in value.items():
            ok = isinstance(text, str) or (
                isinstance(text, list) and all(isinstance(t, str) for t in text)
            )
            if not ok or not isinstance(lang, str):
                raise BadRequestData(f"{name}.languageMap[{lang!r}] must be a string")
        return value
    if attr_type == "VocabProperty":
        if isinstance(value, list):
            return [ctx.expand(check_name(v, f"{name}.vocab")) for v in value]
        return ctx.expand(check_name(value, f"{name}.vocab"))
    if attr_type == "ListProperty" and not isinstance(value, list):
        raise BadRequestData(f"{name}.valueList must be a list")
    return value


# -- rendering -------------------------------------------------------------------------------


def _lang_pick(language_map: dict[str, Any], lang: str) -> tuple[str, Any]:
    if lang == "*":
        return "*", language_map
    for wanted in (part.split(";")[0].strip() for part in lang.split(",")):
        if wanted in language_map:
            return wanted, language_map[wanted]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    first = next(iter(language_map))
    return first, language_map[first]


def render_instance(
    inst: Instance, ctx: ActiveContext, fmt: str, sys_attrs: bool, lang: str | None
) -> Any:
    attr_type = inst.get("type", "Property")
    # .get: an instance that somehow lacks its value still renders (as null), never a 500.
    key = stored_key = VALUE_KEY.get(attr_type, "value")
    value: Any = inst.get(key)
    if attr_type == "VocabProperty" and value is not None:
        value = [ctx.compact(v) for v in value] if isinstance(value, list) else ctx.compact(value)
    if attr_type == "ListRelationship" and fmt != "keyValues" and isinstance(value, list):
        value = [{"object": v} for v in value]  # stored as plain ids, shown as the spec's objects
    if (
        attr_type == "LanguageProperty"
        and lang is not None
        and lang != "*"
        and isinstance(value, dict)
        and value
    ):
        picked, text = _lang_pick(value, lang)
        if fmt == "keyValues":
            return text
        out: dict[str, Any] = {"type": "Property", "value": text, "lang": picked}
        attr_type, key = "Property", "value"
    elif fmt == "keyValues":
        if attr_type == "LanguageProperty":
            return {"languageMap": value}
        return value
    else:
        out = {"type": attr_type, key: value}
    for member, member_value in inst.items():
        if member in ("type", stored_key):
            continue
        if member in INSTANCE_MEMBERS:
            if member in KEY_TYPE:
                continue  # a stale value member of another type
            if member in ("createdAt", "modifiedAt", "deletedAt") and not sys_attrs:
                continue
            if member == "objectType":
                member_value = ctx.compact(member_value)
            out[member] = member_value
        elif isinstance(member_value, dict):
            out[ctx.compact(member)] = render_instance(member_value, ctx, fmt, sys_attrs, lang)
    if fmt == "concise":
        return _concise(out)
    return out


def _concise(out: dict[str, Any]) -> Any:
    attr_type = out.pop("type")
    if attr_type == "Property" and len(out) == 1 and not isinstance(out["value"], dict | list):
        return out["value"]
    if attr_type == "GeoProperty" and len(out) == 1:
        return out["value"]  # a bare GeoJSON geometry is read back as a GeoProperty
    return out


def render_entity(
    doc: Doc,
    ctx: ActiveContext,
    *,
    fmt: str = "normalized",
    sys_attrs: bool = False,
    attrs: Iterable[str] | None = None,
    lang: str | None = None,
    pick: set[str] | None = None,
    omit: set[str] | None = None,
    datasets: set[str | None] | None = None,
) -> dict[str, Any]:
    """Compact a stored entity for a response. ``attrs`` are expanded IRIs; ``pick``/``omit``
    are expanded member names (including ``id``/``type``); ``datasets`` keeps only the
    instances with those datasetIds (None: the default instance)."""
    wanted = set(attrs) if attrs is not None else None
    out: dict[str, Any] = {}
    if (pick is None or "id" in pick) and not (omit and "id" in omit):
        out["id"] = doc["id"]
    if (pick is None or "type" in pick) and not (omit and "type" in omit):
        types = [ctx.compact(t) for t in doc["type"]]
        out["type"] = types[0] if len(types) == 1 else types
    if "scope" in doc and (pick is None or "scope" in pick) and not (omit and "scope" in omit):
        scope = doc["scope"]
        out["scope"] = scope[0] if len(scope) == 1 else scope
    if sys_attrs and fmt != "keyValues":
        out["createdAt"] = doc["createdAt"]
        out["modifiedAt"] = doc["modifiedAt"]
    for iri, instances in doc["attrs"].items():
        if wanted is not None and iri not in wanted:
            continue
        if pick is not None and iri not in pick:
            continue
        if omit is not None and iri in omit:
            continue
        if datasets is not None:
            instances = [i for i in instances if i.get("datasetId") in datasets]
            if not instances:
                continue
        rendered = [render_instance(i, ctx, fmt, sys_attrs, lang) for i in instances]
        if fmt == "keyValues" and len(rendered) > 1:
            # keyValues keeps the default instance (or the first one) only.
            rendered = rendered[:1]
        out[ctx.compact(iri)] = rendered[0] if len(rendered) == 1 else rendered
    return out
