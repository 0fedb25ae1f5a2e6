"""``blueprint import``: apply flat rows (csvio) in one transaction, all or nothing.

Every row is validated (its own fields, then against the database: known strategy in the
same area, known status, parent in the same area and no cycle) before anything is written;
any error raises ``ImportFailed`` listing every bad row and the transaction rolls back.
Rows then upsert the measure's data and progress, replace its milestones and live links when
they differ, and audit each change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from smartcity.portal import tables as t
from smartcity.portal.measures import repository as repo
from smartcity.portal.measures.csvio import ImportFailed, MeasureRow, RowError, validate
from smartcity.portal.measures.loader import (
    current_live,
    measure_values,
    replace_live_links,
    upsert_measure,
)
from smartcity.portal.users.model import User
from smartcity.storage.engine import Database


@dataclass
class ImportReport:
    counts: dict[str, int] = field(
        default_factory=lambda: {"inserted": 0, "updated": 0, "unchanged": 0}
    )


def import_records(
    db: Database, records: list[tuple[int, dict[str, Any]]], *, user: User | None = None
) -> ImportReport:
    rows: list[tuple[int, MeasureRow]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, rec in records:
        row, row_errors = validate(number, rec)
        errors += row_errors
        if row is None:
            continue
        if row.id in seen:
            errors.append(RowError(number, "id", f"{row.id} is also on row {seen[row.id]}"))
            continue
        seen[row.id] = number
        rows.append((number, row))
    who: dict[str, Any] = {
        "user_id": user.id if user else None,
        "actor": user.username if user else repo.SYSTEM,
        "note": "import",
    }
    report = ImportReport()
    with db.write() as conn:
        errors += _check_against_db(conn, rows)
        if errors:
            errors.sort(key=lambda e: e.row)
            raise ImportFailed(errors)
        existing = {r.id: dict(r._mapping) for r in conn.execute(select(t.measures))}
        live = current_live(conn)
        next_ord = dict(
            conn.execute(
                select(t.measures.c.area, func.max(t.measures.c.ord)).group_by(t.measures.c.area)
            ).all()
        )
        changed: set[str] = set()
        inserted: set[str] = set()
        for _, row in rows:  # pass 1: measure data (parents may come later in the file)
            old = existing.get(row.id)
            if old is not None:
                order = old["ord"]
            else:
                order = next_ord.get(row.area, 0) + 1
                next_ord[row.area] = order
            outcome = upsert_measure(conn, measure_values(row, order), old, **who)
            if outcome == "inserted":
                inserted.add(row.id)
            elif outcome == "updated":
                changed.add(row.id)
            links = [x.model_dump(mode="json", by_alias=True) for x in row.live]
            if replace_live_links(conn, row.id, links, live.get(row.id, []), **who):
                changed.add(row.id)
        for _, row in rows:  # pass 2: progress and milestones
            if _apply_progress(conn, row, who) | _apply_milestones(conn, row, who):
                changed.add(row.id)
        report.counts["inserted"] = len(inserted)
        report.counts["updated"] = len(changed - inserted)
        report.counts["unchanged"] = len(rows) - len(inserted) - len(changed - inserted)
    return report


def _check_against_db(conn: Connection, rows: list[tuple[int, MeasureRow]]) -> list[RowError]:
    errors: list[RowError] = []
    strategies = dict(conn.execute(select(t.strategies.c.id, t.strategies.c.area)).all())
    statuses = {s.code for s in repo.statuses(conn)}
    areas = repo.measure_areas(conn)
    parents = {n.id: n.parent for n in repo.nodes(conn).values()}
    for _, row in rows:
        areas[row.id] = row.area
        parents[row.id] = row.parent
    for number, row in rows:
        if row.strategy not in strategies:
            errors.append(
                RowError(number, "strategy", f"unknown strategy {row.strategy!r}; "
                         "run `smartcity blueprint load` first or fix the id")
            )  # fmt: skip
        elif strategies[row.strategy] != row.area:
            errors.append(
                RowError(number, "strategy", f"{row.strategy} belongs to area "
                         f"{strategies[row.strategy]}, not {row.area}")
            )  # fmt: skip
        if row.status not in statuses:
            errors.append(
                RowError(number, "status", f"unknown status {row.status!r}; use one of "
                         + ", ".join(sorted(statuses)))
            )  # fmt: skip
        if row.start_date and row.end_date and row.end_date < row.start_date:
            errors.append(RowError(number, "end_date", "before start_date"))
        if row.parent is not None:
            if row.parent not in areas:
                errors.append(RowError(number, "parent", f"no measure {row.parent!r}"))
            elif row.parent == row.id:
                errors.append(RowError(number, "parent", "a measure cannot be its own parent"))
            elif areas[row.parent] != row.area:
                errors.append(
                    RowError(number, "parent", f"{row.parent} is in area {areas[row.parent]}")
                )
            elif _in_cycle(row.id, parents):
                errors.append(RowError(number, "parent", "parents would form a cycle"))
    return errors


def _in_cycle(start: str, parents: dict[str, str | None]) -> bool:
    seen = {start}
    cursor = parents.get(start)
    while cursor is not None:
        if cursor in seen:
            return True
        seen.add(cursor)
        cursor = parents.get(cursor)
    return False


def _apply_progress(conn: Connection, row: MeasureRow, who: dict[str, Any]) -> bool:
    old = conn.execute(
        select(t.progress).where(t.progress.c.measure_id == row.id).with_for_update()
    ).one()
    progress = row.progress
    if progress is None:
        default = conn.execute(
            select(t.statuses.c.default_progress).where(t.statuses.c.code == row.status)
        ).scalar()
        progress = default if default is not None else old.progress
    new = {
        "status": row.status,
        "progress": float(progress),
        "start_date": row.start_date,
        "end_date": row.end_date,
        "weight": row.weight,
        "parent_id": row.parent,
    }
    diff = {k: v for k, v in new.items() if getattr(old, k) != v}
    if not diff:
        return False
    at = repo.now_us()
    # A status from the file is the file's, no longer the one the blueprint's words gave.
    basis = {"status_basis": None} if "status" in diff else {}
    conn.execute(
        update(t.progress)
        .where(t.progress.c.measure_id == row.id)
        .values(updated_at=at, **diff, **basis)
    )
    for name, value in diff.items():
        repo.audit(conn, row.id, repo.audit_name(name), getattr(old, name), value, at=at, **who)
    return True


def _apply_milestones(conn: Connection, row: MeasureRow, who: dict[str, Any]) -> bool:
    m = t.milestones
    old: list[dict[str, Any]] = [
        {
            "date": x.date,
            "title": x.title,
            "description": x.description,
            "done": x.done,
        }
        for x in conn.execute(select(m).where(m.c.measure_id == row.id).order_by(m.c.date, m.c.id))
    ]
    new: list[dict[str, Any]] = [
        {
            "date": x.date,
            "title": x.title.model_dump(by_alias=True),
            "description": x.description.model_dump(by_alias=True) if x.description else None,
            "done": x.done,
        }
        for x in sorted(row.milestones, key=lambda x: x.date)
    ]
    if old == new:
        return False
    conn.execute(delete(m).where(m.c.measure_id == row.id))
    for item in new:
        conn.execute(insert(m).values(measure_id=row.id, **item))
    as_json = [{**x, "date": x["date"].isoformat()} for x in new]
    old_json = [{**x, "date": x["date"].isoformat()} for x in old]
    repo.audit(conn, row.id, "milestones", old_json, as_json, **who)
    return True
