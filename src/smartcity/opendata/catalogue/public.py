"""Whether a dataset is public: active (not a draft, not deleted) and not private.

Read by name or id, for callers outside the open data portal that only need a yes or no (the
app uses it so the portal's feedback accepts reports of a problem with a dataset).
"""

from __future__ import annotations

from sqlalchemy import or_, select

from smartcity.opendata.catalogue import tables as t
from smartcity.storage.engine import Database


def dataset_exists(db: Database, ident: str) -> bool:
    """True when a public dataset has this name or id."""
    d = t.datasets.c
    query = select(d.id).where(
        or_(d.name == ident, d.id == ident), d.state == "active", d.private.is_(False)
    )
    with db.read() as conn:
        return conn.execute(query.limit(1)).first() is not None
