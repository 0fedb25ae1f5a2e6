"""Sliding-window rate limits kept in the database, so they hold across processes and restarts.

Each accepted action inserts one row per key (IP, session, e-mail) in the same transaction as
the action itself; a check counts that key's rows inside the window. A refused or failed action
rolls back, so it does not count. On PostgreSQL an advisory lock per key serialises concurrent
checks of the same key (SQLite writers are serialised already).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select, text

from smartcity.portal.feedback.errors import RateLimited
from smartcity.portal.feedback.secret import Keyed
from smartcity.portal.feedback.tables import rate_events

E = rate_events.c
# Rows older than this are useless to every window and are deleted (the privacy notice
# promises that hashed addresses are kept no longer than a day).
RETENTION_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True)
class Limit:
    action: str  # e.g. "comment", "reaction", "privacy"
    kind: str  # "ip", "session", "email"
    key: str | None  # the raw value; None skips this limit
    rate: tuple[int, int]  # (events, seconds)

    @property
    def bucket(self) -> str:
        return f"{self.action}:{self.kind}"


_WHO = {
    "ip": "from this network address",
    "session": "from this browser",
    "email": "for this address",
}


def enforce(
    conn: Connection, keyed: Keyed, limits: Sequence[Limit], now: int, *, postgres: bool
) -> None:
    """Raise RateLimited if any limit is reached; otherwise count this action against all."""
    active = [lim for lim in limits if lim.key]
    digests = [keyed.digest("rate:" + lim.kind, lim.key or "") for lim in active]
    if postgres:
        # Lock keys in a fixed order so two transactions never wait on each other in a cycle.
        for lock_key in sorted({int(d[:15], 16) for d in digests}):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
    for lim, digest in zip(active, digests, strict=True):
        events, seconds = lim.rate
        window_start = now - seconds * 1_000_000
        count, oldest = conn.execute(
            select(func.count(), func.min(E.at)).where(
                E.action == lim.bucket, E.key_digest == digest, E.at > window_start
            )
        ).one()
        if count >= events:
            retry = max(1, math.ceil(((oldest or now) + seconds * 1_000_000 - now) / 1_000_000))
            raise RateLimited(
                f"too many {lim.action} actions {_WHO.get(lim.kind, '')}: at most {events} in "
                f"{seconds} seconds; try again in {retry} seconds",
                retry_after=retry,
            )
    if active:
        conn.execute(
            insert(rate_events),
            [
                {"action": lim.bucket, "key_digest": d, "at": now}
                for lim, d in zip(active, digests, strict=True)
            ],
        )
    conn.execute(delete(rate_events).where(E.at < now - RETENTION_US))
