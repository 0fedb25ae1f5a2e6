"""Reading the archive as DATA.GOV.HK's historical archive API does: its parameters, its
answers' shapes, its errors (``endpoints.py`` puts them on HTTP).

Times are Hong Kong time (UTC+8, no daylight saving), as on DATA.GOV.HK: dates ``YYYYMMDD``,
a version's timestamp ``YYYYMMDD-HHMM`` (the minute it was captured). The archive shows only
what the caller may see in the catalogue: public, active datasets to everyone; private ones
to their organisation's members; everything to sysadmins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import ColumnElement, and_, func, or_, select, true

from smartcity.opendata.archive import tables as a
from smartcity.opendata.archive.service import DICTIONARY, FILE
from smartcity.opendata.archive.store import BlobStore
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.uploads import safe_filename
from smartcity.opendata.languages import pick
from smartcity.storage.engine import Database

HKT = dt.timezone(dt.timedelta(hours=8), "HKT")
MAX_FILES = 500  # per list-files page, as DATA.GOV.HK's clients page by
ORDERS = ("url", "dataset", "resource", "format", "provider", "version-count", "last-version")
LANGS = {"en": "en", "tc": "zh-Hant", "sc": "zh-Hans"}


class ArchiveError(Exception):
    """One or more parameter errors: ``[{"parameter": ..., "message": ...}]``."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.status = status
        self.errors = errors

    @classmethod
    def one(cls, status: int, parameter: str, message: str) -> ArchiveError:
        return cls(status, [{"parameter": parameter, "message": message}])


@dataclass(frozen=True)
class ArchivedFile:
    path: Path
    mimetype: str
    filename: str


def timestamp(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, HKT).strftime("%Y%m%d-%H%M")


def _date(value: str | None, name: str, errors: list[dict[str, str]]) -> dt.date | None:
    if not value:
        errors.append(
            {"parameter": name, "message": f"{name} is required, a date as YYYYMMDD, e.g. 20160101"}
        )
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        errors.append(
            {
                "parameter": name,
                "message": f"{name} {value!r} is not a date as YYYYMMDD, e.g. 20160101",
            }
        )
        return None


def _period(start: str | None, end: str | None, errors: list[dict[str, str]]) -> tuple[int, int]:
    first, last = _date(start, "start", errors), _date(end, "end", errors)
    if first and last and first > last:
        errors.append({"parameter": "end", "message": "end is before start"})
    if errors:
        raise ArchiveError(400, errors)
    assert first is not None and last is not None
    return _day_start(first), _day_end(last)


def _day_start(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), HKT).timestamp() * 1_000_000)


def _day_end(day: dt.date) -> int:
    # The last microsecond of the day, computed without a next day (99991231 has none).
    return int(dt.datetime.combine(day, dt.time.max, HKT).timestamp() * 1_000_000)


def _int(value: str | None, name: str, default: int, low: int, high: int, errors: list[Any]) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
        if not low <= number <= high:
            raise ValueError
        return number
    except ValueError:
        errors.append(
            {"parameter": name, "message": f"{name} must be a whole number from {low} to {high}"}
        )
        return default


def url_candidates(url: str) -> list[str]:
    """The keys a ``url`` parameter may be filed under: itself, and for this site's own
    paths (uploads, hub queries) the path whatever host the caller used."""
    found = [url]
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.path.startswith(("/dataset/", "/ngsi-ld/")):
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def _visible(p: Principal) -> ColumnElement[bool]:
    d = t.datasets
    orgs = p.reads_private_of()
    if orgs is None:
        return true()
    return and_(d.c.state == "active", or_(d.c.private.is_(False), d.c.owner_org.in_(orgs)))


def _public_url(base_url: str, key: str) -> str:
    return base_url + key if key.startswith("/") else key


class ArchiveQueries:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def list_files(self, p: Principal, params: dict[str, str], base_url: str) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        skip = _int(params.get("skip"), "skip", 0, 0, 10**9, errors)
        limit = _int(params.get("max"), "max", MAX_FILES, 1, MAX_FILES, errors)
        order = (params.get("order") or "url").strip()
        descending = order.startswith("-")
        if order.lstrip("-") not in ORDERS:
            errors.append(
                {
                    "parameter": "order",
                    "message": f"order {order!r} is not one of {', '.join(ORDERS)} "
                    "(prefix - for descending)",
                }
            )
        lo, hi = _period(params.get("start"), params.get("end"), errors)
        v, d, o = a.versions, t.datasets, t.organisations
        where = [v.c.kind == FILE, v.c.captured_at.between(lo, hi), _visible(p)]
        if params.get("provider"):
            where.append(o.c.name == params["provider"].strip().lower())
        if params.get("category"):
            in_group = (
                select(t.dataset_groups.c.dataset_id)
                .join(t.groups, t.groups.c.id == t.dataset_groups.c.group_id)
                .where(t.groups.c.name == params["category"].strip().lower())
            )
            where.append(v.c.dataset_id.in_(in_group))
        if params.get("format"):
            where.append(func.lower(v.c.format) == params["format"].strip().lower())
        with self.db.read() as conn:
            grouped = conn.execute(
                select(
                    v.c.url,
                    func.count().label("n"),
                    func.min(v.c.captured_at).label("first"),
                    func.max(v.c.captured_at).label("last"),
                    func.max(v.c.id).label("latest"),
                )
                .join(d, d.c.id == v.c.dataset_id)
                .join(o, o.c.id == d.c.owner_org)
                .where(*where)
                .group_by(v.c.url)
            ).all()
            latest = {
                row.id: row
                for row in conn.execute(
                    select(
                        v,
                        d.c.name.label("dataset_name"),
                        d.c.title.label("dataset_title"),
                        o.c.name.label("org_name"),
                        o.c.title.label("org_title"),
                    )
                    .join(d, d.c.id == v.c.dataset_id)
                    .join(o, o.c.id == d.c.owner_org)
                    .where(v.c.id.in_([g.latest for g in grouped] or [-1]))
                )
            }
            categories: dict[str, list[str]] = {}
            for dataset_id, group in conn.execute(
                select(t.dataset_groups.c.dataset_id, t.groups.c.name)
                .join(t.groups, t.groups.c.id == t.dataset_groups.c.group_id)
                .where(t.dataset_groups.c.dataset_id.in_({r.dataset_id for r in latest.values()}))
                .order_by(t.groups.c.name)
            ):
                categories.setdefault(dataset_id, []).append(group)
        files = [
            self._file(latest[g.latest], g, categories, base_url)
            for g in grouped
            if g.latest in latest
        ]
        search = (params.get("search") or "").strip().casefold()
        if search:
            files = [f for f in files if search in _searchable(f)]
        key = order.lstrip("-")
        sort_field = {
            "dataset": "dataset-name-en",
            "resource": "resource-name-en",
            "provider": "provider-id",
        }.get(key, key)
        files.sort(key=lambda f: (f[sort_field] or "", f["url"]), reverse=descending)
        return {"file-count": len(files), "files": files[skip : skip + limit]}

    @staticmethod
    def _file(
        row: Any, group: Any, categories: dict[str, list[str]], base_url: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": _public_url(base_url, row.url),
            "dataset-id": row.dataset_name,
            "resource-id": row.resource_id,
        }
        for suffix, lang in LANGS.items():
            out[f"dataset-name-{suffix}"] = pick(row.dataset_title, lang)  # type: ignore[arg-type]
            out[f"resource-name-{suffix}"] = pick(row.name, lang)  # type: ignore[arg-type]
        out["format"] = row.format
        out["category-ids"] = categories.get(row.dataset_id, [])
        out["provider-id"] = row.org_name
        for suffix, lang in LANGS.items():
            out[f"provider-name-{suffix}"] = pick(row.org_title, lang)  # type: ignore[arg-type]
        out["version-count"] = group.n
        out["first-version"] = timestamp(group.first)
        out["last-version"] = timestamp(group.last)
        return out

    def _versions(self, p: Principal, url: str, kind: str, lo: int | None, hi: int) -> list[Any]:
        v, d = a.versions, t.datasets
        where = [v.c.url.in_(url_candidates(url)), v.c.kind == kind, v.c.captured_at <= hi]
        if lo is not None:
            where.append(v.c.captured_at >= lo)
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(v)
                    .join(d, d.c.id == v.c.dataset_id)
                    .where(*where, _visible(p))
                    .order_by(v.c.captured_at, v.c.id)
                )
            )

    def list_file_versions(self, p: Principal, params: dict[str, str]) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        url = (params.get("url") or "").strip()
        if not url:
            errors.append({"parameter": "url", "message": "url is required: the file's URL"})
        lo, hi = _period(params.get("start"), params.get("end"), errors)
        stamps = sorted({timestamp(r.captured_at) for r in self._versions(p, url, FILE, lo, hi)})
        dictionaries = sorted(
            {timestamp(r.captured_at)[:8] for r in self._versions(p, url, DICTIONARY, lo, hi)}
        )
        return {
            "version-count": len(stamps),
            "timestamps": stamps,
            "data-dictionary-dates": dictionaries,
            "schema-dates": [],
            "data-files": [],
        }

    def get_file(self, p: Principal, params: dict[str, str]) -> ArchivedFile:
        url = (params.get("url") or "").strip()
        stamp = (params.get("time") or "").strip()
        errors: list[dict[str, str]] = []
        if not url:
            errors.append({"parameter": "url", "message": "url is required: the file's URL"})
        try:
            moment = dt.datetime.strptime(stamp, "%Y%m%d-%H%M").replace(tzinfo=HKT)
        except ValueError:
            errors.append(
                {
                    "parameter": "time",
                    "message": "time is required, a version's timestamp as YYYYMMDD-HHMM "
                    "(Hong Kong time), e.g. 20180905-1306: list-file-versions gives them",
                }
            )
        if errors:
            raise ArchiveError(400, errors)
        lo = int(moment.timestamp() * 1_000_000)
        found = self._versions(p, url, FILE, lo, lo + 60_000_000 - 1)
        if not found:
            raise ArchiveError.one(
                404,
                "time",
                f"the archive has no version of {url} at {stamp}: "
                "list-file-versions gives the times it has",
            )
        return self._blob(found[-1])

    def get_data_dictionary(self, p: Principal, params: dict[str, str]) -> ArchivedFile:
        url = (params.get("url") or "").strip()
        errors: list[dict[str, str]] = []
        if not url:
            errors.append({"parameter": "url", "message": "url is required: the file's URL"})
        day = _date(params.get("date"), "date", errors)
        if errors:
            raise ArchiveError(400, errors)
        assert day is not None
        found = self._versions(p, url, DICTIONARY, None, _day_end(day))
        if not found:
            raise ArchiveError.one(
                404,
                "date",
                f"the archive has no data dictionary of {url} on or before {params['date']}",
            )
        return self._blob(found[-1])

    def _blob(self, row: Any) -> ArchivedFile:
        path = self.blobs.path(row.sha256)
        if not path.is_file():
            raise ArchiveError.one(404, "url", "this version's content is no longer kept")
        tail = safe_filename(unquote(urlsplit(row.url).path.rstrip("/").rsplit("/", 1)[-1]))
        if row.kind == DICTIONARY:
            tail = f"{timestamp(row.captured_at)[:8]}-data-dictionary.json"
        return ArchivedFile(path, row.mimetype or "application/octet-stream", tail)


def _searchable(f: dict[str, Any]) -> str:
    return " ".join(
        str(f[k]) for k in f if k.startswith(("dataset-name", "resource-name")) or k == "url"
    ).casefold()
