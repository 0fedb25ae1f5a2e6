"""``build_opendata``: the portal's services, made once per app (and by the command line)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smartcity.config import OpenDataSettings
from smartcity.hub.outbound import TargetGuard
from smartcity.hub.runtime import Hub
from smartcity.opendata.archive.queries import ArchiveQueries
from smartcity.opendata.archive.service import ArchiveService
from smartcity.opendata.catalogue.organisations import OrganisationService
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.catalogue.uploads import UploadStore
from smartcity.opendata.citydata.provenance import FeedProvenance, Provenances
from smartcity.opendata.citydata.publish import CityDatasets
from smartcity.opendata.datastore.background import UploadLoader
from smartcity.opendata.datastore.store import DataStore
from smartcity.opendata.errors import OpenDataError
from smartcity.storage.engine import Database


@dataclass(frozen=True)
class OpenData:
    settings: OpenDataSettings
    catalogue: CatalogueService
    organisations: OrganisationService
    archive: ArchiveService
    archive_queries: ArchiveQueries
    datastore: DataStore
    # Live city datasets: needs the hub (None for commands that only manage the catalogue).
    city_datasets: CityDatasets | None = None

    @property
    def city(self) -> CityDatasets:
        if self.city_datasets is None:
            raise OpenDataError("live city datasets need the hub, which this process lacks")
        return self.city_datasets


def build_opendata(
    db: Database,
    settings: OpenDataSettings,
    hub: Hub | None = None,
    provenance: Iterable[FeedProvenance] = (),
    *,
    forbid_private_targets: bool = False,
) -> OpenData:
    """``provenance``: the Hong Kong connectors' feeds (the app passes them in: opendata does
    not import the live feature)."""
    uploads = UploadStore(settings.upload_dir, settings.max_upload_bytes)
    catalogue = CatalogueService(db, uploads)
    archive = ArchiveService(db, settings, uploads, TargetGuard(forbid_private_targets))
    datastore = DataStore(db)
    # The catalogue calls these without importing the features built on it.
    catalogue.on_upload.append(lambda rid, _path, _format: archive.snapshot_upload(rid))
    catalogue.on_upload.append(UploadLoader(datastore, settings.datastore_sync_load_bytes).load)
    catalogue.on_resources_removed.append(datastore.drop)
    catalogue.datastore_tables = datastore.tables_among
    city = CityDatasets(catalogue, hub, Provenances(provenance)) if hub is not None else None
    return OpenData(
        settings,
        catalogue,
        OrganisationService(db, catalogue),
        archive,
        ArchiveQueries(db, archive.blobs),
        datastore,
        city,
    )
