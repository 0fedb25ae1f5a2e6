"""``CatalogueService``: datasets and their resources, read and written as CKAN's dicts.

Every write is one transaction: the dataset, its tags, groups and resources, its search
index rows and its audit row commit together. Uploaded files are checked and staged before
the transaction and moved into place only after it commits (and discarded if it fails), so
the database never names a file that is not there because of a failed write.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, Row, Text, cast, delete, func, insert, or_, select, update

from smartcity.opendata.archive import tables as archive_tables
from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.dictize import (
    View,
    finish_kept,
    iso,
    package_dict,
    parse_iso,
    resource_dict,
)
from smartcity.opendata.catalogue.resources import resource_values
from smartcity.opendata.catalogue.schemas import DatasetIn, ResourceIn, parse
from smartcity.opendata.catalogue.uploads import StoredFile, UploadStore
from smartcity.opendata.errors import NotFound, ValidationFailed
from smartcity.opendata.languages import merge
from smartcity.opendata.search import engine, index
from smartcity.storage.engine import Database

MAX_LIST = 10_000
# How long a process keeps the licences it read (``CatalogueService._licences``).
LICENCES_KEPT_S = 60.0
# The facets whose values are shown by title and read with a search's page (licences are
# titled too, from the kept licences).
TITLED = ("organization", "groups")


def new_id() -> str:
    return str(uuid.uuid4())


TAG_NAMESPACE = uuid.UUID("1b0f7c52-5d1e-4b8a-9f0e-3c2d8a6b4e17")


def tag_id(name: str) -> str:
    """A tag's id follows from its name, so every instance gives a tag the same id."""
    return str(uuid.uuid5(TAG_NAMESPACE, name))


@dataclass
class Upload:
    """A file sent with ``resource_create/update/patch`` (multipart field ``upload``)."""

    filename: str
    file: BinaryIO


@dataclass
class _Staged:
    path: Path | None = None
    stored: StoredFile | None = None
    removed: list[str] = field(default_factory=list)  # resource ids whose files go


log = logging.getLogger("smartcity.opendata")


class CatalogueService:
    def __init__(self, db: Database, uploads: UploadStore) -> None:
        self.db = db
        self.uploads = uploads
        # Hooks of the features built on the catalogue (the DataStore, the archive), which it
        # does not import: resources going (called inside the deleting transaction), and a
        # file uploaded to a resource (called after the commit: resource id, path, format; a
        # hook's failure is logged, never the upload's).
        self.on_resources_removed: list[Callable[[Connection, list[str]], None]] = []
        self.on_upload: list[Callable[[str, Path, str | None], object]] = []
        # Which of these resources have a DataStore table (set by the DataStore: CKAN's
        # ``datastore_active`` on every resource the catalogue writes).
        self.datastore_tables: Callable[[Connection, Sequence[str]], set[str]] = (
            lambda _conn, _ids: set()
        )
        # The licences by id, as last read, and when (``_licences``).
        self._kept_licences: tuple[float, dict[str, Row[Any]]] | None = None

    def _removed(self, conn: Connection, resource_ids: list[str]) -> None:
        for hook in self.on_resources_removed:
            hook(conn, resource_ids)

    def _uploaded(self, resource_id: str) -> None:
        with self.db.read() as conn:
            row = conn.execute(select(t.resources).where(t.resources.c.id == resource_id)).first()
        path = self.uploads.path(resource_id, row.url) if row and row.kind == "upload" else None
        if row is None or path is None:
            return
        for hook in self.on_upload:
            try:
                hook(resource_id, path, row.format or None)
            except Exception:
                log.exception("after the upload of resource %s", resource_id)

    # -- rendering --------------------------------------------------------------------------

    def view(
        self, conn: Connection, lang: Any, base_url: str, resource_ids: Sequence[str] = ()
    ) -> View:
        """How to write answers; ``resource_ids``: the resources they will show (their
        ``datastore_active`` is looked up once for all)."""
        active = self.datastore_tables(conn, resource_ids) if resource_ids else set()
        return View(lang, base_url.rstrip("/"), self._licences(conn), frozenset(active))

    def _licences(self, conn: Connection) -> dict[str, Row[Any]]:
        """The licences by id, kept for ``LICENCES_KEPT_S``. They are the shipped list
        (``OrganisationService.seed_licences``), which only an upgrade changes; CKAN too reads
        its licence list once per process. Reading them per request cost a round trip (~0.8 ms
        of every read action on PostgreSQL). Seeding in this process forgets them at once
        (``licences_changed``); seeding in another process shows within the delay."""
        kept = self._kept_licences
        now = time.monotonic()
        if kept is None or now - kept[0] >= LICENCES_KEPT_S:
            kept = self._kept_licences = (now, {r.id: r for r in repo.licences(conn)})
        return kept[1]

    def licences_changed(self) -> None:
        self._kept_licences = None

    def packages(self, conn: Connection, ids: Sequence[str], view: View) -> list[dict[str, Any]]:
        rows = repo.datasets_by_ids(conn, ids)
        orgs = repo.named_by_ids(conn, t.organisations, (r.owner_org for r in rows))
        groups = repo.groups_of(conn, ids)
        tags = repo.tags_of(conn, ids)
        resources = repo.resources_of(conn, ids)
        listed = [r.id for found in resources.values() for r in found]
        if listed:
            active = self.datastore_tables(conn, listed)
            view = View(view.lang, view.base_url, view.licences, frozenset(active))
        return [
            package_dict(
                row,
                view,
                organisation=orgs.get(row.owner_org),
                groups=groups.get(row.id, []),
                tags=tags.get(row.id, []),
                resources=resources.get(row.id, []),
            )
            for row in rows
        ]

    def found_packages(
        self,
        conn: Connection,
        ids: Sequence[str],
        view: View,
        docs: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """``packages`` for a search's page: each dataset's dict as the search index keeps it
        (``dictize.kept_package``), finished with what is not the dataset's own; no rendering
        of the dataset's rows. A dataset without a kept dict (not written since migration
        0029) is built from its rows. ``docs``: the kept dicts, when the search read them with
        its page (``SearchResult.docs``); else they are read here."""
        return self._found(conn, ids, view, {}, docs)[0]

    def _found(
        self,
        conn: Connection,
        ids: Sequence[str],
        view: View,
        facet_names: Mapping[str, Sequence[str]],
        docs: Mapping[str, str] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, list[Row[Any]]]]:
        """``found_packages``, and the organisations and groups that ``facet_names`` name
        ("organization", "groups": a search's facet values) for their titles: read with the
        page's own, in one statement (on PostgreSQL each read is a round trip)."""
        if docs is None:
            docs = index.kept_docs(conn, ids, view.lang)
        kept = {i: orjson.loads(doc) for i, doc in docs.items()}
        built: dict[str, dict[str, Any]] = {}
        missing = [i for i in ids if i not in kept]
        if missing:
            built = {p["id"]: p for p in self.packages(conn, missing, view)}
        organisations, groups = repo.organisations_and_groups(
            conn,
            repo.Named(
                (k["owner_org"] for k in kept.values()), facet_names.get("organization", ())
            ),
            repo.Named(
                (g for k in kept.values() for g in k["groups"]), facet_names.get("groups", ())
            ),
        )
        named = {"organization": organisations, "groups": groups}
        if kept:
            orgs = {r.id: r for r in organisations}
            by_id = {r.id: r for r in groups}  # in name order
            listed = [r["id"] for k in kept.values() for r in k["resources"]]
            active = self.datastore_tables(conn, listed) if listed else set()
            view = View(view.lang, view.base_url, view.licences, frozenset(active))
            for k in kept.values():
                finish_kept(k, view, organisation=orgs.get(k["owner_org"]), groups=by_id)
        page = [kept[i] if i in kept else built[i] for i in ids if i in kept or i in built]
        return page, named

    # -- reads -------------------------------------------------------------------------------

    def visible_dataset(self, conn: Connection, p: Principal, key: str) -> Any:
        row = repo.find_dataset(conn, key) if key else None
        if row is None or not p.may_see(row.owner_org, row.state, row.private):
            raise NotFound(f"there is no dataset {key!r} (or it is not visible to you)")
        return row

    def package_show(self, p: Principal, lang: Any, base_url: str, key: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = self.visible_dataset(conn, p, key)
            return self.packages(conn, [row.id], self.view(conn, lang, base_url))[0]

    def activity(self, p: Principal, key: str, *, offset: int, limit: int) -> list[dict[str, Any]]:
        """The audit trail of a dataset, newest first. Who made each change is shown to the
        organisation's members only (users are API keys, whose names may be internal)."""
        a = t.activity
        with self.db.read() as conn:
            row = self.visible_dataset(conn, p, key)
            entries = conn.execute(
                select(a)
                .where(a.c.dataset_id == row.id)
                .order_by(a.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        insider = p.has_role(row.owner_org, "member")
        return [
            {
                "id": str(e.id),
                "timestamp": iso(e.at),
                "user_id": e.actor if insider else None,
                "activity_type": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "package_id": row.id,
                "data": e.data,
            }
            for e in entries
        ]

    def package_list(
        self,
        p: Principal,
        *,
        limit: int | None,
        offset: int,
        include_private: bool,
        include_drafts: bool = False,
    ) -> list[str]:
        d = t.datasets
        orgs = p.reads_private_of()
        visible = d.c.state == "active"
        if include_drafts:
            editable = None if orgs is None else [o for o in orgs if p.has_role(o, "editor")]
            drafts = d.c.state == "draft"
            if editable is not None:
                drafts = drafts & d.c.owner_org.in_(editable)
            visible = visible | drafts
        query = select(d.c.name).where(visible)
        if not include_private:
            query = query.where(~d.c.private)
        elif orgs is not None:
            query = query.where(or_(~d.c.private, d.c.owner_org.in_(list(orgs))))
        query = query.order_by(d.c.name).offset(offset).limit(limit or MAX_LIST)
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def current_with_resources(
        self, p: Principal, lang: Any, base_url: str, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        request = engine.SearchRequest(
            rows=limit, start=offset, sort="metadata_modified desc", lang=lang
        )
        with self.db.read() as conn:
            found = engine.search(conn, request, p)
            view = self.view(conn, lang, base_url)
            return self.found_packages(conn, found.ids, view, found.docs_in(view.lang))

    def package_search(
        self, p: Principal, base_url: str, request: engine.SearchRequest
    ) -> dict[str, Any]:
        with self.db.snapshot() as conn:
            found = engine.search(conn, request, p)
            view = self.view(conn, request.lang, base_url)
            names = {f: [value for value, _ in found.facets.get(f, [])] for f in TITLED}
            docs = found.docs_in(view.lang)
            results, named = self._found(conn, found.ids, view, names, docs)
        titles = _facet_titles(found.facets, view, named)
        facets = {f: dict(items) for f, items in found.facets.items()}
        search_facets = {
            f: {
                "title": f,
                "items": [
                    {"name": value, "display_name": titles.get((f, value), value), "count": n}
                    for value, n in items
                ],
            }
            for f, items in found.facets.items()
        }
        return {
            "count": found.count,
            "results": results,
            "sort": found.sort,
            "facets": facets,
            "search_facets": search_facets,
        }

    def resource_show(self, p: Principal, lang: Any, base_url: str, key: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(select(t.resources).where(t.resources.c.id == key)).first()
            dataset = (
                conn.execute(select(t.datasets).where(t.datasets.c.id == row.dataset_id)).first()
                if row is not None
                else None
            )
            if (
                row is None
                or dataset is None
                or not p.may_see(dataset.owner_org, dataset.state, dataset.private)
            ):
                raise NotFound(f"there is no resource {key!r} (or it is not visible to you)")
            return resource_dict(row, self.view(conn, lang, base_url, [row.id]))

    def upload_path(self, p: Principal, dataset_key: str, resource_id: str) -> tuple[Path, str]:
        """The file of an upload resource, for the download route."""
        with self.db.read() as conn:
            dataset = self.visible_dataset(conn, p, dataset_key)
            row = conn.execute(
                select(t.resources).where(
                    t.resources.c.id == resource_id, t.resources.c.dataset_id == dataset.id
                )
            ).first()
        path = self.uploads.path(resource_id, row.url) if row and row.kind == "upload" else None
        if row is None or path is None:
            raise NotFound(f"resource {resource_id!r} has no uploaded file here")
        return path, str(row.mimetype or "application/octet-stream")

    def resource_search(
        self,
        p: Principal,
        lang: Any,
        base_url: str,
        *,
        terms: dict[str, list[str]],
        order_by: str | None,
        offset: int,
        limit: int,
    ) -> dict[str, Any]:
        """CKAN's ``resource_search``: each ``field:term`` must match (case-insensitive
        substring; name and description in any language), on visible datasets only."""
        r, d = t.resources, t.datasets
        columns = {
            "name": r.c.name,
            "description": r.c.description,
            "format": r.c.format,
            "url": r.c.url,
            "mimetype": r.c.mimetype,
            "hash": r.c.hash,
            "kind": r.c.kind,
            "id": r.c.id,
            "package_id": r.c.dataset_id,
        }
        unknown = sorted(set(terms) - set(columns))
        if unknown:
            raise ValidationFailed.one(
                "query",
                f"cannot search resources by {', '.join(unknown)}; fields are: "
                + ", ".join(columns),
            )
        orgs = p.reads_private_of()
        query = select(r).join(d, d.c.id == r.c.dataset_id).where(d.c.state == "active")
        if orgs is not None:
            query = query.where(or_(~d.c.private, d.c.owner_org.in_(list(orgs))))
        for name, values in terms.items():
            column = columns[name]
            for value in values:
                target: Any = (
                    func.lower(cast(column, Text))
                    if name in ("name", "description")
                    else func.lower(column)
                )
                query = query.where(target.contains(value.lower(), autoescape=True))
        order = columns.get(order_by or "")
        query = query.order_by(*([order] if order is not None else []), r.c.id)
        with self.db.read() as conn:
            count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = list(conn.execute(query.offset(offset).limit(limit)))
            view = self.view(conn, lang, base_url, [row.id for row in rows])
            return {"count": count, "results": [resource_dict(row, view) for row in rows]}

    def tag_list(self, p: Principal, *, query: str | None, all_fields: bool) -> list[Any]:
        tg, dt, d = t.tags, t.dataset_tags, t.datasets
        stmt = (
            select(tg.c.id, tg.c.name)
            .where(
                tg.c.id.in_(
                    select(dt.c.tag_id)
                    .join(d, d.c.id == dt.c.dataset_id)
                    .where(d.c.state == "active", ~d.c.private)
                )
            )
            .order_by(tg.c.name)
        )
        if query:
            stmt = stmt.where(func.lower(tg.c.name).contains(query.lower(), autoescape=True))
        with self.db.read() as conn:
            rows = list(conn.execute(stmt))
        if all_fields:
            from smartcity.opendata.catalogue.dictize import tag_dict

            return [tag_dict(row.id, row.name) for row in rows]
        return [row.name for row in rows]

    def tag_show(
        self, p: Principal, lang: Any, base_url: str, key: str, *, include_datasets: bool
    ) -> dict[str, Any]:
        from smartcity.opendata.catalogue.dictize import tag_dict

        tg = t.tags
        with self.db.read() as conn:
            row = conn.execute(select(tg).where(or_(tg.c.id == key, tg.c.name == key))).first()
            if row is None:
                raise NotFound(f"there is no tag {key!r}")
            out = tag_dict(row.id, row.name)
            if include_datasets:
                request = engine.SearchRequest(
                    fq=[_facet_query("tags", row.name)], rows=1000, lang=lang
                )
                found = engine.search(conn, request, p)
                out["packages"] = self.packages(conn, found.ids, self.view(conn, lang, base_url))
            return out

    def license_list(self, lang: Any) -> list[dict[str, Any]]:
        from smartcity.opendata.languages import pick

        with self.db.read() as conn:
            rows = repo.licences(conn)
        return [
            {
                "id": row.id,
                "title": pick(row.title, lang),
                "title_translated": dict(row.title),
                "url": row.url,
                "is_okd_compliant": bool(row.is_open),
                "od_conformance": "approved" if row.is_open else "not reviewed",
                "status": "active",
            }
            for row in rows
        ]

    # -- dataset writes ----------------------------------------------------------------------

    def package_create(
        self, p: Principal, lang: Any, base_url: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        staged = _Staged()
        with self.db.write() as conn:
            # Who may is checked before what is sent (as CKAN): a caller without the right
            # learns nothing from validation messages.
            p.require_writer("create datasets")
            org = self._owner(conn, str(data.get("owner_org") or "") or None)
            p.require(org.id, "editor", f"create datasets in {org.name}")
            model = parse(DatasetIn, data)
            if repo.find_dataset(conn, model.name) is not None:
                raise ValidationFailed.one("name", "That URL is already in use.")
            dataset_id = new_id()
            if model.id and p.sysadmin:  # ckanapi load keeps a catalogue's ids
                if repo.find_dataset(conn, model.id) is not None:
                    raise ValidationFailed.one("id", "Dataset id already exists")
                dataset_id = model.id
            now = repo.now_us()
            values = self._values(model, None, lang)
            created = (parse_iso(model.metadata_created) if p.sysadmin else None) or now
            modified = (parse_iso(model.metadata_modified) if p.sysadmin else None) or now
            conn.execute(
                insert(t.datasets).values(
                    id=dataset_id,
                    owner_org=org.id,
                    # A sysadmin moving a catalogue keeps who created each dataset.
                    creator=(model.creator_user_id if p.sysadmin else None) or p.name,
                    created_at=created,
                    modified_at=modified,
                    **values,
                )
            )
            repo.set_tags(conn, dataset_id, self._tag_names(model), tag_id)
            repo.set_groups(conn, dataset_id, self._group_ids(conn, model.groups or []))
            self._sync_resources(
                conn,
                p,
                dataset_id,
                model.resources or [],
                lang,
                base_url,
                now,
                staged,
                creating=True,
            )
            return self._finish(conn, p, dataset_id, "package_create", lang, base_url)

    def package_update(
        self,
        p: Principal,
        lang: Any,
        base_url: str,
        data: dict[str, Any],
        *,
        action: str = "package_update",
    ) -> dict[str, Any]:
        key = str(data.get("id") or data.get("name") or "")
        model = parse(DatasetIn, {"name": "placeholder", **data} if "name" not in data else data)
        staged = _Staged()
        with self.db.write() as conn:
            current = repo.find_dataset(conn, key, for_update=True) if key else None
            if current is None or (current.state == "deleted" and not p.sysadmin):
                raise NotFound(f"there is no dataset {key!r}")
            if not p.may_see(current.owner_org, current.state, current.private):
                raise NotFound(f"there is no dataset {key!r}")
            p.require(current.owner_org, "editor", f"update dataset {current.name}")
            if "name" not in data:
                model = model.model_copy(update={"name": current.name})
            if "private" not in data:  # never publish a private dataset by omission
                model = model.model_copy(update={"private": bool(current.private)})
            org = self._owner(conn, model.owner_org or current.owner_org)
            if org.id != current.owner_org:
                p.require(org.id, "editor", f"move datasets into {org.name}")
            clash = repo.find_dataset(conn, model.name)
            if clash is not None and clash.id != current.id:
                raise ValidationFailed.one("name", "That URL is already in use.")
            now = repo.now_us()
            values = self._values(model, current, lang)
            conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == current.id)
                .values(owner_org=org.id, modified_at=now, **values)
            )
            if model.tags is not None or model.tag_string is not None or "tags" in data:
                repo.set_tags(conn, current.id, self._tag_names(model), tag_id)
            if model.groups is not None:
                repo.set_groups(conn, current.id, self._group_ids(conn, model.groups))
            if model.resources is not None:
                self._sync_resources(
                    conn,
                    p,
                    current.id,
                    model.resources,
                    lang,
                    base_url,
                    now,
                    staged,
                    creating=False,
                )
            out = self._finish(conn, p, current.id, action, lang, base_url)
        for resource_id in staged.removed:
            self.uploads.remove(resource_id)
        return out

    def package_patch(
        self, p: Principal, lang: Any, base_url: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """``package_update`` of the dataset as it is with ``data``'s keys changed."""
        key = str(data.get("id") or data.get("name") or "")
        current = self._editable(p, key, lang, base_url)
        merged = {k: v for k, v in current.items() if k != "resources"}
        merged.update(data)
        merged["id"] = current["id"]
        return self.package_update(p, lang, base_url, merged, action="package_patch")

    def _editable(self, p: Principal, key: str, lang: Any, base_url: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = repo.find_dataset(conn, key) if key else None
            if row is None or not p.may_see(row.owner_org, row.state, row.private):
                raise NotFound(f"there is no dataset {key!r}")
            p.require(row.owner_org, "editor", f"update dataset {row.name}")
            return self.packages(conn, [row.id], self.view(conn, lang, base_url))[0]

    def package_delete(self, p: Principal, key: str) -> None:
        with self.db.write() as conn:
            row = repo.find_dataset(conn, key, for_update=True) if key else None
            if row is None or not p.may_see(row.owner_org, row.state, row.private):
                raise NotFound(f"there is no dataset {key!r}")
            p.require(row.owner_org, "editor", f"delete dataset {row.name}")
            conn.execute(
                update(t.datasets)
                .where(t.datasets.c.id == row.id)
                .values(state="deleted", modified_at=repo.now_us())
            )
            index.remove(conn, row.id)
            repo.record(
                conn,
                actor=p.actor,
                action="package_delete",
                object_type="dataset",
                object_id=row.id,
                dataset_id=row.id,
                data={"name": row.name, "state": "deleted"},
            )

    def dataset_purge(self, p: Principal, key: str) -> None:
        p.require_sysadmin("purge datasets")
        with self.db.write() as conn:
            row = repo.find_dataset(conn, key, for_update=True) if key else None
            if row is None:
                raise NotFound(f"there is no dataset {key!r}")
            resource_ids = list(
                conn.execute(
                    select(t.resources.c.id).where(t.resources.c.dataset_id == row.id)
                ).scalars()
            )
            index.remove(conn, row.id)
            self._removed(conn, resource_ids)
            for table in (
                t.dataset_tags,
                t.dataset_groups,
                t.resources,
                archive_tables.versions,  # purged means gone, its history too
            ):
                conn.execute(delete(table).where(table.c.dataset_id == row.id))
            conn.execute(delete(t.datasets).where(t.datasets.c.id == row.id))
            repo.record(
                conn,
                actor=p.actor,
                action="dataset_purge",
                object_type="dataset",
                object_id=row.id,
                dataset_id=row.id,
                data=None,
            )
        for resource_id in resource_ids:
            self.uploads.remove(resource_id)

    # -- resource writes ---------------------------------------------------------------------

    def resource_create(
        self, p: Principal, lang: Any, base_url: str, data: dict[str, Any], upload: Upload | None
    ) -> dict[str, Any]:
        model = parse(ResourceIn, data)
        staged = self._stage(upload)
        try:
            with self.db.write() as conn:
                dataset = self._dataset_for_write(conn, p, model.package_id or "")
                now = repo.now_us()
                position = conn.execute(
                    select(func.coalesce(func.max(t.resources.c.position) + 1, 0)).where(
                        t.resources.c.dataset_id == dataset.id
                    )
                ).scalar_one()
                resource_id = self._resource_id(conn, p, model)
                values = resource_values(
                    model,
                    None,
                    staged.stored,
                    lang=lang,
                    base_url=base_url,
                    now=now,
                    keep_times=p.sysadmin,
                )
                conn.execute(
                    insert(t.resources).values(
                        id=resource_id, dataset_id=dataset.id, position=position, **values
                    )
                )
                out = self._after_resource(
                    conn, p, dataset.id, resource_id, "resource_create", lang, base_url, now
                )
                self._commit_file(staged, resource_id)
            if staged.stored is not None:
                self._uploaded(resource_id)
            return out
        finally:
            self.uploads.discard(staged.path)

    def resource_update(
        self,
        p: Principal,
        lang: Any,
        base_url: str,
        data: dict[str, Any],
        upload: Upload | None,
        *,
        patch: bool = False,
    ) -> dict[str, Any]:
        model = parse(ResourceIn, data)
        staged = self._stage(upload)
        try:
            with self.db.write() as conn:
                current = conn.execute(
                    select(t.resources).where(t.resources.c.id == (model.id or ""))
                ).first()
                if current is None:
                    raise NotFound(f"there is no resource {model.id!r}")
                dataset = self._dataset_for_write(conn, p, current.dataset_id)
                now = repo.now_us()
                values = resource_values(
                    model,
                    current,
                    staged.stored,
                    lang=lang,
                    base_url=base_url,
                    now=now,
                    keep_times=False,
                )
                conn.execute(
                    update(t.resources).where(t.resources.c.id == current.id).values(**values)
                )
                action = "resource_patch" if patch else "resource_update"
                out = self._after_resource(
                    conn, p, dataset.id, current.id, action, lang, base_url, now
                )
                self._commit_file(staged, current.id)
            if values["kind"] != "upload" and current.kind == "upload":
                self.uploads.remove(current.id)
            if staged.stored is not None:
                self._uploaded(current.id)
            return out
        finally:
            self.uploads.discard(staged.path)

    def resource_delete(self, p: Principal, key: str) -> None:
        with self.db.write() as conn:
            current = conn.execute(select(t.resources).where(t.resources.c.id == key)).first()
            if current is None:
                raise NotFound(f"there is no resource {key!r}")
            dataset = self._dataset_for_write(conn, p, current.dataset_id)
            self._removed(conn, [key])
            conn.execute(delete(t.resources).where(t.resources.c.id == key))
            now = repo.now_us()
            conn.execute(
                update(t.datasets).where(t.datasets.c.id == dataset.id).values(modified_at=now)
            )
            index.reindex(conn, dataset.id)
            repo.record(
                conn,
                actor=p.actor,
                action="resource_delete",
                object_type="resource",
                object_id=key,
                dataset_id=dataset.id,
                data=None,
            )
        self.uploads.remove(key)

    # -- helpers -------------------------------------------------------------------------------

    def _stage(self, upload: Upload | None) -> _Staged:
        if upload is None:
            return _Staged()
        path, stored = self.uploads.stage(upload.file, upload.filename)
        return _Staged(path, stored)

    def _commit_file(self, staged: _Staged, resource_id: str) -> None:
        """Called last inside the transaction: if the move fails, the write rolls back."""
        if staged.path is not None and staged.stored is not None:
            self.uploads.commit(staged.path, resource_id, staged.stored)
            staged.path = None

    def _dataset_for_write(self, conn: Connection, p: Principal, key: str) -> Any:
        dataset = repo.find_dataset(conn, key, for_update=True) if key else None
        if dataset is None or not p.may_see(dataset.owner_org, dataset.state, dataset.private):
            raise (
                NotFound(f"there is no dataset {key!r}")
                if key
                else ValidationFailed.one("package_id", "Missing value")
            )
        p.require(dataset.owner_org, "editor", f"change the resources of {dataset.name}")
        return dataset

    def _resource_id(self, conn: Connection, p: Principal, model: ResourceIn) -> str:
        if model.id and p.sysadmin:
            taken = conn.execute(
                select(t.resources.c.id).where(t.resources.c.id == model.id)
            ).first()
            if taken is not None:
                raise ValidationFailed.one("id", f"resource id {model.id} is already in use")
            return model.id
        return new_id()

    def _after_resource(
        self,
        conn: Connection,
        p: Principal,
        dataset_id: str,
        resource_id: str,
        action: str,
        lang: Any,
        base_url: str,
        now: int,
    ) -> dict[str, Any]:
        conn.execute(
            update(t.datasets).where(t.datasets.c.id == dataset_id).values(modified_at=now)
        )
        index.reindex(conn, dataset_id)
        row = conn.execute(select(t.resources).where(t.resources.c.id == resource_id)).one()
        out = resource_dict(row, self.view(conn, lang, base_url, [row.id]))
        repo.record(
            conn,
            actor=p.actor,
            action=action,
            object_type="resource",
            object_id=resource_id,
            dataset_id=dataset_id,
            data=out,
        )
        return out

    def _sync_resources(
        self,
        conn: Connection,
        p: Principal,
        dataset_id: str,
        wanted: Sequence[ResourceIn],
        lang: Any,
        base_url: str,
        now: int,
        staged: _Staged,
        *,
        creating: bool,
    ) -> None:
        """Make the dataset's resources ``wanted``, in that order: known ids are updated,
        others created, the rest deleted (their files go after the commit)."""
        r = t.resources
        existing = {
            row.id: row for row in conn.execute(select(r).where(r.c.dataset_id == dataset_id))
        }
        kept: set[str] = set()
        for position, model in enumerate(wanted):
            current = existing.get(model.id or "")
            values = resource_values(
                model,
                current,
                None,
                lang=lang,
                base_url=base_url,
                now=now,
                keep_times=creating and p.sysadmin,
            )
            if current is not None:
                kept.add(current.id)
                if _unchanged(current, values, position):
                    continue
                conn.execute(
                    update(r).where(r.c.id == current.id).values(position=position, **values)
                )
            else:
                resource_id = self._resource_id(conn, p, model)
                conn.execute(
                    insert(r).values(
                        id=resource_id, dataset_id=dataset_id, position=position, **values
                    )
                )
        gone = [rid for rid in existing if rid not in kept]
        if gone:
            self._removed(conn, gone)
            conn.execute(delete(r).where(r.c.id.in_(gone)))
            staged.removed.extend(gone)

    def _finish(
        self, conn: Connection, p: Principal, dataset_id: str, action: str, lang: Any, base_url: str
    ) -> dict[str, Any]:
        index.reindex(conn, dataset_id)
        out = self.packages(conn, [dataset_id], self.view(conn, lang, base_url))[0]
        repo.record(
            conn,
            actor=p.actor,
            action=action,
            object_type="dataset",
            object_id=dataset_id,
            dataset_id=dataset_id,
            data=out,
        )
        return out

    def _owner(self, conn: Connection, key: str | None) -> Any:
        if not key:
            raise ValidationFailed.one(
                "owner_org", "A dataset belongs to an organization: send owner_org (its id or name)"
            )
        org = repo.find_named(conn, t.organisations, key)
        if org is None or org.state != "active":
            raise ValidationFailed.one("owner_org", f"Organization {key!r} does not exist")
        return org

    def _group_ids(self, conn: Connection, refs: Sequence[Any]) -> list[str]:
        ids: list[str] = []
        for ref in refs:
            key = ref.key
            group = repo.find_named(conn, t.groups, key) if key else None
            if group is None or group.state != "active":
                raise ValidationFailed.one("groups", f"Group {key!r} does not exist")
            if group.id not in ids:
                ids.append(group.id)
        return ids

    @staticmethod
    def _tag_names(model: DatasetIn) -> list[str]:
        names = [tag.name for tag in model.tags or []]
        if model.tag_string:
            names += [s.strip() for s in model.tag_string.split(",") if s.strip()]
        return list(dict.fromkeys(names))

    @staticmethod
    def _values(model: DatasetIn, current: Any, lang: Any) -> dict[str, Any]:
        def texts(name: str) -> dict[str, str]:
            given = getattr(model, f"{name}_translated")
            base = getattr(current, name) if current is not None and given is None else None
            return merge(base, given, getattr(model, name), lang)

        title = texts("title")
        dictionary = [
            {
                "name": f.name,
                "type": f.type,
                "unit": f.unit,
                "description": merge(None, f.description_translated, f.description, lang),
            }
            for f in model.data_dictionary or []
        ]
        return {
            "name": model.name,
            "state": model.state
            or (current.state if current is not None and current.state != "deleted" else "active"),
            "private": model.private,
            "title": title,
            "title_en": title.get("en", "")[:500],
            "title_tc": title.get("zh-Hant", "")[:500],
            "title_sc": title.get("zh-Hans", "")[:500],
            "notes": texts("notes"),
            "license_id": model.license_id or None,
            "url": model.url or None,
            "version": model.version or None,
            "author": model.author or None,
            "author_email": model.author_email or None,
            "maintainer": model.maintainer or None,
            "maintainer_email": model.maintainer_email or None,
            "frequency": model.frequency,
            "temporal_start": model.temporal_start,
            "temporal_end": model.temporal_end,
            "spatial": model.spatial,
            "spatial_label": texts("spatial_label"),
            "data_dictionary": dictionary,
            "extras": {e.key: e.value for e in model.extras or []},
        }


def _facet_query(field_name: str, value: str) -> str:
    return f'{field_name}:"{value.replace(chr(34), "")}"'


def _unchanged(current: Any, values: dict[str, Any], position: int) -> bool:
    if current.position != position:
        return False
    return all(
        getattr(current, k) == v
        for k, v in values.items()
        if k not in ("modified_at", "created_at", "data_modified_at")
    )


def _facet_titles(
    facets: dict[str, list[tuple[str, int]]], view: View, named: Mapping[str, list[Row[Any]]]
) -> dict[tuple[str, str], str]:
    """Organisations, groups and licences show their titles in the reader's language."""
    from smartcity.opendata.languages import pick

    titles: dict[tuple[str, str], str] = {}
    for f in TITLED:
        names = {value for value, _ in facets.get(f, [])}
        for row in named.get(f, []):
            if row.name in names:
                titles[(f, row.name)] = pick(row.title, view.lang) or row.name
    for value, _ in facets.get("license_id", []):
        licence = view.licences.get(value)
        if licence is not None:
            titles[("license_id", value)] = pick(licence.title, view.lang)
    return titles
