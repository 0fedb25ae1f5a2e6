"""Taking snapshots: a resource's content is kept as a new version when its hash differs from
the last one kept, and old versions go by the retention settings.

Uploads are snapshotted as soon as they are written (``CatalogueService`` tells the archive);
links, APIs and hub queries when ``run`` fetches them (``smartcity opendata archive run``,
or ``serve`` every ``SMARTCITY_OPENDATA_ARCHIVE_INTERVAL`` seconds). A remote link is fetched
through the platform's SSRF guard (``hub/outbound.py``), with a byte limit and a timeout;
a hub query is read from this site (``SMARTCITY_OPENDATA_SITE_URL``). The dataset's data
dictionary is kept beside each file the same way, as JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Connection, delete, func, insert, select

from smartcity.config import OpenDataSettings
from smartcity.hub.outbound import TargetGuard, http_client, refusal_in
from smartcity.opendata.archive import tables as a
from smartcity.opendata.archive.store import BlobStore, file_chunks
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.dictize import download_url
from smartcity.opendata.catalogue.uploads import UploadStore
from smartcity.opendata.errors import OpenDataError
from smartcity.storage.engine import Database

log = logging.getLogger("smartcity.opendata.archive")
DAY_US = 86_400 * 1_000_000
FILE, DICTIONARY = "file", "data-dictionary"
FETCHED = ("link", "api", "hub-query")


def now_us() -> int:
    return time.time_ns() // 1000


def archive_url(row: Any) -> str:
    """The url a resource's versions are filed under (see ``tables.py``)."""
    if row.kind == "upload":
        return download_url("", row.dataset_id, row.id, row.url)
    return str(row.url)


@dataclass
class RunReport:
    checked: int = 0
    kept: int = 0  # new versions
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, why)
    pruned: int = 0
    files_removed: int = 0


class ArchiveService:
    def __init__(
        self,
        db: Database,
        settings: OpenDataSettings,
        uploads: UploadStore,
        guard: TargetGuard | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.uploads = uploads
        self.blobs = BlobStore(settings.archive_dir, settings.archive_max_bytes)
        self.guard = guard or TargetGuard(forbid_private=False)

    # -- taking snapshots ------------------------------------------------------------------

    def _latest_sha(self, conn: Connection, resource_id: str, kind: str, url: str) -> str | None:
        v = a.versions
        found = conn.execute(
            select(v.c.sha256)
            .where(v.c.resource_id == resource_id, v.c.kind == kind, v.c.url == url)
            .order_by(v.c.captured_at.desc(), v.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        return str(found) if found is not None else None

    def _keep(
        self,
        row: Any,
        kind: str,
        sha: str,
        size: int,
        fmt: str,
        mimetype: str | None,
        at: int | None = None,
    ) -> bool:
        """Record a version of ``row`` unless its last one has the same content."""
        url = archive_url(row)
        with self.db.write() as conn:
            if self._latest_sha(conn, row.id, kind, url) == sha:
                return False
            conn.execute(
                insert(a.versions).values(
                    dataset_id=row.dataset_id,
                    resource_id=row.id,
                    kind=kind,
                    url=url,
                    name=dict(row.name or {}),
                    format=fmt[:100],
                    mimetype=mimetype,
                    sha256=sha,
                    size=size,
                    captured_at=at or now_us(),
                )
            )
        return True

    def _keep_dictionary(self, row: Any, dictionary: Any) -> None:
        body = json.dumps(dictionary or [], ensure_ascii=False, sort_keys=True).encode()
        sha, size = self.blobs.put([body])
        self._keep(row, DICTIONARY, sha, size, "JSON", "application/json")

    def _resource(self, conn: Connection, resource_id: str) -> tuple[Any, Any] | None:
        r = t.resources
        found = conn.execute(
            select(r, t.datasets.c.data_dictionary)
            .join(t.datasets, t.datasets.c.id == r.c.dataset_id)
            .where(r.c.id == resource_id)
        ).first()
        return (found, found.data_dictionary) if found is not None else None

    def snapshot_upload(self, resource_id: str) -> bool:
        """Keep an uploaded file's content now (called once the upload is committed)."""
        with self.db.read() as conn:
            found = self._resource(conn, resource_id)
        if found is None or found[0].kind != "upload":
            return False
        row, dictionary = found
        path = self.uploads.path(row.id, row.url)
        if path is None:
            return False
        # Hashed from the file itself, never from the resource's `hash` field: an editor may
        # set that to anything, and the archive must hold what was really served.
        sha, size = self.blobs.put(file_chunks(path))
        kept = self._keep(row, FILE, sha, size, row.format, row.mimetype)
        self._keep_dictionary(row, dictionary)
        return kept

    def _fetch(self, client: httpx.Client, row: Any) -> tuple[str, int, str | None]:
        with client.stream("GET", row.url) as response:
            if response.status_code != 200:
                raise OpenDataError(f"the server answered {response.status_code}")
            sha, size = self.blobs.put(response.iter_bytes())
            media = response.headers.get("content-type")
        return sha, size, media.split(";")[0].strip() if media else None

    def run(
        self,
        progress: Callable[[Any], None] | None = None,
        total: Callable[[int], None] | None = None,
    ) -> RunReport:
        """Snapshot every resource of every dataset not deleted, then apply the retention;
        ``total`` is told how many resources there are, ``progress`` of each one done."""
        report = RunReport()
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.resources, t.datasets.c.data_dictionary)
                .join(t.datasets, t.datasets.c.id == t.resources.c.dataset_id)
                .where(t.datasets.c.state != "deleted")
                .order_by(t.resources.c.dataset_id, t.resources.c.position)
            ).all()
        if total is not None:
            total(len(rows))
        # Hub queries are read from this site itself, which the SSRF guard (rightly) would
        # refuse as a private address: they go through a client that only ever calls it.
        own = httpx.Client(base_url=self.settings.site_url, timeout=30.0, trust_env=False)
        with self._client() as client, own:
            for row in rows:
                report.checked += 1
                try:
                    if row.kind == "upload":
                        kept = self.snapshot_upload(row.id)
                    else:
                        sha, size, media = self._fetch(
                            own if row.kind == "hub-query" else client, row
                        )
                        kept = self._keep(row, FILE, sha, size, row.format, media or row.mimetype)
                        self._keep_dictionary(row, row.data_dictionary)
                except (OpenDataError, httpx.HTTPError, OSError) as exc:
                    report.failed.append((archive_url(row), _why(exc)))
                    kept = False
                else:
                    if kept:
                        report.kept += 1
                    else:
                        report.unchanged += 1
                if progress is not None:
                    progress(row)
        report.pruned, report.files_removed = self.prune()
        return report

    def _client(self) -> httpx.Client:
        return http_client(
            self.guard,
            timeout=httpx.Timeout(30.0, connect=10.0),
            follow_redirects=True,
            headers={"User-Agent": "smartcity-opendata-archive"},
        )

    # -- retention -------------------------------------------------------------------------

    def prune(self, now: int | None = None) -> tuple[int, int]:
        """Drop versions beyond the retention settings (each file's latest always stays),
        then the content no version needs; (versions dropped, files removed)."""
        keep_n = self.settings.archive_keep_versions
        keep_days = self.settings.archive_keep_days
        v = a.versions
        dropped = 0
        with self.db.write() as conn:
            if keep_n > 0 or keep_days > 0:
                cutoff = (now or now_us()) - keep_days * DAY_US if keep_days > 0 else None
                doomed: list[int] = []
                for ids in _grouped(conn):
                    for position, (version_id, captured) in enumerate(ids):
                        if position == 0:
                            continue  # the latest one is kept whatever the settings
                        if (keep_n > 0 and position >= keep_n) or (
                            cutoff is not None and captured < cutoff
                        ):
                            doomed.append(version_id)
                for start in range(0, len(doomed), 500):
                    dropped += conn.execute(
                        delete(v).where(v.c.id.in_(doomed[start : start + 500]))
                    ).rowcount
            referenced = {str(s) for s in conn.execute(select(v.c.sha256).distinct()).scalars()}
        return dropped, self.blobs.collect(referenced)

    def forget_datasets(self, dataset_ids: list[str]) -> None:
        """A purged dataset's versions go with it (the content when nothing else uses it)."""
        with self.db.write() as conn:
            conn.execute(delete(a.versions).where(a.versions.c.dataset_id.in_(dataset_ids)))

    def count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(a.versions)).scalar_one())


def _grouped(conn: Connection) -> Iterator[list[tuple[int, int]]]:
    """Each (resource, kind, url)'s versions, newest first."""
    v = a.versions
    rows = conn.execute(
        select(v.c.id, v.c.resource_id, v.c.kind, v.c.url, v.c.captured_at).order_by(
            v.c.resource_id, v.c.kind, v.c.url, v.c.captured_at.desc(), v.c.id.desc()
        )
    )
    key: tuple[str, str, str] | None = None
    group: list[tuple[int, int]] = []
    for row in rows:
        here = (row.resource_id, row.kind, row.url)
        if here != key and group:
            yield group
            group = []
        key = here
        group.append((row.id, row.captured_at))
    if group:
        yield group


def _why(exc: BaseException) -> str:
    refused = refusal_in(exc)
    if refused is not None:
        return f"refused by the SSRF guard: {refused}"
    if isinstance(exc, OpenDataError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
