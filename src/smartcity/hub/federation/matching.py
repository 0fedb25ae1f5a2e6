"""Which registrations a request is about (clauses 4.3.6 and 5.12): the entity selectors and
attribute names of a registration's ``information`` against a query's type/id/idPattern/attrs.

Used twice: to answer Query Context Source Registrations (GET /csourceRegistrations) and to
pick the context sources a query or retrieval is forwarded to. A registration's claim is what
the source *may* provide, so the test is "could overlap", not "surely holds": a type-only
selector matches any id, an information entry without attribute names matches any attrs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.qregex import compile_pattern
from smartcity.hub.types_expr import TypeSelection

Doc = dict[str, Any]


@dataclass(frozen=True)
class Wanted:
    """The selectors of a request, names expanded."""

    types: TypeSelection | None = None
    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    attrs: Sequence[str] | None = None


def _selector_matches(selector: Doc, wanted: Wanted) -> bool:
    if wanted.types and not any(alt <= set(selector["type"]) for alt in wanted.types):
        return False
    if wanted.ids:
        if "id" in selector and selector["id"] not in wanted.ids:
            return False
        pattern = selector.get("idPattern")
        if pattern is not None and not any(_could_match(pattern, i) for i in wanted.ids):
            return False
    if wanted.id_pattern and "id" in selector:
        return _could_match(wanted.id_pattern, selector["id"])
    return True


def _could_match(pattern: str, entity_id: str) -> bool:
    """Whether ``entity_id`` matches ``pattern`` (q's linear-time dialect, see query.qregex).
    A pattern stored before that dialect that it refuses cannot tell, so it "could" match."""
    try:
        return compile_pattern(pattern).search(entity_id)
    except BadRequestData:
        return True


def _names(info: Doc) -> list[str]:
    return [*info.get("propertyNames", ()), *info.get("relationshipNames", ())]


def info_matches(info: Doc, wanted: Wanted) -> bool:
    entities = info.get("entities")
    if entities and not any(_selector_matches(s, wanted) for s in entities):
        return False
    names = _names(info)
    return not (wanted.attrs and names and not set(names) & set(wanted.attrs))


def registration_matches(doc: Doc, wanted: Wanted) -> bool:
    return any(info_matches(info, wanted) for info in doc["information"])


def attrs_to_ask(doc: Doc, wanted: Wanted) -> list[str] | None:
    """The attributes to ask a source for: what the query wants, narrowed to what the
    matching information entries name (None: all attributes)."""
    names: set[str] = set()
    for info in doc["information"]:
        if not info_matches(info, wanted):
            continue
        found = _names(info)
        if not found:  # this entry offers every attribute
            return list(wanted.attrs) if wanted.attrs else None
        names.update(found)
    if wanted.attrs:
        return [a for a in wanted.attrs if a in names]
    return sorted(names)


def offered_names(
    doc: Doc, entity_id: str, types: Sequence[str] | None
) -> tuple[bool, set[str] | None]:
    """Whether the registration is about this one entity (``types`` None: not known, so a
    type-only selector could match), and the attribute names it offers for it (None: all)."""
    matched = False
    names: set[str] = set()
    for info in doc["information"]:
        entities = info.get("entities")
        if entities and not any(_is_entity(s, entity_id, types) for s in entities):
            continue
        matched = True
        found = _names(info)
        if not found:
            return True, None
        names.update(found)
    return matched, names


def _is_entity(selector: Doc, entity_id: str, types: Sequence[str] | None) -> bool:
    if "id" in selector and selector["id"] != entity_id:
        return False
    pattern = selector.get("idPattern")
    if pattern is not None and not _could_match(pattern, entity_id):
        return False
    return types is None or bool(set(selector["type"]) & set(types))


def exclusive_claims(doc: Doc) -> set[tuple[str, str]]:
    """The (entity id, attribute) pairs an exclusive or redirect registration claims; a
    redirect entry without names claims every attribute ('*')."""
    claims: set[tuple[str, str]] = set()
    if doc.get("mode") not in ("exclusive", "redirect"):
        return claims
    for info in doc["information"]:
        ids = [s["id"] for s in info.get("entities", []) if "id" in s]
        names = _names(info) or ["*"]
        claims.update((i, n) for i in ids for n in names)
    return claims


def claims_overlap(a: set[tuple[str, str]], b: set[tuple[str, str]]) -> bool:
    for entity_id, name in a:
        if (entity_id, name) in b or (entity_id, "*") in b:
            return True
        if name == "*" and any(e == entity_id for e, _ in b):
            return True
    return False
