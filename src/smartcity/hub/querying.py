"""An entity query as the service layer takes it, and its translation to SQL.

``EntityQuery`` holds parsed, expanded selectors; any module (HTTP API, subscriptions, the
dashboard) builds one and calls ``EntityService.find``. The q language and scopeQ compile to
SQL; a geo-query narrows candidates by bounding box in SQL and is then checked exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smartcity.hub.repository import EntityFilter
from smartcity.hub.types_expr import TypeSelection
from smartcity.storage import schema


@dataclass
class EntityQuery:
    types: TypeSelection | None = None
    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    attrs: Sequence[str] | None = None
    q: Any = None  # query.qlang node
    scope_q: Any = None  # query.scope node
    geo: Any = None  # query.geo.GeoQuery
    geoproperty: str | None = None  # expanded IRI of the GeoProperty the geo-query is about
    expand: Callable[[str], str] | None = None  # for names inside q
    order_by: Sequence[Any] | None = None  # query.order.SortKey, expanded; None: insertion order

    def is_empty(self) -> bool:
        return not (
            self.types
            or self.ids
            or self.id_pattern
            or self.attrs
            or self.q is not None
            or self.scope_q is not None
            or self.geo is not None
        )


def to_filter(query: EntityQuery, dialect: str) -> EntityFilter:
    flt = EntityFilter(
        types=query.types, ids=query.ids, id_pattern=query.id_pattern, attrs=query.attrs
    )
    doc = schema.entities.c.doc
    if query.q is not None:
        from smartcity.hub.query.qsql import to_sql

        assert query.expand is not None
        flt.q = to_sql(query.q, doc, dialect, query.expand)
    if query.geo is not None:
        from smartcity.hub.query.geo import bbox

        box = bbox(query.geo)
        if box is not None:
            assert query.geoproperty is not None
            flt.geo_box = (query.geoproperty, box)
    if query.scope_q is not None:
        from smartcity.hub.query.scope import scope_to_sql

        flt.scope = scope_to_sql(query.scope_q, doc, dialect)
    return flt


def geo_subject(doc: dict[str, Any], geoproperty: str) -> list[dict[str, Any]]:
    """The geometries of an entity's GeoProperty (one per instance)."""
    return [
        inst["value"]
        for inst in doc.get("attrs", {}).get(geoproperty, [])
        if inst.get("type") == "GeoProperty" and isinstance(inst.get("value"), dict)
    ]


def matches_geo(doc: dict[str, Any], query: EntityQuery) -> bool:
    from smartcity.hub.query.geo import matches

    assert query.geoproperty is not None
    return any(matches(query.geo, g) for g in geo_subject(doc, query.geoproperty))
