"""``build_opendata``: the portal's services, made once per app (and by the command line)."""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.config import OpenDataSettings
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
    datastore: DataStore


def build_opendata(db: Database, settings: OpenDataSettings) -> OpenData:
    uploads = UploadStore(settings.upload_dir, settings.max_upload_bytes)
    catalogue = CatalogueService(db, uploads)
    datastore = DataStore(db)
    # The catalogue calls these without importing the DataStore (which builds on it).
    catalogue.on_resources_removed.append(datastore.drop)
    catalogue.on_upload.append(UploadLoader(datastore, settings.datastore_sync_load_bytes).load)
    return OpenData(settings, catalogue, OrganisationService(db, catalogue), datastore)
