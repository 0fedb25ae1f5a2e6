"""What a harvester reads from a source, before it is written here: one dataset as CKAN's
write actions take it, with the organisation and groups it needs, and how the source knows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class HarvestError(Exception):
    """The source cannot be read at all (the message says what to check)."""


@dataclass
class RemoteDataset:
    remote_id: str  # the source's id (CKAN) or URI (DCAT)
    remote_name: str  # the name it is created under here
    modified: str | None  # the source's last change, to skip what did not change
    package: dict[str, Any]  # package_create's fields (without id, name, owner_org, extras)
    organization: dict[str, Any] | None  # {"name", "title_translated"}
    groups: list[dict[str, Any]] = field(default_factory=list)
    extras: list[dict[str, str]] = field(default_factory=list)  # the source's own extras
    page_url: str | None = None  # the dataset's page at the source
