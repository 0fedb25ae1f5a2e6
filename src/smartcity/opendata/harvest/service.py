"""Writing what a harvester read: each remote dataset becomes one dataset here, created the
first time and updated in place after, never duplicated.

A harvested dataset's id (and its resources' ids) follow from the source's URL and the remote
id (UUID 5), so a repeated harvest finds what the last one wrote, whatever it is named now.
What the source says is kept and shown in ``extras`` (see docs/opendata.md, Harvesting):
``harvest_source_url``, ``harvest_source_type``, ``harvest_remote_id``, ``harvest_remote_url``,
``harvest_remote_modified`` and ``harvested_at``. A dataset whose source has not changed since
the last harvest (the same ``metadata_modified``) is left alone. A dataset harvested from the
source before that a complete harvest no longer finds there is withdrawn here (deleted, as
ckanext-harvest does; it comes back if the source lists it again); a harvest that fails part
way withdraws nothing. Organisations and groups the source uses are created here when
missing. Writes go through the catalogue as a sysadmin named ``harvest``, so they are
validated, indexed and audited like any other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.organisations import GROUP, ORGANIZATION, OrganisationService
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.errors import OpenDataError
from smartcity.opendata.harvest.model import RemoteDataset

NAMESPACE = uuid.UUID("7f1c9d5e-2b7a-4e55-9a43-5b3c1f0d8e21")  # this platform's harvests
HARVEST_KEYS = (
    "harvest_source_url",
    "harvest_source_type",
    "harvest_remote_id",
    "harvest_remote_url",
    "harvest_remote_modified",
    "harvested_at",
)


def local_id(source: str, remote_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{source}\n{remote_id}"))


@dataclass
class HarvestReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # harvested before, gone from the source now: withdrawn here
    failed: list[tuple[str, str]] = field(default_factory=list)  # (remote name, why)


class Harvester:
    def __init__(self, catalogue: CatalogueService, organisations: OrganisationService) -> None:
        self.catalogue = catalogue
        self.organisations = organisations

    def harvest(
        self,
        source: str,
        source_type: str,
        datasets: Iterable[RemoteDataset],
        *,
        organization: str | None = None,
        progress: Callable[[RemoteDataset], None] | None = None,
    ) -> HarvestReport:
        """Write ``datasets`` read from ``source``; ``organization`` is the owner of those
        the source names none for. One dataset failing is reported; the others go on."""
        report = HarvestReport()
        actor = Principal("harvest", sysadmin=True, actor=f"harvest ({source})")
        seen: set[str] = set()
        for remote in datasets:  # a reader that fails part way raises: nothing is withdrawn
            seen.add(local_id(source, remote.remote_id))
            try:
                outcome = self._one(actor, source, source_type, remote, organization)
            except OpenDataError as exc:
                report.failed.append((remote.remote_name, exc.message))
            else:
                setattr(report, outcome, getattr(report, outcome) + 1)
            if progress is not None:
                progress(remote)
        for gone in self._harvested_from(source) - seen:
            self.catalogue.package_delete(actor, gone)
            report.deleted += 1
        return report

    def _harvested_from(self, source: str) -> set[str]:
        """The ids of the datasets here that an earlier harvest of ``source`` wrote and that
        are not deleted (their extras name the source)."""
        d = t.datasets
        with self.catalogue.db.read() as conn:
            rows = conn.execute(select(d.c.id, d.c.extras).where(d.c.state != "deleted"))
            return {
                row.id
                for row in rows
                if isinstance(row.extras, dict) and row.extras.get("harvest_source_url") == source
            }

    def _one(
        self,
        p: Principal,
        source: str,
        source_type: str,
        remote: RemoteDataset,
        fallback_org: str | None,
    ) -> str:
        dataset_id = local_id(source, remote.remote_id)
        with self.catalogue.db.read() as conn:
            existing = repo.find_dataset(conn, dataset_id)
            taken = repo.find_dataset(conn, remote.remote_name) if existing is None else None
        if existing is not None and remote.modified:
            extras = dict(existing.extras or {})  # stored as {key: value}
            if (
                extras.get("harvest_remote_modified") == remote.modified
                and existing.state != "deleted"
            ):
                return "unchanged"
        if taken is not None:
            raise OpenDataError(
                f"a dataset here is already named {remote.remote_name!r} (not from this "
                "source): rename it, or purge it, and harvest again"
            )
        owner = self._organisation(p, remote.organization) or fallback_org
        if not owner:
            raise OpenDataError(
                "the source names no organisation for it: harvest with --organization NAME"
            )
        data = dict(remote.package)
        data.update(
            id=dataset_id,
            name=existing.name if existing is not None else remote.remote_name,
            owner_org=owner,
            groups=[{"name": g} for g in self._groups(p, remote.groups)],
            extras=[
                *remote.extras,
                {"key": "harvest_source_url", "value": source},
                {"key": "harvest_source_type", "value": source_type},
                {"key": "harvest_remote_id", "value": remote.remote_id},
                {"key": "harvest_remote_url", "value": remote.page_url or ""},
                {"key": "harvest_remote_modified", "value": remote.modified or ""},
                {
                    "key": "harvested_at",
                    "value": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
            ],
            resources=[
                {
                    **{k: v for k, v in r.items() if k != "remote_id" and v is not None},
                    "id": local_id(source, f"{remote.remote_id}\n{r['remote_id']}"),
                }
                for r in remote.package.get("resources", [])
            ],
        )
        if existing is None:
            self.catalogue.package_create(p, "en", "", data)
            return "created"
        data["state"] = "active"  # a harvested dataset deleted here comes back with its source
        self.catalogue.package_update(p, "en", "", data)
        return "updated"

    def _organisation(self, p: Principal, org: dict[str, Any] | None) -> str | None:
        if not org:
            return None
        name = str(org["name"]).lower()
        with self.catalogue.db.read() as conn:
            if repo.find_named(conn, ORGANIZATION.table, name) is not None:
                return name
        self.organisations.create(
            ORGANIZATION,
            p,
            "en",
            "",
            {"name": name, "title_translated": org.get("title_translated") or {"en": name}},
        )
        return name

    def _groups(self, p: Principal, groups: list[dict[str, Any]]) -> list[str]:
        names = []
        for group in groups:
            name = str(group["name"]).lower()
            with self.catalogue.db.read() as conn:
                known = repo.find_named(conn, GROUP.table, name) is not None
            if not known:
                self.organisations.create(
                    GROUP,
                    p,
                    "en",
                    "",
                    {
                        "name": name,
                        "title_translated": group.get("title_translated") or {"en": name},
                    },
                )
            names.append(name)
        return names
