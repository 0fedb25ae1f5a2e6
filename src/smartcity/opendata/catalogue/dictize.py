"""Rows → the dicts CKAN's API answers with (``package_show``, ``organization_show`` ...),
in the reader's language: plain fields (``title``, ``notes``) in that language, with the
three languages beside them in ``*_translated`` (ckanext-fluent's convention)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import Row

from smartcity.opendata.languages import Lang, pick, translated


def iso(us: int | None) -> str | None:
    """CKAN's timestamps: UTC, without an offset, to the microsecond."""
    if us is None:
        return None
    moment = dt.datetime.fromtimestamp(us / 1e6, dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> int | None:
    """Microseconds since the epoch of a CKAN timestamp (naive means UTC), or None."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class View:
    """How an answer is written: its language, the site's address (links to uploads and hub
    queries are absolute), and the licences by id."""

    lang: Lang
    base_url: str
    licences: Mapping[str, Row[Any]]
    # The resources among those written that have a DataStore table (CKAN's datastore_active).
    datastore: frozenset[str] = frozenset()


def download_url(base_url: str, dataset_id: str, resource_id: str, filename: str) -> str:
    """Where an uploaded file is served: CKAN's own path, so ckanapi finds it."""
    return (
        f"{base_url}/dataset/{dataset_id}/resource/{resource_id}/download/"
        f"{quote(filename, safe='')}"
    )


def group_dict(
    row: Row[Any], view: View, *, is_organization: bool, package_count: int | None = None
) -> dict[str, Any]:
    title = pick(row.title, view.lang)
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "title": title,
        "display_name": title or row.name,
        "description": pick(row.description, view.lang),
        "title_translated": translated(row.title),
        "description_translated": translated(row.description),
        "image_url": row.image_url,
        "image_display_url": row.image_url,
        "created": iso(row.created_at),
        "is_organization": is_organization,
        "type": "organization" if is_organization else "group",
        "state": row.state,
        "approval_status": "approved",
    }
    if package_count is not None:
        out["package_count"] = package_count
    return out


def group_summary(row: Row[Any], view: View, *, is_organization: bool) -> dict[str, Any]:
    """A group or organisation as a dataset shows it."""
    title = pick(row.title, view.lang)
    return {
        "id": row.id,
        "name": row.name,
        "title": title,
        "display_name": title or row.name,
        "description": pick(row.description, view.lang),
        "image_url": row.image_url,
        "image_display_url": row.image_url,
        "is_organization": is_organization,
        "type": "organization" if is_organization else "group",
        "state": row.state,
        "approval_status": "approved",
        "created": iso(row.created_at),
    }


def tag_dict(tag_id: str, name: str) -> dict[str, Any]:
    return {
        "id": tag_id,
        "name": name,
        "display_name": name,
        "state": "active",
        "vocabulary_id": None,
    }


# The kinds of resource whose link is a path of this site, written after the site's address.
SITE_LINKS = ("upload", "hub-query", "live")


def resource_dict(row: Row[Any], view: View) -> dict[str, Any]:
    if row.kind == "upload":
        url = download_url(view.base_url, row.dataset_id, row.id, row.url)
    elif row.kind in SITE_LINKS:  # paths of this site
        url = view.base_url + row.url
    else:
        url = row.url
    name = pick(row.name, view.lang)
    return {
        "id": row.id,
        "package_id": row.dataset_id,
        "position": row.position,
        "name": name,
        "description": pick(row.description, view.lang),
        "name_translated": translated(row.name),
        "description_translated": translated(row.description),
        "url": url,
        "url_type": "upload" if row.kind == "upload" else None,
        "kind": row.kind,
        "format": row.format,
        "mimetype": row.mimetype,
        "size": row.size,
        "hash": row.hash or "",
        "language": list(row.language or []),
        "created": iso(row.created_at),
        "metadata_modified": iso(row.modified_at),
        "last_modified": iso(row.data_modified_at),
        "state": "active",
        "datastore_active": row.id in view.datastore,
    }


def _field(entry: Mapping[str, Any], view: View) -> dict[str, Any]:
    texts = entry.get("description") or {}
    return {
        "name": entry.get("name"),
        "type": entry.get("type"),
        "unit": entry.get("unit"),
        "description": pick(texts, view.lang),
        "description_translated": translated(texts),
    }


def package_dict(
    row: Row[Any],
    view: View,
    *,
    organisation: Row[Any] | None,
    groups: Sequence[Row[Any]],
    tags: Sequence[Row[Any]],
    resources: Sequence[Row[Any]],
) -> dict[str, Any]:
    licence = view.licences.get(row.license_id or "")
    title = pick(row.title, view.lang)
    return {
        "id": row.id,
        "name": row.name,
        "type": "dataset",
        "title": title,
        "notes": pick(row.notes, view.lang),
        "title_translated": translated(row.title),
        "notes_translated": translated(row.notes),
        "owner_org": row.owner_org,
        "organization": (
            group_summary(organisation, view, is_organization=True) if organisation else None
        ),
        "groups": [group_summary(g, view, is_organization=False) for g in groups],
        "tags": [tag_dict(tag.id, tag.name) for tag in tags],
        "num_tags": len(tags),
        "license_id": row.license_id,
        "license_title": pick(licence.title, view.lang) if licence else row.license_id,
        "license_url": licence.url if licence else None,
        "isopen": bool(licence.is_open) if licence else False,
        "url": row.url,
        "version": row.version,
        "author": row.author,
        "author_email": row.author_email,
        "maintainer": row.maintainer,
        "maintainer_email": row.maintainer_email,
        "frequency": row.frequency,
        "temporal_start": row.temporal_start,
        "temporal_end": row.temporal_end,
        "spatial": row.spatial,
        "spatial_label": pick(row.spatial_label, view.lang),
        "spatial_label_translated": translated(row.spatial_label),
        "data_dictionary": [_field(f, view) for f in row.data_dictionary or []],
        "extras": [{"key": k, "value": v} for k, v in sorted((row.extras or {}).items())],
        "private": bool(row.private),
        "state": row.state,
        "creator_user_id": row.creator,
        "metadata_created": iso(row.created_at),
        "metadata_modified": iso(row.modified_at),
        "resources": [resource_dict(r, view) for r in resources],
        "num_resources": len(resources),
        "relationships_as_object": [],
        "relationships_as_subject": [],
    }


def kept_package(
    row: Row[Any],
    lang: Lang,
    *,
    groups: Sequence[Row[Any]],
    tags: Sequence[Row[Any]],
    resources: Sequence[Row[Any]],
) -> dict[str, Any]:
    """A dataset's ``package_dict`` as the search index keeps it (``opendata_search_docs``),
    written from the dataset's own rows when they change: everything but what may change
    without the dataset (``finish_kept`` adds it when read). Its groups are their ids."""
    kept = package_dict(
        row,
        View(lang, "", {}),
        organisation=None,
        groups=[],
        tags=tags,
        resources=resources,
    )
    kept["groups"] = [g.id for g in groups]
    return kept


def finish_kept(
    kept: dict[str, Any],
    view: View,
    *,
    organisation: Row[Any] | None,
    groups: Mapping[str, Row[Any]],
) -> dict[str, Any]:
    """A kept package (``kept_package``) made what ``package_dict`` writes for ``view``: the
    organisation and groups as they are now (in name order, as ``repository.groups_of``
    reads them), the licence, links to this site, the DataStore's tables. Every field of
    ``package_dict`` that reads something beyond the dataset's own rows is set here.
    ``groups``: the groups by id, in the order the database sorts their names."""
    licence = view.licences.get(kept["license_id"] or "")
    kept["license_title"] = pick(licence.title, view.lang) if licence else kept["license_id"]
    kept["license_url"] = licence.url if licence else None
    kept["isopen"] = bool(licence.is_open) if licence else False
    kept["organization"] = (
        group_summary(organisation, view, is_organization=True) if organisation else None
    )
    wanted = set(kept["groups"])
    kept["groups"] = [
        group_summary(g, view, is_organization=False)
        for g_id, g in groups.items()
        if g_id in wanted
    ]
    for resource in kept["resources"]:
        if resource["kind"] in SITE_LINKS:
            resource["url"] = view.base_url + resource["url"]
        resource["datastore_active"] = resource["id"] in view.datastore
    return kept
