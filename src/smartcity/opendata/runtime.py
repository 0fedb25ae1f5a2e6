"""``build_opendata``: the portal's services, made once per app (and by the command line)."""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.config import OpenDataSettings
from smartcity.hub.outbound import TargetGuard
from smartcity.opendata.archive.queries import ArchiveQueries
from smartcity.opendata.archive.service import ArchiveService
from smartcity.opendata.catalogue.organisations import OrganisationService
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.catalogue.uploads import UploadStore
from smartcity.opendata.datastore.background import UploadLoader
from smartcity.opendata.datastore.store import DataStore
from smartcity.storage.engine import Database


@dataclass(frozen=True)
class OpenData:
    settings: OpenDataSettings
    catalogue: CatalogueService
    organisations: OrganisationService
    archive: ArchiveService
    archive_queries: ArchiveQueries
    datastore: DataStore


def build_opendata(
    db: Database, settings: OpenDataSettings, *, forbid_private_targets: bool = False
) -> OpenData:
    uploads = UploadStore(settings.upload_dir, settings.max_upload_bytes)
    catalogue = CatalogueService(db, uploads)
    archive = ArchiveService(db, settings, uploads, TargetGuard(forbid_private_targets))
    datastore = DataStore(db)
    # The catalogue calls these without importing the features built on it.
    catalogue.on_upload.append(lambda rid, _path, _format: archive.snapshot_upload(rid))
    catalogue.on_upload.append(UploadLoader(datastore, settings.datastore_sync_load_bytes).load)
    catalogue.on_resources_removed.append(datastore.drop)
    return OpenData(
        settings,
        catalogue,
        OrganisationService(db, catalogue),
        archive,
        ArchiveQueries(db, archive.blobs),
        datastore,
    )
