"""SQL over the portal's measure tables; every function takes the caller's Connection."""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, false, func, insert, select

from smartcity.portal import tables as t
from smartcity.portal.blueprint.model import LiveLink, Text
from smartcity.portal.measures.rollup import Node
from smartcity.portal.measures.schemas import MilestoneView, StatusView

M, P, S = t.measures, t.progress, t.strategies
SYSTEM = "system"


def now_us() -> int:
    return time.time_ns() // 1000


def normalise_search(value: str) -> str:
    """NFKC (full-width letters, compatibility ideographs), casefold, single spaces."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value).casefold()).strip()


# What may stand between the parts of a compound: "car park", "car-park" and "carpark" are one
# word to a reader, so the search ignores spaces, hyphens and dashes inside a phrase.
_JOINERS = re.compile(r"[\s\-\u2010-\u2015]+")
# A live link's type and attribute names in words: "OffStreetParking" -> "Off Street Parking".
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def compact(value: str) -> str:
    """Normalised text without spaces, hyphens and dashes: what phrases are matched in."""
    return _JOINERS.sub("", normalise_search(value))


def search_words(value: str) -> list[str]:
    """The words of a query: split at spaces, hyphens and dashes ("car-park" is two)."""
    return [w for w in _JOINERS.split(normalise_search(value)) if w]


def live_words(live: Sequence[LiveLink]) -> list[str]:
    """What a measure's live data is called: its entity type and attribute in words, and the
    figure's label and unit in the three languages (so "parking" finds the car park measures
    whose text never says it)."""
    parts: list[str] = []
    for link in live:
        parts += [_CAMEL.sub(" ", link.entity_type), _CAMEL.sub(" ", link.attribute or "")]
        for text in (link.label, link.unit):
            if text is not None:
                parts += [text.en, text.zh_hant, text.zh_hans]
    return [p for p in parts if p]


def search_blob(measure_id: str, title: Text, text: Text, live: Sequence[LiveLink] = ()) -> str:
    """The text a measure is found by: id, title and text in the three languages and the
    words of its live data; then all of it once more without spaces and hyphens, where
    phrases are looked for."""
    parts = [measure_id, title.en, title.zh_hant, title.zh_hans, text.en, text.zh_hant]
    parts += [text.zh_hans, *live_words(live)]
    words = normalise_search("\n".join(parts))
    return words + "\n" + compact(words)


@dataclass(frozen=True)
class Search:
    """A query: the phrase as typed (spaces and hyphens ignored), else all of its words.

    "carpark", "car park" and "car-park" are the phrase "carpark", found wherever the text
    says any of the three. When no measure holds the phrase, measures holding every word
    (in any order, anywhere) are the answer: "lamppost smart" still finds the smart
    lampposts. Chinese is matched as written (no word split is needed)."""

    phrase: str
    words: tuple[str, ...]

    @classmethod
    def of(cls, q: str) -> Search:
        return cls(compact(q), tuple(search_words(q)))

    @property
    def can_widen(self) -> bool:
        return len(self.words) > 1

    def matches(self, blob: str, *, phrase: bool = True) -> bool:
        if not self.phrase:  # nothing but spaces and hyphens: nothing to look for
            return False
        if phrase:
            return self.phrase in blob
        return all(word in blob for word in self.words)


def _like_term(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class MeasureFilter:
    area: str | None = None
    status: str | None = None
    is_new: bool | None = None
    q: str | None = None
    ids: Sequence[str] | None = None
    phrase: bool = True  # q as a phrase; False: every word of q (see Search)

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.ids is not None:
            stmt = stmt.where(M.c.id.in_(list(self.ids)))
        if self.area is not None:
            stmt = stmt.where(M.c.area == self.area)
        if self.status is not None:
            stmt = stmt.where(P.c.status == self.status)
        if self.is_new is not None:
            stmt = stmt.where(M.c.is_new == self.is_new)
        if self.q:
            search = Search.of(self.q)
            terms = [search.phrase] if self.phrase else list(search.words)
            if not search.phrase:  # nothing but spaces and hyphens: nothing to look for
                return stmt.where(false())
            stmt = stmt.where(and_(*(M.c.search.like(_like_term(x), escape="\\") for x in terms)))
        return stmt


def resolve_search(conn: Connection, flt: MeasureFilter) -> MeasureFilter:
    """The filter the query means: its phrase, or all its words when no measure has the
    phrase (Search)."""
    if not flt.q or not Search.of(flt.q).can_widen or count_measures(conn, flt) > 0:
        return flt
    return replace(flt, phrase=False)


def _joined() -> Any:
    return M.join(P, P.c.measure_id == M.c.id).join(S, S.c.id == M.c.strategy)


def select_measures(
    conn: Connection, flt: MeasureFilter, *, limit: int | None = None, offset: int = 0
) -> list[Any]:
    stmt = flt.apply(
        select(M, P, S.c.title.label("strategy_title"))
        .select_from(_joined().join(t.areas, t.areas.c.id == M.c.area))
        .order_by(t.areas.c.ord, M.c.ord, M.c.id)
    )
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).all())


def count_measures(conn: Connection, flt: MeasureFilter) -> int:
    stmt = flt.apply(select(func.count()).select_from(_joined()))
    return int(conn.execute(stmt).scalar_one())


def nodes(conn: Connection) -> dict[str, Node]:
    rows = conn.execute(select(P.c.measure_id, P.c.progress, P.c.weight, P.c.parent_id))
    return {r.measure_id: Node(r.measure_id, r.progress, r.weight, r.parent_id) for r in rows}


def measure_areas(conn: Connection) -> dict[str, str]:
    return {r.id: r.area for r in conn.execute(select(M.c.id, M.c.area))}


def statuses(conn: Connection) -> list[StatusView]:
    rows = conn.execute(select(t.statuses).order_by(t.statuses.c.ord))
    return [
        StatusView(
            code=r.code, label=Text(**r.label), default_progress=r.default_progress, order=r.ord
        )
        for r in rows
    ]


def milestones(conn: Connection, ids: Sequence[str]) -> dict[str, list[MilestoneView]]:
    out: dict[str, list[MilestoneView]] = {}
    if not ids:
        return out
    rows = conn.execute(
        select(t.milestones)
        .where(t.milestones.c.measure_id.in_(list(ids)))
        .order_by(t.milestones.c.date, t.milestones.c.id)
    )
    for r in rows:
        out.setdefault(r.measure_id, []).append(
            MilestoneView(
                id=r.id,
                date=r.date,
                title=Text(**r.title),
                description=Text(**r.description) if r.description else None,
                done=r.done,
            )
        )
    return out


def live_links(conn: Connection, ids: Sequence[str]) -> dict[str, list[LiveLink]]:
    out: dict[str, list[LiveLink]] = {}
    if not ids:
        return out
    rows = conn.execute(
        select(t.live_links)
        .where(t.live_links.c.measure_id.in_(list(ids)))
        .order_by(t.live_links.c.measure_id, t.live_links.c.ord)
    )
    for r in rows:
        out.setdefault(r.measure_id, []).append(LiveLink.model_validate(r.link))
    return out


AUDIT_NAMES = {"start_date": "start", "end_date": "end", "parent_id": "parent"}


def audit_name(column: str) -> str:
    """The audit trail's name for a progress column (the service's parameter names)."""
    return AUDIT_NAMES.get(column, column)


def audit(
    conn: Connection,
    measure_id: str,
    field: str,
    old: Any,
    new: Any,
    *,
    user_id: int | None = None,
    actor: str = SYSTEM,
    note: str | None = None,
    notes: dict[str, str] | None = None,
    at: int | None = None,
) -> None:
    """Append one audit entry (the table refuses updates). ``notes``: the note by language."""
    conn.execute(
        insert(t.audit).values(
            measure_id=measure_id,
            at=at if at is not None else now_us(),
            user_id=user_id,
            actor=actor,
            field=field,
            old=encode(old),
            new=encode(new),
            note=note,
            notes=notes or None,
        )
    )


def encode(value: Any) -> str | None:
    """An audited value as JSON text (dates as ISO strings); None stays NULL."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        value = value.isoformat()
    return orjson.dumps(value).decode()


def decode(value: str | None) -> Any:
    return orjson.loads(value) if value is not None else None
