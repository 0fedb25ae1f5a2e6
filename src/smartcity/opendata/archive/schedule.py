"""``serve``'s archiving loop: every ``SMARTCITY_OPENDATA_ARCHIVE_INTERVAL`` seconds, the
archive's ``run`` (links, APIs and hub queries fetched, retention applied), in a worker thread
so the server keeps answering. Off (None) when the interval is 0."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from smartcity.opendata.runtime import OpenData

log = logging.getLogger("smartcity.opendata.archive")


async def _loop(opendata: OpenData, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            report = await run_in_threadpool(opendata.archive.run)
        except Exception:
            log.exception("the archive run failed; trying again in %s s", interval)
            continue
        log.info(
            "archive run: %d checked, %d new versions, %d failed",
            report.checked,
            report.kept,
            len(report.failed),
        )
        for url, why in report.failed:
            log.warning("archive: could not snapshot %s: %s", url, why)


def start_archiving(opendata: OpenData) -> asyncio.Task[None] | None:
    interval = opendata.settings.archive_interval
    if interval <= 0:
        return None
    return asyncio.get_running_loop().create_task(_loop(opendata, interval))
