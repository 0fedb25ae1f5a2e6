"""``serve``'s archiving job: every ``SMARTCITY_OPENDATA_ARCHIVE_INTERVAL`` seconds, the
archive's ``run`` (links, APIs and hub queries fetched, retention applied), on a thread of
the scheduler's so the server keeps answering. Several nodes on one database: one node of the
cluster runs it each time (the scheduler's lease, storage/leases.py). Off (None) when the
interval is 0."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from smartcity.storage.leases import Scheduler, Stop

if TYPE_CHECKING:
    from smartcity.opendata.runtime import OpenData

log = logging.getLogger("smartcity.opendata.archive")
JOB = "opendata.archive"


def archive_once(opendata: OpenData) -> None:
    report = opendata.archive.run()
    log.info(
        "archive run: %d checked, %d new versions, %d failed",
        report.checked,
        report.kept,
        len(report.failed),
    )
    for url, why in report.failed:
        log.warning("archive: could not snapshot %s: %s", url, why)


def start_archiving(opendata: OpenData, scheduler: Scheduler) -> Stop | None:
    interval = opendata.settings.archive_interval
    if interval <= 0:
        return None
    # The first run one interval after start, as before: a restart does not snapshot at once.
    return scheduler.every(JOB, interval, lambda: archive_once(opendata), delay_s=interval)
