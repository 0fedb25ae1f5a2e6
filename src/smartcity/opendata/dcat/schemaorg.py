"""schema.org ``Dataset`` markup for a dataset page, so search engines (Google Dataset Search)
index the catalogue. The page embeds it as ``<script type="application/ld+json">``.

The context is inline (``@vocab`` schema.org, ``@language`` the page's language): the markup
reads as the same triples with or without fetching anything, and the page's language tags its
texts; the other languages' titles follow as ``alternateName``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartcity.opendata.languages import LANGS, Lang


def _without_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, "", [], {})}


def schema_org_dataset(package: Mapping[str, Any], base_url: str, lang: Lang) -> dict[str, Any]:
    """The JSON-LD for ``package`` (a ``package_show`` dict in ``lang``)."""
    base = base_url.rstrip("/")
    page = f"{base}/dataset/{package['name']}"
    titles = package.get("title_translated") or {}
    org = package.get("organization") or {}
    publisher = _without_empty(
        {
            "@type": "GovernmentOrganization",
            "@id": f"{base}/organization/{org['name']}" if org.get("name") else None,
            "name": org.get("title") or org.get("name"),
        }
    )
    start, end = package.get("temporal_start"), package.get("temporal_end")
    temporal = f"{start or '..'}/{end or '..'}" if start or end else None
    spatial = None
    if package.get("spatial") or package.get("spatial_label"):
        spatial = _without_empty(
            {
                "@type": "Place",
                "name": package.get("spatial_label"),
                "geo": _geo(package.get("spatial")),
            }
        )
    contact = None
    if package.get("maintainer") or package.get("maintainer_email"):
        contact = _without_empty(
            {
                "@type": "ContactPoint",
                "name": package.get("maintainer"),
                "email": package.get("maintainer_email"),
                "contactType": "data",
            }
        )
    markup = {
        "@context": {"@vocab": "https://schema.org/", "@language": lang},
        "@type": "Dataset",
        "@id": f"{base}/dataset/{package['id']}",
        "name": package.get("title") or package["name"],
        "alternateName": [
            {"@value": titles[other], "@language": other}
            for other in LANGS
            if other != lang and (titles.get(other) or "").strip()
        ],
        # Google asks for 50 to 5,000 characters; a dataset without notes is its title.
        "description": package.get("notes") or package.get("title") or package["name"],
        "url": page,
        "sameAs": f"{base}/dataset/{package['id']}",
        "identifier": package["id"],
        "keywords": [tag["name"] for tag in package.get("tags") or []],
        "license": package.get("license_url") or None,
        "isAccessibleForFree": True,
        "creator": publisher or None,
        "publisher": publisher or None,
        "version": package.get("version"),
        "dateCreated": _stamp(package.get("metadata_created")),
        "dateModified": _stamp(package.get("metadata_modified")),
        "temporalCoverage": temporal,
        "spatialCoverage": spatial,
        "contactPoint": contact,
        "inLanguage": [x for x in LANGS if (titles.get(x) or "").strip()],
        "variableMeasured": [
            field["name"] for field in package.get("data_dictionary") or [] if field.get("name")
        ],
        "distribution": [_download(resource) for resource in package.get("resources") or []],
    }
    return _without_empty(markup)


def _stamp(value: str | None) -> dict[str, str] | None:
    return {"@type": "DateTime", "@value": value + "Z"} if value else None


def _download(resource: Mapping[str, Any]) -> dict[str, Any]:
    return _without_empty(
        {
            "@type": "DataDownload",
            "name": resource.get("name"),
            "description": resource.get("description"),
            "encodingFormat": resource.get("mimetype") or resource.get("format"),
            "contentUrl": resource.get("url"),
            "contentSize": str(resource["size"]) if resource.get("size") is not None else None,
        }
    )


def _geo(geometry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A point as GeoCoordinates, anything else as its bounding box (GeoShape)."""
    if not geometry:
        return None
    from shapely.geometry import shape

    try:
        geom = shape(geometry)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if geom.geom_type == "Point":
        return {"@type": "GeoCoordinates", "longitude": geom.x, "latitude": geom.y}
    west, south, east, north = geom.bounds
    # schema.org's box is "south west north east" (latitude first).
    return {"@type": "GeoShape", "box": f"{south} {west} {north} {east}"}
