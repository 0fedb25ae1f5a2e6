"""Temporal representations of entities (clauses 4.5.7-4.5.9 and 4.5.19).

* normalized: each attribute is an array of its instances, each with its ``instanceId``;
* simplified (``temporalValues``): ``{"type": "Property", "values": [[value, time], ...]}``
  (a VocabProperty's pairs are ``[{"vocab": ...}, time]``, likewise ``languageMap`` and
  ``json``);
* aggregated (``aggregatedValues``): ``{"type": "Property", "avg": [[value, start, end], ...]}``.

Instances and periods are in ascending time; instances of several datasetIds come grouped by
datasetId (the default instance first). In the simplified and aggregated representations an
attribute with several datasetIds becomes an array of objects, each with its ``datasetId``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from smartcity.hub.entity import VALUE_KEY, render_instance
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.temporal.service import InstanceOut, TemporalEntity
from smartcity.hub.timeutil import compact_iso_from_us, iso_from_us

NORMALIZED = "normalized"
TEMPORAL_VALUES = "temporalValues"
AGGREGATED_VALUES = "aggregatedValues"

# The member holding the (value, time) pairs in the simplified representation, by type.
_VALUES_MEMBER = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}


# Types whose simplified values are wrapped in an object named by their value member.
WRAPPED_TYPES = ("VocabProperty", "LanguageProperty", "JsonProperty")


def render_temporal(
    entity: TemporalEntity,
    ctx: ActiveContext,
    *,
    fmt: str = NORMALIZED,
    sys_attrs: bool = False,
    time_property: str = "observedAt",
    aggr_methods: Sequence[str] = (),
    lang: str | None = None,
    pick: set[str] | None = None,
    omit: set[str] | None = None,
) -> dict[str, Any]:
    """Compact one entity's temporal evolution. ``pick``/``omit`` may hold id/type/scope (the
    attributes themselves were already chosen by the query)."""
    out: dict[str, Any] = {}
    for member in ("id", "type", "scope"):
        if (pick is not None and member not in pick) or (omit is not None and member in omit):
            continue
        if member == "id":
            out["id"] = entity.entity_id
        elif member == "type":
            types = [ctx.compact(t) for t in entity.types]
            out["type"] = types[0] if len(types) == 1 else types
        elif entity.scope:
            out["scope"] = entity.scope[0] if len(entity.scope) == 1 else entity.scope
    if sys_attrs:
        out["createdAt"] = iso_from_us(entity.created_at)
        out["modifiedAt"] = iso_from_us(entity.modified_at)
        if entity.deleted_at is not None:
            out["deletedAt"] = iso_from_us(entity.deleted_at)
    if fmt == AGGREGATED_VALUES:
        for iri, by_dataset in entity.aggregates.items():
            objects = []
            for dataset_id, agg in by_dataset.items():
                obj: dict[str, Any] = {"type": agg.kind}
                if dataset_id:
                    obj["datasetId"] = dataset_id
                starts = [_period_iso(t) for t in agg.starts]
                ends = [_period_iso(t) for t in agg.ends]
                for method in aggr_methods:
                    values = agg.values[method]
                    if method in _OF_GIVEN_NUMBERS:
                        values = [_as_given(v) for v in values]
                    # Tuples (serialised as arrays) made by zip: the fast path for big answers.
                    triples = list(zip(values, starts, ends, strict=True))
                    if None in values:
                        triples = [t for t in triples if t[0] is not None]
                    obj[method] = triples
                objects.append(obj)
            out[ctx.compact(iri)] = objects[0] if len(objects) == 1 else objects
        return out
    for iri, instances in entity.instances.items():
        if fmt == TEMPORAL_VALUES:
            simplified = [
                _simplified(group, ctx, lang, time_property) for group in _by_dataset(instances)
            ]
            if not simplified and iri in entity.cut_away:  # no pairs in this page's range
                kind = entity.cut_away[iri]
                simplified = [{"type": kind, _VALUES_MEMBER[kind]: []}]
            out[ctx.compact(iri)] = simplified[0] if len(simplified) == 1 else simplified
        else:
            out[ctx.compact(iri)] = [
                _normalized(i, ctx, sys_attrs, time_property, lang) for i in instances
            ]
    return out


# Period boundaries repeat across entities (a month of hours is 720 strings for any number of
# entities), and formatting a datetime costs more than everything else per period. They are
# computed, so written as clients write times: 2020-08-01T12:00:00Z, no fraction.
_period_iso = lru_cache(maxsize=65_536)(compact_iso_from_us)

# Methods whose result is one of the given values, or a sum of them: computed over the history's
# numeric column (a float), they come back as integers where the values were (120, not 120.0).
_OF_GIVEN_NUMBERS = frozenset({"min", "max", "sum", "sumsq"})
_EXACT = 2**53  # floats hold every whole number up to here exactly


def _as_given(value: Any) -> Any:
    if type(value) is float and value.is_integer() and -_EXACT < value < _EXACT:
        return int(value)
    return value


def _normalized(
    inst: InstanceOut, ctx: ActiveContext, sys_attrs: bool, time_property: str, lang: str | None
) -> dict[str, Any]:
    # The stored createdAt/modifiedAt are the attribute's at the time; the instance's own
    # (when it entered the history, when it was last corrected) come from the columns.
    out: dict[str, Any] = render_instance(inst.value, ctx, "normalized", False, lang)
    out["instanceId"] = inst.instance_id
    if sys_attrs or time_property == "createdAt":
        out["createdAt"] = iso_from_us(inst.created_at)
    if sys_attrs or time_property == "modifiedAt":
        out["modifiedAt"] = iso_from_us(inst.modified_at)
    if inst.deleted_at is not None:
        out["deletedAt"] = iso_from_us(inst.deleted_at)
    return out


def _by_dataset(instances: list[InstanceOut]) -> list[list[InstanceOut]]:
    groups: dict[str, list[InstanceOut]] = {}
    for inst in instances:
        groups.setdefault(inst.dataset_id, []).append(inst)
    return list(groups.values())


def _simplified(
    group: list[InstanceOut], ctx: ActiveContext, lang: str | None, time_property: str
) -> dict[str, Any]:
    kind = group[0].value["type"]
    pairs = []
    for inst in group:
        value: Any = inst.value[VALUE_KEY[inst.value["type"]]]
        if inst.value["type"] == "VocabProperty":
            value = (
                [ctx.compact(v) for v in value] if isinstance(value, list) else ctx.compact(value)
            )
        if inst.value["type"] == "LanguageProperty" and lang is not None and lang != "*":
            value = render_instance(inst.value, ctx, "keyValues", False, lang)
        elif inst.value["type"] in WRAPPED_TYPES:
            # Clause 4.5.9: [{"vocab": ...}, t], [{"languageMap": ...}, t], [{"json": ...}, t]
            value = {VALUE_KEY[inst.value["type"]]: value}
        # The observedAt as it was given (2020-08-01T12:05:00Z stays so); the times the hub
        # keeps itself (createdAt, modifiedAt, deletedAt, or acceptance without observedAt)
        # as everywhere else.
        given = inst.value.get("observedAt") if time_property == "observedAt" else None
        pairs.append([value, given if given is not None else iso_from_us(inst.t)])
    if kind == "LanguageProperty" and lang is not None and lang != "*":
        kind = "Property"  # one language picked: plain strings
    out: dict[str, Any] = {"type": kind, _VALUES_MEMBER[kind]: pairs}
    if group[0].dataset_id:
        out["datasetId"] = group[0].dataset_id
    return out
