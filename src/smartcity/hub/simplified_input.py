"""A merge fragment given in the simplified representation (Merge Entity with
``format=keyValues``, clause 5.6.17): what a client sends back after reading an entity with
``options=keyValues`` and changing some values.

A simplified value carries no attribute type, so each one is read as the value of the entity's
existing attribute of that name, of that attribute's kind: ``{"parkedCar": "urn:ngsi-ld:Car:2"}``
replaces a Relationship's object, not the Relationship with a Property. A string for a
LanguageProperty is its text in ``lang`` (``@none`` without), the other languages kept; an
object is its whole languageMap. A name the entity does not have yet is read in the concise
representation (a bare value is a Property, a GeoJSON geometry a GeoProperty), as without
``format``; so is a fragment for an entity this hub does not hold. NGSI-LD Null deletes, as
everywhere.
"""

from __future__ import annotations

from typing import Any

from smartcity.hub.entity import ENTITY_MEMBERS, NULL_URI, VALUE_KEY, Doc, check_name
from smartcity.hub.jsonld import ActiveContext


def normalized_fragment(
    body: dict[str, Any], current: Doc | None, ctx: ActiveContext, lang: str | None
) -> dict[str, Any]:
    """``body`` in the normalized representation, each value typed after ``current``'s
    attribute of the same name (its default instance)."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in ENTITY_MEMBERS or current is None or value == NULL_URI:
            out[name] = value
            continue
        instances = current["attrs"].get(ctx.expand(check_name(name)), [])
        existing = next((i for i in instances if "datasetId" not in i), None)
        if existing is None:
            out[name] = value
            continue
        kind = existing["type"]
        if kind == "LanguageProperty" and isinstance(value, str):
            texts = dict(existing.get("languageMap") or {})
            texts[lang or "@none"] = value
            out[name] = {"type": kind, "languageMap": texts}
        else:
            out[name] = {"type": kind, VALUE_KEY[kind]: value}
    return out
