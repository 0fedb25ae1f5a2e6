"""``DcatService``: the catalogue as DCAT-AP 3, a page at a time, and one dataset.

The catalogue (what harvesters read) holds only public, active datasets, whoever asks; a
dataset's own document follows ``package_show``'s rules (its organisation's members see
their private datasets). Pages are ordered newest change first, then by id, so a harvester
walking ``next`` links never sees a dataset twice while nothing changes, and
``modified_since`` asks only for what changed since its last run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rdflib import Graph
from sqlalchemy import func, select

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.dictize import iso, parse_iso
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.dcat.graph import Page, catalogue_graph, dataset_graph
from smartcity.opendata.errors import ValidationFailed
from smartcity.opendata.languages import translated

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Format (the path's extension) → rdflib's serialiser and the media type answered.
FORMATS: dict[str, tuple[str, str]] = {
    "ttl": ("turtle", "text/turtle; charset=utf-8"),
    "rdf": ("pretty-xml", "application/rdf+xml; charset=utf-8"),
    "xml": ("pretty-xml", "application/rdf+xml; charset=utf-8"),
    "jsonld": ("json-ld", "application/ld+json; charset=utf-8"),
}
# Media types a client may ask for (Accept) → the format answering it.
MEDIA_TYPES: dict[str, str] = {
    "text/turtle": "ttl",
    "application/x-turtle": "ttl",
    "application/rdf+xml": "rdf",
    "application/ld+json": "jsonld",
}


def serialise(graph: Graph, fmt: str) -> tuple[bytes, str]:
    serialiser, media_type = FORMATS[fmt]
    return graph.serialize(format=serialiser, encoding="utf-8"), media_type


@dataclass(frozen=True)
class CatalogueRequest:
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    modified_since: int | None = None  # microseconds since the epoch

    @staticmethod
    def parse(params: dict[str, str]) -> CatalogueRequest:
        """``page`` (from 1), ``page_size`` (up to 1000) and ``modified_since`` (ISO 8601),
        each refused with a message saying what is allowed."""

        def whole(name: str, default: int, low: int, high: int) -> int:
            raw = params.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValidationFailed.one(name, f"must be a whole number, not {raw!r}") from None
            if not low <= value <= high:
                raise ValidationFailed.one(name, f"must be between {low} and {high}")
            return value

        since_text = params.get("modified_since")
        since = parse_iso(since_text) if since_text else None
        if since_text and since is None:
            raise ValidationFailed.one(
                "modified_since", "must be an ISO 8601 date or time, e.g. 2024-01-31T08:00:00Z"
            )
        return CatalogueRequest(
            page=whole("page", 1, 1, 10_000_000),
            size=whole("page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            modified_since=since,
        )


class DcatService:
    def __init__(self, catalogue: CatalogueService) -> None:
        self.catalogue = catalogue

    def _packages(self, conn: Any, ids: list[str], base_url: str) -> list[dict[str, Any]]:
        packages = self.catalogue.packages(conn, ids, self.catalogue.view(conn, "en", base_url))
        orgs = repo.named_by_ids(conn, t.organisations, (p["owner_org"] for p in packages))
        for package in packages:  # the publisher's name in all three languages
            org = orgs.get(package["owner_org"])
            if org is not None and package.get("organization"):
                package["organization"] = {
                    **package["organization"],
                    "title_translated": translated(org.title),
                }
        return packages

    def catalogue_page(self, base_url: str, page_url: str, request: CatalogueRequest) -> Graph:
        d = t.datasets
        where = [d.c.state == "active", ~d.c.private]
        if request.modified_since is not None:
            where.append(d.c.modified_at >= request.modified_since)
        with self.catalogue.db.snapshot() as conn:
            total = int(conn.execute(select(func.count()).where(*where)).scalar_one())
            ids = list(
                conn.execute(
                    select(d.c.id)
                    .where(*where)
                    .order_by(d.c.modified_at.desc(), d.c.id)
                    .offset((request.page - 1) * request.size)
                    .limit(request.size)
                ).scalars()
            )
            newest = conn.execute(select(func.max(d.c.modified_at)).where(*where[:2])).scalar()
            packages = self._packages(conn, ids, base_url)
        page = Page(request.page, request.size, total, page_url)
        return catalogue_graph(base_url, packages, page=page, modified=iso(newest))

    def package(self, p: Principal, base_url: str, key: str) -> dict[str, Any]:
        """The dataset's dict (with its publisher's titles), as ``package_show`` allows."""
        with self.catalogue.db.read() as conn:
            row = self.catalogue.visible_dataset(conn, p, key)
            return self._packages(conn, [row.id], base_url)[0]

    def dataset(self, p: Principal, base_url: str, key: str) -> Graph:
        return dataset_graph(base_url, self.package(p, base_url, key))
