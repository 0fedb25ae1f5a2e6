"""Loading uploads into the DataStore: a tabular file given to ``resource_create`` (or a
new file given to ``resource_update``/``patch``) is loaded after the resource is committed.

Files up to ``datastore_sync_load_bytes`` (5 MB) load inside the request, so the answer
comes back with the table ready; larger ones load in a background thread and
``datastore_info`` shows the load's state (``pending``, ``running``, ``complete``,
``error`` with its message). A new file that is not tabular drops the table loaded from the
previous one. A load that fails never fails the upload: the file is kept,
``datastore_info`` says why, and ``smartcity opendata datastore load`` can retry with an
encoding or types.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from smartcity.opendata.datastore.loader import LoadError, format_of, load_file, record_load
from smartcity.opendata.datastore.store import DataStore
from smartcity.opendata.errors import OpenDataError

log = logging.getLogger("smartcity.opendata.datastore")


class UploadLoader:
    def __init__(self, store: DataStore, sync_bytes: int) -> None:
        self.store = store
        self.sync_bytes = sync_bytes

    def load(self, resource_id: str, path: Path, fmt: str | None) -> None:
        try:
            format_of(path, fmt)
        except LoadError:
            # not tabular: a table loaded from the file this one replaces would be stale
            with self.store.db.write() as conn:
                self.store.drop(conn, [resource_id])
            return
        if path.stat().st_size <= self.sync_bytes:
            self.run(resource_id, path, fmt)
            return
        record_load(self.store, resource_id, "pending", None, None)
        threading.Thread(
            target=self.run, args=(resource_id, path, fmt), name="datastore-load", daemon=True
        ).start()

    def run(self, resource_id: str, path: Path, fmt: str | None) -> None:
        try:
            record_load(self.store, resource_id, "running", None, None)
            report = load_file(self.store, resource_id, path, fmt=fmt)
        except (LoadError, OpenDataError) as exc:
            self._finish(resource_id, exc.message if isinstance(exc, OpenDataError) else str(exc))
            return
        except Exception:
            log.exception("loading %s into the DataStore failed", resource_id)
            self._finish(resource_id, "the load failed; the error has been logged")
            return
        message: str | None = (
            f"{report.bad_row_count} bad rows skipped (see bad_rows)"
            if report.bad_row_count
            else None
        )
        record_load(self.store, resource_id, "complete", report, message)

    def _finish(self, resource_id: str, message: str) -> None:
        try:
            record_load(self.store, resource_id, "error", None, message)
        except Exception:  # the resource may be gone meanwhile
            log.exception("recording the DataStore load of %s failed", resource_id)
