"""``MeasureService``: the Python API the site and the JSON API use for measures and progress.

Reads compute the roll-up from every measure's progress row (130-odd rows: cheaper than
keeping stored aggregates in step). Writes check the user's right to edit, run in one
transaction, and append one audit entry per changed field. They lock the measure's progress
row first (FOR UPDATE on PostgreSQL; SQLite has one writer at a time), so concurrent edits
serialise and every audit entry's "old" value is what the previous edit wrote.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from smartcity.portal import tables as t
from smartcity.portal.blueprint.model import Target, Text
from smartcity.portal.measures import repository as repo
from smartcity.portal.measures.errors import Forbidden, InvalidUpdate, NotFound
from smartcity.portal.measures.rollup import Node, group_progress, rolled_up
from smartcity.portal.measures.schemas import (
    AreaSummary,
    AuditEntry,
    KpiView,
    MeasureView,
    MilestoneView,
    StatusBasis,
    StatusView,
    city_today,
    is_overdue,
)
from smartcity.portal.users.model import User
from smartcity.storage.engine import Database

MAX_WEIGHT = 1000.0
MAX_NOTE = 2000


def _utc(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC)


class MeasureService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads --------------------------------------------------------------------------------

    def list_measures(
        self,
        *,
        area: str | None = None,
        status: str | None = None,
        is_new: bool | None = None,
        q: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[MeasureView]:
        """Measures in blueprint order. ``q``: the phrase, spaces and hyphens ignored, else
        every word of it, in the title, text or live data's names in any of the three
        languages (case-insensitive; Chinese matched as written; repository.Search)."""
        flt = repo.MeasureFilter(area=area, status=status, is_new=is_new, q=q)
        with self.db.snapshot() as conn:
            flt = repo.resolve_search(conn, flt)
            rows = repo.select_measures(conn, flt, limit=limit, offset=offset)
            return self._views(conn, rows)

    def count_measures(
        self,
        *,
        area: str | None = None,
        status: str | None = None,
        is_new: bool | None = None,
        q: str | None = None,
    ) -> int:
        flt = repo.MeasureFilter(area=area, status=status, is_new=is_new, q=q)
        with self.db.read() as conn:
            return repo.count_measures(conn, repo.resolve_search(conn, flt))

    def get_measure(self, measure_id: str) -> MeasureView:
        with self.db.snapshot() as conn:
            return self._get(conn, measure_id)

    def _get(self, conn: Connection, measure_id: str) -> MeasureView:
        rows = repo.select_measures(conn, repo.MeasureFilter(ids=[measure_id]))
        if not rows:
            raise NotFound(f"no measure {measure_id!r}")
        return self._views(conn, rows)[0]

    def _views(self, conn: Connection, rows: list[Any]) -> list[MeasureView]:
        if not rows:
            return []
        nodes = repo.nodes(conn)
        shown = rolled_up(nodes)
        children: dict[str, list[str]] = {}
        for node in sorted(nodes.values(), key=lambda n: n.id):
            if node.parent is not None:
                children.setdefault(node.parent, []).append(node.id)
        labels = {s.code: s.label for s in repo.statuses(conn)}
        ids = [r.id for r in rows]
        today = city_today()
        milestones = repo.milestones(conn, ids)
        live = repo.live_links(conn, ids)
        return [
            MeasureView(
                id=r.id,
                area=r.area,
                strategy=r.strategy,
                strategy_title=Text(**r.strategy_title),
                order=r.ord,
                title=Text(**r.title),
                text=Text(**r.text),
                is_new=r.is_new,
                target=Target.model_validate(r.target) if r.target else None,
                owners=list(r.owners),
                status=r.status,
                status_label=labels[r.status],
                status_basis=(
                    StatusBasis.model_validate(r.status_basis) if r.status_basis else None
                ),
                overdue=is_overdue(
                    Target.model_validate(r.target) if r.target else None,
                    shown.get(r.id, r.progress),
                    today,
                ),
                progress=round(shown.get(r.id, r.progress), 2),
                own_progress=r.progress,
                start=r.start_date,
                end=r.end_date,
                weight=r.weight,
                parent=r.parent_id,
                children=children.get(r.id, []),
                milestones=milestones.get(r.id, []),
                live=live.get(r.id, []),
                updated_at=_utc(r.updated_at),
            )
            for r in rows
        ]  # fmt: skip

    def statuses(self) -> list[StatusView]:
        with self.db.read() as conn:
            return repo.statuses(conn)

    def area_summaries(self) -> list[AreaSummary]:
        with self.db.snapshot() as conn:
            nodes = repo.nodes(conn)
            shown = rolled_up(nodes)
            codes = [s.code for s in repo.statuses(conn)]
            measures = conn.execute(
                select(
                    t.measures.c.id, t.measures.c.area, t.measures.c.is_new, t.progress.c.status
                ).select_from(
                    t.measures.join(t.progress, t.progress.c.measure_id == t.measures.c.id)
                )
            ).all()
            areas = conn.execute(select(t.areas).order_by(t.areas.c.ord)).all()
        out = []
        for a in areas:
            mine = [m for m in measures if m.area == a.id]
            ids = {m.id for m in mine}
            by_status = dict.fromkeys(codes, 0) | Counter(m.status for m in mine)
            out.append(
                AreaSummary(
                    id=a.id,
                    name=Text(**a.name),
                    order=a.ord,
                    intro=Text(**a.intro) if a.intro else None,
                    measure_count=len(mine),
                    new_count=sum(1 for m in mine if m.is_new),
                    progress=round(
                        group_progress({k: n for k, n in nodes.items() if k in ids}, shown), 2
                    ),
                    by_status=by_status,
                )
            )
        return out

    def blueprint_progress(self) -> float:
        """The weighted mean of every top-level measure's rolled-up progress, 0-100."""
        with self.db.read() as conn:
            nodes = repo.nodes(conn)
        return round(group_progress(nodes, rolled_up(nodes)), 2)

    def timeline(self, measure_id: str) -> list[AuditEntry]:
        """The measure's audit trail, newest first."""
        a, u = t.audit, t.users
        with self.db.snapshot() as conn:
            self._require_exists(conn, measure_id)
            rows = conn.execute(
                select(a, u.c.display_name, u.c.username)
                .select_from(a.outerjoin(u, u.c.id == a.c.user_id))
                .where(a.c.measure_id == measure_id)
                .order_by(a.c.at.desc(), a.c.id.desc())
            ).all()
        return [
            AuditEntry(
                id=r.id,
                measure_id=r.measure_id,
                at=_utc(r.at),
                user_id=r.user_id,
                user=(r.display_name or r.username or r.actor) if r.user_id else r.actor,
                field=r.field,
                old=repo.decode(r.old),
                new=repo.decode(r.new),
                note=r.note,
                notes=r.notes or None,
            )
            for r in rows
        ]

    def kpis(self, area: str | None = None) -> list[KpiView]:
        k = t.kpis
        stmt = (
            select(k)
            .select_from(k.join(t.areas, t.areas.c.id == k.c.area))
            .order_by(t.areas.c.ord, k.c.ord, k.c.id)
        )
        if area is not None:
            stmt = stmt.where(k.c.area == area)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            KpiView(
                id=r.id,
                area=r.area,
                label=Text(**r.label),
                value=r.value,
                unit=Text(**r.unit),
                qualifier=r.qualifier,
                as_of=r.as_of,
                text=Text(**r.text),
            )
            for r in rows
        ]

    def can_edit(self, user: User, measure_id: str) -> bool:
        """Whether the user may change this measure's progress (for showing the form)."""
        with self.db.read() as conn:
            owners = self._owners(conn, measure_id)
        return _allowed(user, owners)

    # -- writes -------------------------------------------------------------------------------

    def update_progress(
        self,
        measure_id: str,
        *,
        user: User,
        status: str | None = None,
        progress: float | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        note: str | None = None,
        notes: Mapping[str, str] | None = None,
    ) -> MeasureView:
        """Change what is given (None = keep). A new status without a progress sets the
        status's default progress. ``notes``: the note by language (en, zh-Hant, zh-Hans), for
        a note written in more than one. Raises NotFound, Forbidden or InvalidUpdate."""
        note = _clean_note(note)
        by_lang = _clean_notes(notes)
        if note is None and by_lang:
            note = by_lang.get("en") or next(iter(by_lang.values()))
        if progress is not None and not 0 <= progress <= 100:
            raise InvalidUpdate(f"progress must be between 0 and 100, not {progress}")
        with self.db.write() as conn:
            self._authorise(conn, user, measure_id)
            row = conn.execute(
                select(t.progress).where(t.progress.c.measure_id == measure_id).with_for_update()
            ).one()
            new: dict[str, Any] = {}
            if status is not None and status != row.status:
                default = conn.execute(
                    select(t.statuses.c.default_progress).where(t.statuses.c.code == status)
                ).first()
                if default is None:
                    codes = ", ".join(s.code for s in repo.statuses(conn))
                    raise InvalidUpdate(f"unknown status {status!r}; use one of: {codes}")
                new["status"] = status
                new["status_basis"] = None  # the editor's status now, not the blueprint's
                if progress is None and default[0] is not None:
                    progress = default[0]
            if progress is not None and float(progress) != row.progress:
                new["progress"] = float(progress)
            if start is not None and start != row.start_date:
                new["start_date"] = start
            if end is not None and end != row.end_date:
                new["end_date"] = end
            first = new.get("start_date", row.start_date)
            last = new.get("end_date", row.end_date)
            if first is not None and last is not None and last < first:
                raise InvalidUpdate(f"the end date {last} is before the start date {first}")
            self._apply(conn, measure_id, row, new, user, note, by_lang)
            return self._get(conn, measure_id)

    def add_milestone(
        self,
        measure_id: str,
        *,
        user: User,
        date: dt.date,
        title: Text,
        description: Text | None = None,
        done: bool = False,
    ) -> MilestoneView:
        with self.db.write() as conn:
            self._authorise(conn, user, measure_id)
            milestone_id = conn.execute(
                insert(t.milestones)
                .values(
                    measure_id=measure_id,
                    date=date,
                    title=title.model_dump(by_alias=True),
                    description=description.model_dump(by_alias=True) if description else None,
                    done=done,
                )
                .returning(t.milestones.c.id)
            ).scalar_one()
            view = MilestoneView(
                id=milestone_id, date=date, title=title, description=description, done=done
            )
            repo.audit(
                conn, measure_id, "milestone", None,
                view.model_dump(mode="json", by_alias=True), user_id=user.id, actor=user.username,
            )  # fmt: skip
            self._touch(conn, measure_id)
        return view

    def set_milestone_done(self, milestone_id: int, *, user: User, done: bool) -> MilestoneView:
        m = t.milestones
        with self.db.write() as conn:
            row = conn.execute(select(m).where(m.c.id == milestone_id)).first()
            if row is None:
                raise NotFound(f"no milestone {milestone_id}")
            self._authorise(conn, user, row.measure_id)
            if row.done != done:
                conn.execute(update(m).where(m.c.id == milestone_id).values(done=done))
                repo.audit(
                    conn, row.measure_id, "milestone_done", row.done, done,
                    user_id=user.id, actor=user.username, note=row.title.get("en"),
                )  # fmt: skip
                self._touch(conn, row.measure_id)
            views = repo.milestones(conn, [row.measure_id])[row.measure_id]
            return next(v for v in views if v.id == milestone_id)

    def set_parent(
        self,
        measure_id: str,
        parent_id: str | None,
        *,
        user: User,
        weight: float | None = None,
    ) -> MeasureView:
        """Make ``measure_id`` a child of ``parent_id`` (None: top level), optionally with a
        new weight. Parent and child must be in the same area; cycles are refused."""
        if weight is not None and not 0 <= weight <= MAX_WEIGHT:
            raise InvalidUpdate(f"weight must be between 0 and {MAX_WEIGHT:g}, not {weight}")
        with self.db.write() as conn:
            self._authorise(conn, user, measure_id)
            row = conn.execute(
                select(t.progress).where(t.progress.c.measure_id == measure_id).with_for_update()
            ).one()
            new: dict[str, Any] = {}
            if parent_id != row.parent_id:
                if parent_id is not None:
                    check_parent(conn, measure_id, parent_id, repo.nodes(conn))
                    self._authorise(conn, user, parent_id)
                new["parent_id"] = parent_id
            if weight is not None and float(weight) != row.weight:
                new["weight"] = float(weight)
            self._apply(conn, measure_id, row, new, user, None)
            return self._get(conn, measure_id)

    # -- helpers ------------------------------------------------------------------------------

    def _apply(
        self,
        conn: Connection,
        measure_id: str,
        row: Any,
        new: dict[str, Any],
        user: User,
        note: str | None,
        notes: dict[str, str] | None = None,
    ) -> None:
        at = repo.now_us()
        if new:
            conn.execute(
                update(t.progress)
                .where(t.progress.c.measure_id == measure_id)
                .values(updated_at=at, **new)
            )
            for name, value in new.items():
                if name == "status_basis":
                    continue  # follows the status; not a change of its own
                repo.audit(
                    conn, measure_id, repo.audit_name(name), getattr(row, name), value,
                    user_id=user.id, actor=user.username, note=note, notes=notes, at=at,
                )  # fmt: skip
        elif note:
            repo.audit(
                conn, measure_id, "note", None, None,
                user_id=user.id, actor=user.username, note=note, notes=notes, at=at,
            )  # fmt: skip

    def _touch(self, conn: Connection, measure_id: str) -> None:
        conn.execute(
            update(t.progress)
            .where(t.progress.c.measure_id == measure_id)
            .values(updated_at=repo.now_us())
        )

    def _owners(self, conn: Connection, measure_id: str) -> list[str]:
        owners = conn.execute(
            select(t.measures.c.owners).where(t.measures.c.id == measure_id)
        ).first()
        if owners is None:
            raise NotFound(f"no measure {measure_id!r}")
        return list(owners[0])

    def _require_exists(self, conn: Connection, measure_id: str) -> None:
        self._owners(conn, measure_id)

    def _authorise(self, conn: Connection, user: User, measure_id: str) -> None:
        owners = self._owners(conn, measure_id)
        if not _allowed(user, owners):
            if user.role == "editor":
                raise Forbidden(
                    f"measure {measure_id} belongs to {', '.join(owners) or 'no department'}; "
                    f"editors of {user.department} may only update their department's measures"
                )
            raise Forbidden(f"the {user.role} role may not update measures")


def _allowed(user: User, owners: list[str]) -> bool:
    if not user.active:
        return False
    if user.role == "admin":
        return True
    return user.role == "editor" and user.department is not None and user.department in owners


def _clean_note(note: str | None) -> str | None:
    if note is None:
        return None
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InvalidUpdate(f"the note must have at most {MAX_NOTE} characters")
    return note or None


NOTE_LANGS = ("en", "zh-Hant", "zh-Hans")


def _clean_notes(notes: Mapping[str, str] | None) -> dict[str, str] | None:
    """The note's languages that were written, each checked like a single note."""
    if not notes:
        return None
    unknown = set(notes) - set(NOTE_LANGS)
    if unknown:
        raise InvalidUpdate(f"notes are keyed {', '.join(NOTE_LANGS)}, not {sorted(unknown)}")
    cleaned = {k: _clean_note(v) for k, v in notes.items()}
    return {k: v for k, v in cleaned.items() if v} or None


def check_parent(conn: Connection, child: str, parent: str, nodes: dict[str, Node]) -> None:
    """Refuse a parent that is missing, in another area, the child itself, or a descendant."""
    areas = repo.measure_areas(conn)
    if parent not in areas:
        raise InvalidUpdate(f"no measure {parent!r} to be the parent")
    if parent == child:
        raise InvalidUpdate("a measure cannot be its own parent")
    if areas[parent] != areas.get(child):
        raise InvalidUpdate(
            f"the parent {parent} is in area {areas[parent]}, the measure in {areas.get(child)}"
        )
    seen: set[str] = {child}
    cursor: str | None = parent
    while cursor is not None:
        if cursor in seen:
            raise InvalidUpdate(f"{parent} is below {child}; that would make a cycle")
        seen.add(cursor)
        node = nodes.get(cursor)
        cursor = node.parent if node else None
