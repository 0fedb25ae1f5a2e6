"""``blueprint load``: put the shipped blueprint data into the database, idempotently.

The data files are authoritative for what the blueprint *says* (texts, targets, owners, live
links, KPIs): changed texts are updated, and each change to a measure is audited as "system".
The database is authoritative for what editors *enter*: a measure's progress row is created
when the measure first appears, with the status the blueprint's own words give it
(blueprint/seeding.py) and that status's default progress. A later load changes the row only
while no person has touched it (its ``status_basis`` is still set or it was never edited), so
a database loaded before seeding existed gets the honest picture, and an editor's work is
never overwritten.
Measures that disappear from the data are kept (their history matters); the report lists them.
Everything runs in one transaction: a failed load changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from smartcity.portal import tables as t
from smartcity.portal.blueprint.model import Blueprint, LiveLink, Measure
from smartcity.portal.blueprint.seeding import Seed, seed
from smartcity.portal.measures import repository as repo
from smartcity.portal.measures.catalogue import initial_status, status_rows
from smartcity.portal.measures.csvio import MeasureRow
from smartcity.storage.engine import Database

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class LoadReport:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    not_in_data: list[str] = field(default_factory=list)  # measures in the db only

    @property
    def changed(self) -> bool:
        return any(self.inserted.values()) or any(self.updated.values())


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True) if value is not None else None


def upsert(
    conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]
) -> tuple[int, int]:
    """Insert missing rows, update rows whose values differ; returns (inserted, updated)."""
    col = table.c[key]
    existing = {r._mapping[key]: dict(r._mapping) for r in conn.execute(select(table))}
    inserted = updated = 0
    for row in rows:
        old = existing.get(row[key])
        if old is None:
            conn.execute(insert(table).values(**row))
            inserted += 1
        elif any(old[k] != v for k, v in row.items()):
            conn.execute(update(table).where(col == row[key]).values(**row))
            updated += 1
    return inserted, updated


def measure_values(measure: Measure | MeasureRow, order: int) -> dict[str, Any]:
    """The ``portal_measures`` row for a measure from the data files or an import row."""
    return {
        "id": measure.id,
        "area": measure.area,
        "strategy": measure.strategy,
        "ord": order,
        "title": _dump(measure.title),
        "text": _dump(measure.text),
        "is_new": measure.is_new,
        "target": _dump(measure.target),
        "target_date": measure.target.date if measure.target else None,
        "owners": list(measure.owners),
        "search": repo.search_blob(measure.id, measure.title, measure.text, measure.live),
    }


# Audited fields of a measure's data (the search column and order are derived, not audited).
DATA_FIELDS = ("area", "strategy", "title", "text", "is_new", "target", "owners")


def upsert_measure(
    conn: Connection,
    values: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    user_id: int | None = None,
    actor: str = repo.SYSTEM,
    note: str | None = None,
    seeded: Seed | None = None,
) -> str:
    """Insert or update one measure's data row (plus its progress row when new, at the
    ``seeded`` status or the initial one), auditing each changed field. Returns "inserted",
    "updated" or "unchanged"."""
    at = repo.now_us()
    if old is None:
        conn.execute(insert(t.measures).values(**values))
        defaults = _defaults(conn)
        status = seeded.status if seeded and seeded.status in defaults else None
        status = status or initial_status(list(defaults))
        conn.execute(
            insert(t.progress).values(
                measure_id=values["id"],
                status=status,
                progress=defaults.get(status) or 0.0,
                weight=1.0,
                updated_at=at,
                status_basis=seeded.as_json() if seeded and seeded.status == status else None,
            )
        )
        repo.audit(
            conn, values["id"], "created", None, values["id"],
            user_id=user_id, actor=actor, note=note, at=at,
        )  # fmt: skip
        return "inserted"
    changed = {k: v for k, v in values.items() if old.get(k) != v}
    if not changed:
        return "unchanged"
    conn.execute(update(t.measures).where(t.measures.c.id == values["id"]).values(**changed))
    for name in DATA_FIELDS:
        if name in changed:
            repo.audit(
                conn, values["id"], name, old.get(name), changed[name],
                user_id=user_id, actor=actor, note=note, at=at,
            )  # fmt: skip
    return "updated"


def _defaults(conn: Connection) -> dict[str, float | None]:
    """Every status code with its default progress, in catalogue order."""
    rows = conn.execute(
        select(t.statuses.c.code, t.statuses.c.default_progress).order_by(t.statuses.c.ord)
    )
    return {r.code: r.default_progress for r in rows}


SEEDED = "blueprint"  # the audit note of a change ``reseed`` made


def _edited(conn: Connection) -> set[str]:
    """Measures whose progress someone changed (an editor, or an import): every progress
    entry in the audit trail except the ones seeding wrote."""
    a = t.audit
    rows = conn.execute(
        select(a.c.measure_id)
        .where(
            a.c.field.not_in((*DATA_FIELDS, "created", "live")),
            or_(a.c.user_id.is_not(None), a.c.note.is_(None), a.c.note != SEEDED),
        )
        .distinct()
    )
    return {r.measure_id for r in rows}


def reseed(conn: Connection, seeds: dict[str, Seed]) -> int:
    """Bring untouched progress rows to the status the blueprint's words give: rows no person
    has edited whose status or basis differs. Audited as the system; returns how many."""
    defaults = _defaults(conn)
    edited = _edited(conn)
    changed = 0
    at = repo.now_us()
    for row in conn.execute(select(t.progress)).all():
        s = seeds.get(row.measure_id)
        if s is None or row.measure_id in edited or s.status not in defaults:
            continue
        basis = s.as_json()
        if row.status == s.status and row.status_basis == basis:
            continue
        new: dict[str, Any] = {"status": s.status, "status_basis": basis}
        progress = defaults[s.status]
        if progress is not None and progress != row.progress and row.parent_id is None:
            new["progress"] = progress
        conn.execute(
            update(t.progress)
            .where(t.progress.c.measure_id == row.measure_id)
            .values(updated_at=at, **new)
        )
        for name in ("status", "progress"):
            if name in new and new[name] != getattr(row, name):
                repo.audit(
                    conn, row.measure_id, name, getattr(row, name), new[name],
                    note=SEEDED, at=at,
                )  # fmt: skip
        changed += 1
    return changed


def _normal(links: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Links as the current model writes them, so that a member added to LiveLink since they
    were stored (with its default) is not taken for a change of the data."""
    try:
        return [_dump(LiveLink.model_validate(link)) for link in links]
    except ValueError:  # pydantic's ValidationError: stored by an older, different model
        return None


def replace_live_links(
    conn: Connection,
    measure_id: str,
    links: list[dict[str, Any]],
    old: list[dict[str, Any]],
    **who: Any,
) -> bool:
    normal = _normal(links)
    if links == old or (normal is not None and normal == _normal(old)):
        return False
    conn.execute(delete(t.live_links).where(t.live_links.c.measure_id == measure_id))
    for i, link in enumerate(links, 1):
        conn.execute(insert(t.live_links).values(measure_id=measure_id, ord=i, link=link))
    repo.audit(conn, measure_id, "live", old, links, **who)
    return True


def current_live(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(
        select(t.live_links.c.measure_id, t.live_links.c.link).order_by(
            t.live_links.c.measure_id, t.live_links.c.ord
        )
    )
    for r in rows:
        out.setdefault(r.measure_id, []).append(r.link)
    return out


def load(db: Database, blueprint: Blueprint, progress: Progress | None = None) -> LoadReport:
    report = LoadReport()
    tick = progress or (lambda _stage, _done, _total: None)
    with db.write() as conn:
        stages: list[tuple[str, Table, str, list[dict[str, Any]]]] = [
            ("statuses", t.statuses, "code", status_rows(blueprint)),
            (
                "organisations",
                t.organisations,
                "code",
                [{"code": o.code, "name": _dump(o.name)} for o in blueprint.organisations],
            ),
            (
                "areas",
                t.areas,
                "id",
                [
                    {
                        "id": a.id,
                        "name": _dump(a.name),
                        "ord": a.order,
                        "intro": _dump(a.intro),
                        "next_steps": [_dump(x) for x in a.next_steps],
                        "outlook": [_dump(x) for x in a.outlook],
                    }
                    for a in blueprint.areas
                ],
            ),
            (
                "strategies",
                t.strategies,
                "id",
                [
                    {"id": s.id, "area": a.id, "title": _dump(s.title), "ord": i}
                    for a in blueprint.areas
                    for i, s in enumerate(a.strategies, 1)
                ],
            ),
        ]
        for name, table, key, rows in stages:
            tick(name, 0, len(rows))
            report.inserted[name], report.updated[name] = upsert(conn, table, key, rows)
            tick(name, len(rows), len(rows))

        all_measures = [(m, i) for a in blueprint.areas for i, m in enumerate(a.measures, 1)]
        existing = {r.id: dict(r._mapping) for r in conn.execute(select(t.measures))}
        live = current_live(conn)
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        links_changed = 0
        for done, (measure, order) in enumerate(all_measures, 1):
            values = measure_values(measure, order)
            outcome = upsert_measure(conn, values, existing.get(measure.id), seeded=seed(measure))
            counts[outcome] += 1
            links = [_dump(x) for x in measure.live]
            links_changed += replace_live_links(conn, measure.id, links, live.get(measure.id, []))
            tick("measures", done, len(all_measures))
        report.inserted["measures"], report.updated["measures"] = (
            counts["inserted"],
            counts["updated"],
        )
        report.updated["live links"] = links_changed
        report.updated["statuses seeded"] = reseed(conn, {m.id: seed(m) for m, _ in all_measures})
        data_ids = {m.id for m, _ in all_measures}
        report.not_in_data = sorted(set(existing) - data_ids)

        kpis = [
            {
                "id": k.id,
                "area": a.id,
                "ord": i,
                "label": _dump(k.label),
                "value": k.value,
                "unit": _dump(k.unit),
                "qualifier": k.qualifier,
                "as_of": k.as_of,
                "text": _dump(k.text),
            }
            for a in blueprint.areas
            for i, k in enumerate(a.kpis, 1)
        ]
        tick("kpis", 0, len(kpis))
        report.inserted["kpis"], report.updated["kpis"] = upsert(conn, t.kpis, "id", kpis)
        tick("kpis", len(kpis), len(kpis))
    return report
