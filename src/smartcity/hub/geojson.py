"""The application/geo+json representation of entities (clause 4.5.16)."""

from __future__ import annotations

from typing import Any

from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import geo_subject


def to_feature(
    doc: dict[str, Any],
    rendered: dict[str, Any],
    ctx: ActiveContext,
    geometry_iri: str,
    fmt: str,
    context: Any,
) -> dict[str, Any]:
    geometries = geo_subject(doc, geometry_iri)
    properties = {k: v for k, v in rendered.items() if k != "id"}
    return {
        "id": doc["id"],
        "type": "Feature",
        "geometry": geometries[0] if geometries else None,
        "properties": properties,
    }


def to_feature_collection(
    docs: list[dict[str, Any]],
    rendered: list[dict[str, Any]],
    ctx: ActiveContext,
    geometry_iri: str,
    fmt: str,
    context: Any,
) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            to_feature(d, r, ctx, geometry_iri, fmt, context)
            for d, r in zip(docs, rendered, strict=True)
        ],
    }
