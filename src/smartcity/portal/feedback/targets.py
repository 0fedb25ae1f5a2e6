"""Which measures and areas exist: the portal's catalogue (migration 0005), read by id.

No foreign key ties feedback to those tables (re-loading the blueprint must not touch comments);
this check is what stops comments on ids that are not in the catalogue.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from smartcity.storage.engine import Database

CACHE_SECONDS = 60.0


def catalogue_target_check(db: Database) -> Callable[[str, str], bool]:
    from smartcity.portal.tables import areas, measures

    tables = {"measure": measures, "area": areas}
    cache: dict[tuple[str, str], tuple[float, bool]] = {}

    def exists(kind: str, ident: str) -> bool:
        table = tables.get(kind)
        if table is None:
            return False
        now = time.monotonic()
        hit = cache.get((kind, ident))
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with db.read() as conn:
            found = conn.execute(select(table.c.id).where(table.c.id == ident)).first() is not None
        if len(cache) > 10_000:
            cache.clear()
        cache[(kind, ident)] = (now, found)
        return found

    return exists
