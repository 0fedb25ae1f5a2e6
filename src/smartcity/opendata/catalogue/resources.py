"""A resource's columns from what a client sent: its kind, its URL or file, its format.

Kinds: ``upload`` (a file kept here, ``url`` is its file name), ``link`` (a file elsewhere),
``api`` (a web API), ``hub-query`` (a live query of this platform's NGSI-LD hub, stored as
a path under ``/ngsi-ld/v1/`` and shown as a full URL), ``live`` (a download this site generates
on request from its current data, e.g. a live city dataset's CSV: a path on this site, shown
as a full URL). CKAN clients know only ``url_type``
(``"upload"`` or nothing); both spellings are understood.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Row

from smartcity.opendata.catalogue.dictize import parse_iso
from smartcity.opendata.catalogue.schemas import HUB_PREFIX, ResourceIn
from smartcity.opendata.catalogue.uploads import FILE_TYPES, StoredFile, safe_filename
from smartcity.opendata.errors import ValidationFailed
from smartcity.opendata.languages import Lang, merge

SCHEMES = ("http", "https", "ftp", "ftps")


def _format_of(url: str) -> str:
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    found = FILE_TYPES.get(ext)
    return found[0] if found else ""


def _kind(model: ResourceIn, current: Row[Any] | None, stored: StoredFile | None) -> str:
    if stored is not None:
        return "upload"
    if model.kind:
        return model.kind
    if model.url_type == "upload":
        return "upload"
    if current is not None and model.url is None:
        return str(current.kind)
    return "link"


def resource_values(
    model: ResourceIn,
    current: Row[Any] | None,
    stored: StoredFile | None,
    *,
    lang: Lang,
    base_url: str,
    now: int,
    keep_times: bool,
) -> dict[str, Any]:
    """The columns of a resource (without ids and position) after this write."""
    kind = _kind(model, current, stored)
    if stored is not None:
        url = stored.filename
    elif kind == "upload":
        given = model.url if model.url is not None else (current.url if current else "")
        url = safe_filename(unquote(given.rstrip("/").rsplit("/", 1)[-1])) if given else ""
        if not url:
            raise ValidationFailed.one("upload", "an upload resource needs a file: send 'upload'")
    else:
        url = model.url if model.url is not None else (current.url if current else "")
        url = url.strip()
        if kind == "hub-query":
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                # A full URL of some instance's hub (a dump from another instance of this
                # platform): the query is kept, and runs on this instance's hub.
                url = parts.path + (f"?{parts.query}" if parts.query else "")
            if not url.startswith(HUB_PREFIX):
                raise ValidationFailed.one(
                    "url",
                    f"a hub-query resource's url is a path under {HUB_PREFIX}, e.g. "
                    f"{HUB_PREFIX}entities?type=CarPark",
                )
        elif kind == "live":
            parts = urlsplit(url)
            # Kept as a path of this site (a dump from another instance runs here too).
            url = parts.path + (f"?{parts.query}" if parts.query else "")
            if not url.startswith("/") or url.startswith("//"):
                raise ValidationFailed.one(
                    "url", "a live resource's url is a path on this site, e.g. /api/v1/kpis.csv"
                )
        elif url and urlsplit(url).scheme.lower() not in SCHEMES:
            raise ValidationFailed.one("url", "must be an http(s) or ftp URL")

    def keep(name: str) -> Any:
        value = getattr(model, name)
        return value if value is not None else (getattr(current, name) if current else None)

    text_base = current if current is not None else None
    name = merge(
        text_base.name if text_base is not None and model.name_translated is None else None,
        model.name_translated,
        model.name,
        lang,
    )
    description = merge(
        text_base.description
        if text_base is not None and model.description_translated is None
        else None,
        model.description_translated,
        model.description,
        lang,
    )
    fmt = model.format if model.format is not None else None
    if not fmt:
        fmt = stored.format if stored else (current.format if current else "") or _format_of(url)
    if stored is not None:
        size, digest, mimetype = stored.size, stored.sha256, model.mimetype or stored.mimetype
        data_modified: int | None = now
    else:
        size, digest, mimetype = keep("size"), keep("hash"), keep("mimetype")
        data_modified = parse_iso(model.last_modified) or (
            current.data_modified_at if current else None
        )
    created = (parse_iso(model.created) if keep_times else None) or (
        current.created_at if current else now
    )
    return {
        "kind": kind,
        "url": url,
        "name": name,
        "description": description,
        "format": fmt[:100],
        "mimetype": mimetype,
        "size": size,
        "hash": digest,
        "language": model.language
        if model.language is not None
        else (list(current.language) if current else []),
        "created_at": created,
        "modified_at": (parse_iso(model.metadata_modified) if keep_times else None) or now,
        "data_modified_at": data_modified,
    }
