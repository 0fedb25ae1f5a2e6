"""Organisations (who publishes), groups (DATA.GOV.HK's categories), memberships with roles,
sysadmins, and ``seed``: the blueprint's bureaux and departments and the 18 categories.

CKAN keeps organisations and groups in one table; here they are two tables with one code
path (``Kind``), since they differ only in who may change them: an organisation's admins
edit it and its members, groups are the sysadmins'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.dictize import View, group_dict, parse_iso
from smartcity.opendata.catalogue.reference import CATEGORIES, LICENCES
from smartcity.opendata.catalogue.schemas import GroupIn, parse
from smartcity.opendata.catalogue.service import CatalogueService, new_id
from smartcity.opendata.errors import NotFound, ValidationFailed
from smartcity.opendata.languages import merge, pick
from smartcity.opendata.search import engine, index
from smartcity.storage.engine import Database

# Seeded organisations and groups get ids derived from their names, so two instances seeded
# alike agree on them (a dump of one loads into the other).
SEED_NAMESPACE = uuid.UUID("6f1d3c1e-0c7a-4d35-9a53-7d1c0b8e2a41")


@dataclass(frozen=True)
class Kind:
    table: Table
    is_organization: bool
    noun: str  # "organization" or "group", as CKAN's messages say

    @property
    def facet(self) -> str:
        return "organization" if self.is_organization else "groups"


ORGANIZATION = Kind(t.organisations, True, "organization")
GROUP = Kind(t.groups, False, "group")


@dataclass(frozen=True)
class SeedOrganisation:
    name: str  # slug
    title: dict[str, str]


class OrganisationService:
    def __init__(self, db: Database, catalogue: CatalogueService) -> None:
        self.db = db
        self.catalogue = catalogue

    # -- reads -------------------------------------------------------------------------------

    def listing(
        self,
        kind: Kind,
        p: Principal,
        lang: Any,
        base_url: str,
        *,
        all_fields: bool,
        sort: str | None,
        limit: int | None,
        offset: int,
        names: list[str] | None,
    ) -> list[Any]:
        with self.db.read() as conn:
            rows = repo.list_named(conn, kind.table, names=names)
            column = "owner_org" if kind.is_organization else "group_id"
            counts = repo.dataset_counts(conn, column, [r.id for r in rows], p.reads_private_of())
            view = self.catalogue.view(conn, lang, base_url)
        items = [(row, counts.get(row.id, 0)) for row in rows]
        field, _, direction = (sort or "name asc").strip().partition(" ")
        keys = {
            "name": lambda item: item[0].name,
            "title": lambda item: pick(item[0].title, view.lang).casefold(),
            "package_count": lambda item: item[1],
        }
        if field not in keys:
            raise ValidationFailed.one("sort", "sort by name, title or package_count")
        items.sort(key=keys[field], reverse=direction.strip().lower() == "desc")
        items = items[offset : offset + limit if limit else None]
        if all_fields:
            return [
                group_dict(row, view, is_organization=kind.is_organization, package_count=n)
                for row, n in items
            ]
        return [row.name for row, _ in items]

    def show(
        self,
        kind: Kind,
        p: Principal,
        lang: Any,
        base_url: str,
        key: str,
        *,
        include_datasets: bool,
        include_users: bool,
    ) -> dict[str, Any]:
        with self.db.read() as conn:
            row = repo.find_named(conn, kind.table, key) if key else None
            if row is None or (row.state != "active" and not p.sysadmin):
                raise NotFound(f"there is no {kind.noun} {key!r}")
            view = self.catalogue.view(conn, lang, base_url)
            request = engine.SearchRequest(
                fq=[f'{kind.facet}:"{row.name}"'],
                rows=1000 if include_datasets else 0,
                include_private=True,
                lang=lang,
            )
            found = engine.search(conn, request, p)
            out = group_dict(
                row, view, is_organization=kind.is_organization, package_count=found.count
            )
            if include_datasets:
                out["packages"] = self.catalogue.packages(conn, found.ids, view)
            if kind.is_organization and include_users and p.has_role(row.id, "member"):
                out["users"] = [
                    {"name": m.user_name, "capacity": m.capacity}
                    for m in repo.members_of(conn, row.id)
                ]
            return out

    def list_for_user(self, p: Principal, lang: Any, base_url: str, permission: str) -> list[Any]:
        """CKAN's ``organization_list_for_user``: where the caller has ``permission``."""
        capacity = {"read": "member", "manage_group": "admin"}.get(permission, "editor")
        with self.db.read() as conn:
            rows = repo.list_named(conn, t.organisations)
            view = self.catalogue.view(conn, lang, base_url)
        return [
            {**group_dict(row, view, is_organization=True), "capacity": p.role_in(row.id)}
            for row in sorted(rows, key=lambda r: r.name)
            if p.has_role(row.id, capacity)
        ]

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, kind: Kind, p: Principal, lang: Any, base_url: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        p.require_sysadmin(f"create {kind.noun}s")
        model = parse(GroupIn, data)
        with self.db.write() as conn:
            if repo.find_named(conn, kind.table, model.name) is not None:
                raise ValidationFailed.one("name", "Group name already exists in database")
            row_id = new_id()
            if model.id:
                if repo.find_named(conn, kind.table, model.id) is not None:
                    raise ValidationFailed.one("id", f"{kind.noun} id already exists")
                row_id = model.id
            now = repo.now_us()
            values = self._values(model, None, lang)
            if not kind.is_organization:
                values["ord"] = self._next_ord(conn)
            created = parse_iso(model.created) or now  # kept when a catalogue moves
            conn.execute(
                insert(kind.table).values(
                    id=row_id, state="active", created_at=created, modified_at=now, **values
                )
            )
            if kind.is_organization:
                self._set_users(conn, row_id, model)
            return self._finish(conn, kind, p, row_id, f"{kind.noun}_create", lang, base_url)

    def update(
        self,
        kind: Kind,
        p: Principal,
        lang: Any,
        base_url: str,
        data: dict[str, Any],
        *,
        patch: bool = False,
    ) -> dict[str, Any]:
        key = str(data.get("id") or data.get("name") or "")
        with self.db.write() as conn:
            current = repo.find_named(conn, kind.table, key) if key else None
            if current is None:
                raise NotFound(f"there is no {kind.noun} {key!r}")
            self._require_admin(kind, p, current.id, f"update {kind.noun} {current.name}")
            if patch:
                data = {"name": current.name, **data}
            model = parse(GroupIn, {"name": current.name, **data})
            clash = repo.find_named(conn, kind.table, model.name)
            if clash is not None and clash.id != current.id:
                raise ValidationFailed.one("name", "Group name already exists in database")
            values = self._values(model, current, lang, keep_unsent=patch, sent=data)
            conn.execute(
                update(kind.table)
                .where(kind.table.c.id == current.id)
                .values(state="active", modified_at=repo.now_us(), **values)
            )
            if kind.is_organization and model.users is not None:
                p.require(current.id, "admin", "change the organization's members")
                self._set_users(conn, current.id, model)
            if values["name"] != current.name or values["title"] != current.title:
                self._reindex_members(conn, kind, current.id)
            action = f"{kind.noun}_{'patch' if patch else 'update'}"
            return self._finish(conn, kind, p, current.id, action, lang, base_url)

    def delete(self, kind: Kind, p: Principal, key: str) -> None:
        with self.db.write() as conn:
            current = repo.find_named(conn, kind.table, key) if key else None
            if current is None or current.state == "deleted":
                raise NotFound(f"there is no {kind.noun} {key!r}")
            self._require_admin(kind, p, current.id, f"delete {kind.noun} {current.name}")
            if kind.is_organization:
                d = t.datasets
                left = conn.execute(
                    select(func.count()).where(d.c.owner_org == current.id, d.c.state != "deleted")
                ).scalar_one()
                if left:
                    raise ValidationFailed.one(
                        "id",
                        f"organization {current.name} still has {left} dataset(s): delete "
                        "them or move them to another organization first",
                    )
            conn.execute(
                update(kind.table)
                .where(kind.table.c.id == current.id)
                .values(state="deleted", modified_at=repo.now_us())
            )
            if not kind.is_organization:
                members = list(
                    conn.execute(
                        select(t.dataset_groups.c.dataset_id).where(
                            t.dataset_groups.c.group_id == current.id
                        )
                    ).scalars()
                )
                conn.execute(
                    t.dataset_groups.delete().where(t.dataset_groups.c.group_id == current.id)
                )
                for dataset_id in members:
                    index.reindex(conn, dataset_id)
            repo.record(
                conn,
                actor=p.actor,
                action=f"{kind.noun}_delete",
                object_type=kind.noun,
                object_id=current.id,
                dataset_id=None,
                data=None,
            )

    def member_create(
        self, p: Principal, organisation: str, user: str, capacity: str
    ) -> dict[str, Any]:
        if capacity not in ("admin", "editor", "member"):
            raise ValidationFailed.one("role", "the role is admin, editor or member")
        if not user:
            raise ValidationFailed.one("username", "Missing value")
        with self.db.write() as conn:
            org = repo.find_named(conn, t.organisations, organisation) if organisation else None
            if org is None or org.state != "active":
                raise NotFound(f"there is no organization {organisation!r}")
            p.require(org.id, "admin", f"manage the members of {org.name}")
            repo.set_member(conn, org.id, user, capacity)
            out = {
                "table_name": "user",
                "table_id": user,
                "group_id": org.id,
                "capacity": capacity,
                "state": "active",
            }
            repo.record(
                conn,
                actor=p.actor,
                action="organization_member_create",
                object_type="organization",
                object_id=org.id,
                dataset_id=None,
                data=out,
            )
            return out

    def member_delete(self, p: Principal, organisation: str, user: str) -> None:
        with self.db.write() as conn:
            org = repo.find_named(conn, t.organisations, organisation) if organisation else None
            if org is None:
                raise NotFound(f"there is no organization {organisation!r}")
            p.require(org.id, "admin", f"manage the members of {org.name}")
            if not repo.remove_member(conn, org.id, user):
                raise NotFound(f"{user!r} is not a member of {org.name}")
            repo.record(
                conn,
                actor=p.actor,
                action="organization_member_delete",
                object_type="organization",
                object_id=org.id,
                dataset_id=None,
                data={"user": user},
            )

    # -- sysadmins and seeding (command line) ------------------------------------------------

    def set_sysadmin(self, name: str, sysadmin: bool) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(t.users).where(t.users.c.name == name).values(sysadmin=sysadmin)
            )
            if not done.rowcount:
                conn.execute(
                    insert(t.users).values(name=name, sysadmin=sysadmin, created_at=repo.now_us())
                )

    def sysadmins(self) -> list[str]:
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(t.users.c.name).where(t.users.c.sysadmin).order_by(t.users.c.name)
                ).scalars()
            )

    def seed(self, organisations: Iterable[SeedOrganisation]) -> dict[str, int]:
        """Create what is missing: the organisations given, DATA.GOV.HK's 18 categories as
        groups, the licences. Existing rows keep their texts (an admin may have edited them)."""
        created = {"organizations": 0, "groups": 0, "licences": 0}
        now = repo.now_us()
        with self.db.write() as conn:
            for org in organisations:
                if repo.find_named(conn, t.organisations, org.name) is None:
                    conn.execute(
                        insert(t.organisations).values(
                            id=str(uuid.uuid5(SEED_NAMESPACE, "organization:" + org.name)),
                            name=org.name,
                            title=org.title,
                            description={},
                            image_url="",
                            state="active",
                            created_at=now,
                            modified_at=now,
                        )
                    )
                    created["organizations"] += 1
            for n, cat in enumerate(CATEGORIES, 1):
                if repo.find_named(conn, t.groups, cat.name) is None:
                    conn.execute(
                        insert(t.groups).values(
                            id=str(uuid.uuid5(SEED_NAMESPACE, "group:" + cat.name)),
                            name=cat.name,
                            title={"en": cat.en, "zh-Hant": cat.tc, "zh-Hans": cat.sc},
                            description={},
                            image_url="",
                            ord=n,
                            state="active",
                            created_at=now,
                            modified_at=now,
                        )
                    )
                    created["groups"] += 1
            created["licences"] = self._seed_licences(conn)
        self.catalogue.licences_changed()
        return created

    def seed_licences(self) -> int:
        """Add the shipped licences that are missing (the migration adds them at first)."""
        with self.db.write() as conn:
            added = self._seed_licences(conn)
        self.catalogue.licences_changed()
        return added

    @staticmethod
    def _seed_licences(conn: Connection) -> int:
        added = 0
        known = set(conn.execute(select(t.licences.c.id)).scalars())
        for n, lic in enumerate(LICENCES, 1):
            if lic.id not in known:
                conn.execute(
                    insert(t.licences).values(
                        id=lic.id,
                        title={"en": lic.en, "zh-Hant": lic.tc, "zh-Hans": lic.sc},
                        url=lic.url,
                        is_open=lic.is_open,
                        ord=n,
                    )
                )
                added += 1
        return added

    # -- helpers -------------------------------------------------------------------------------

    def _require_admin(self, kind: Kind, p: Principal, row_id: str, what: str) -> None:
        if kind.is_organization:
            p.require(row_id, "admin", what)
        else:
            p.require_sysadmin(what)

    @staticmethod
    def _values(
        model: GroupIn,
        current: Any,
        lang: Any,
        *,
        keep_unsent: bool = False,
        sent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        def texts(name: str) -> dict[str, str]:
            given = getattr(model, f"{name}_translated")
            base = getattr(current, name) if current is not None and given is None else None
            return merge(base, given, getattr(model, name), lang)

        image = model.image_url
        if (
            image is None
            and current is not None
            and (keep_unsent or "image_url" not in (sent or {}))
        ):
            image = current.image_url
        return {
            "name": model.name,
            "title": texts("title"),
            "description": texts("description"),
            "image_url": image or "",
        }

    @staticmethod
    def _next_ord(conn: Connection) -> int:
        return int(
            conn.execute(select(func.coalesce(func.max(t.groups.c.ord), 0) + 1)).scalar_one()
        )

    @staticmethod
    def _set_users(conn: Connection, organisation_id: str, model: GroupIn) -> None:
        for member in model.users or []:
            repo.set_member(conn, organisation_id, member.name, member.capacity)

    @staticmethod
    def _reindex_members(conn: Connection, kind: Kind, row_id: str) -> None:
        if kind.is_organization:
            ids = conn.execute(
                select(t.datasets.c.id).where(t.datasets.c.owner_org == row_id)
            ).scalars()
        else:
            ids = conn.execute(
                select(t.dataset_groups.c.dataset_id).where(t.dataset_groups.c.group_id == row_id)
            ).scalars()
        for dataset_id in list(ids):
            index.reindex(conn, dataset_id)

    def _finish(
        self,
        conn: Connection,
        kind: Kind,
        p: Principal,
        row_id: str,
        action: str,
        lang: Any,
        base_url: str,
    ) -> dict[str, Any]:
        row = conn.execute(select(kind.table).where(kind.table.c.id == row_id)).one()
        view: View = self.catalogue.view(conn, lang, base_url)
        out = group_dict(row, view, is_organization=kind.is_organization)
        repo.record(
            conn,
            actor=p.actor,
            action=action,
            object_type=kind.noun,
            object_id=row_id,
            dataset_id=None,
            data=out,
        )
        return out
