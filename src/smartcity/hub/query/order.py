"""``orderBy``: the order of query results, e.g. ``orderBy=fillingLevel;desc,address.city,id``.

Members are separated by ``,``; each is a path, optionally followed by ``;asc`` (the default)
or ``;desc``. A path is ``id``, ``type``, ``createdAt``, ``modifiedAt``, or an attribute name
with optional ``.``-separated sub-attributes (or instance members such as ``observedAt``).
A full IRI (a name with ``:``) is one attribute: it has no sub-attribute path.

Sorting an attribute's value runs in Python over the matched set (see ``sort_docs``): stored
values mix JSON types per entity, and SQLite and PostgreSQL order mixed JSON differently, so
one Python order keeps both backends answering alike. Ordering by ``id`` alone runs in SQL.
Entities without the value come last in either direction; ties keep insertion order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from smartcity.hub.entity import INSTANCE_MEMBERS, VALUE_KEY, check_name
from smartcity.hub.errors import BadRequestData

ENTITY_KEYS = frozenset({"id", "type", "createdAt", "modifiedAt"})
MAX_ORDER_KEYS = 8


@dataclass(frozen=True)
class SortKey:
    path: tuple[str, ...]
    descending: bool = False

    def __str__(self) -> str:
        return ".".join(self.path) + (";desc" if self.descending else "")


def parse_order_by(text: str) -> list[SortKey]:
    """Parse an orderBy value; BadRequestData saying what is wrong."""
    if not text.strip():
        raise BadRequestData("orderBy is empty; give e.g. orderBy=name or orderBy=speed;desc")
    keys: list[SortKey] = []
    for member in text.split(","):
        path_text, sep, direction = member.partition(";")
        if sep and direction not in ("asc", "desc"):
            raise BadRequestData(f"orderBy: direction {direction!r} must be asc or desc")
        keys.append(SortKey(_path(path_text.strip()), descending=direction == "desc"))
    if len(keys) > MAX_ORDER_KEYS:
        raise BadRequestData(f"orderBy takes at most {MAX_ORDER_KEYS} members")
    return keys


def _path(text: str) -> tuple[str, ...]:
    if not text:
        raise BadRequestData("orderBy: a member is empty (two commas, or a leading ';')")
    if text in ENTITY_KEYS:
        return (text,)
    if ":" in text:
        return (check_name(text, "orderBy attribute"),)
    parts = tuple(text.split("."))
    for part in parts:
        check_name(part, "orderBy attribute")
    return parts


def expand_keys(keys: Sequence[SortKey], expand: Callable[[str], str]) -> list[SortKey]:
    """Attribute and sub-attribute names expanded to IRIs (entity keys and instance members
    such as observedAt stay as they are)."""
    out = []
    for key in keys:
        head, *rest = key.path
        if head in ENTITY_KEYS:
            out.append(key)
            continue
        path = [expand(head)] + [p if p in INSTANCE_MEMBERS else expand(p) for p in rest]
        out.append(SortKey(tuple(path), key.descending))
    return out


def only_id(keys: Sequence[SortKey]) -> bool:
    return all(key.path == ("id",) for key in keys)


_MISSING = object()


def sort_value(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value an expanded path names in a stored document (default instance first)."""
    head, *rest = path
    if head in ENTITY_KEYS:
        value = doc.get(head)
        return value[0] if head == "type" and isinstance(value, list) and value else value
    instances = doc.get("attrs", {}).get(head)
    if not instances:
        return _MISSING
    inst: Any = instances[0]
    for part in rest:
        if not isinstance(inst, dict) or part not in inst:
            return _MISSING
        inst = inst[part]
        if part in INSTANCE_MEMBERS:
            return inst
    if not isinstance(inst, dict):
        return _MISSING
    return inst.get(VALUE_KEY.get(inst.get("type", ""), "value"), _MISSING)


def _rank(value: Any) -> tuple[int, Any]:
    """Numbers, then strings, then booleans, then anything else by its JSON text."""
    if isinstance(value, bool):
        return 2, value
    if isinstance(value, int | float):
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 3, orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sort_docs(docs: list[dict[str, Any]], keys: Sequence[SortKey]) -> list[dict[str, Any]]:
    """Sort stored documents by expanded keys: stable passes from the last key to the first;
    in each, values in the key's direction, then missing values after present ones."""
    out = list(docs)
    for key in reversed(keys):
        values = {id(d): sort_value(d, key.path) for d in out}
        present = [d for d in out if values[id(d)] is not _MISSING]
        missing = [d for d in out if values[id(d)] is _MISSING]
        present.sort(key=lambda d: _rank(values[id(d)]), reverse=key.descending)
        out = present + missing
    return out
