"""The catalogue's first page reads its facets from ``opendata_search_facet_counts`` (kept by
search/index.py, migration 0026): through creating, editing, hiding, deleting and restoring
datasets its counts stay those of the visible datasets' facet rows counted directly, for
readers who see different datasets, on both backends."""

from __future__ import annotations

from collections import Counter
from typing import Any

from alembic import command
from sqlalchemy import func, select
from tests.opendata.helpers import Act

from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import ANONYMOUS, NO_AUTH, Principal
from smartcity.opendata.search import engine, index
from smartcity.opendata.search.tables import search_facet_counts, search_facets, search_rows
from smartcity.storage import migrate
from smartcity.storage.engine import Database

# Every facet, including the two counted from the matches' own columns (name, id: 0028).
FIELDS = list(index.FACETS)


def _direct(db: Database, principal: Principal, request: engine.SearchRequest) -> dict[str, Any]:
    """The visible datasets' facet rows, counted without the kept counts."""
    F, D = search_facets, t.datasets
    visible = engine._visible(principal, request)
    with db.read() as conn:
        rows = conn.execute(
            select(F.c.field, F.c.value, func.count())
            .join(D, D.c.id == F.c.dataset_id)
            .where(visible, F.c.field.in_(FIELDS))
            .group_by(F.c.field, F.c.value)
        ).all()
    return engine._facets(request, rows)


def _check(db: Database, td_editor_id: str) -> None:
    # The kept table is exactly the GROUP BY of the index rows (no stale or zero rows).
    with db.read() as conn:
        kept = Counter({(r.field, r.value): r.n for r in conn.execute(select(search_facet_counts))})
        F = search_facets
        counted = Counter(
            {
                (r.field, r.value): r.n
                for r in conn.execute(
                    select(F.c.field, F.c.value, func.count().label("n")).group_by(
                        F.c.field, F.c.value
                    )
                )
            }
        )
    assert kept == counted
    assert all(n > 0 for n in kept.values())
    # Each dataset's search row (0031) is a copy of its own columns that search reads, and
    # of its facet rows (0027), which searches count from, less its name and id (0028); a
    # deleted dataset has none.
    with db.read() as conn:
        rows: dict[str, list[tuple[str, str]]] = {}
        for r in conn.execute(select(F.c.dataset_id, F.c.field, F.c.value)):
            rows.setdefault(r.dataset_id, []).append((r.field, r.value))
        D, R = t.datasets, search_rows
        copies = {r.dataset_id: r for r in conn.execute(select(R))}
        for d in conn.execute(select(D)):
            if d.state == "deleted":
                assert d.id not in copies
                continue
            copy = copies.pop(d.id)
            assert copy.facets == index.keep_facets(rows.get(d.id, [])), d.id
            for column in index.ROW_COLUMNS:
                assert copy._mapping[column] == d._mapping[column], (d.id, column)
        assert not copies

    editor = Principal("ed", roles={td_editor_id: "editor"})
    member = Principal("mem", roles={td_editor_id: "member"})
    for principal in (ANONYMOUS, NO_AUTH, editor, member):
        for private, drafts in ((False, False), (True, False), (True, True)):
            request = engine.SearchRequest(
                facet_fields=FIELDS,
                facet_limit=-1,
                include_private=private,
                include_drafts=drafts,
                rows=5,
            )
            with db.read() as conn:
                browsed = engine.search(conn, request, principal)
                # The same readers' facets through the general path (a filter every indexed
                # dataset passes, so the matches are built and counted).
                general = engine.search(
                    conn,
                    engine.SearchRequest(**{**request.__dict__, "fq": ["capacity:*"]}),
                    principal,
                )
            expected = _direct(db, principal, request)
            assert browsed.facets == expected, (principal, private, drafts)
            assert general.facets == expected
            assert browsed.count == general.count


def test_first_page_facets_follow_every_change(db: Database, act: Act) -> None:
    td = act("organization_create", name="td", title="Transport")["result"]["id"]
    act("organization_create", name="epd", title="Environment")
    act("group_create", name="transport", title="Transport")
    act("group_create", name="environment", title="Environment")
    for i in range(6):
        act(
            "package_create",
            name=f"set-{i}",
            owner_org="td" if i % 2 else "epd",
            title=f"Set {i}",
            tags=[{"name": "parking"}, {"name": f"tag{i % 3}"}],
            groups=[{"name": "transport"}],
            license_id="cc-by",
            resources=[{"url": f"https://example.org/{i}.csv", "format": "CSV"}],
        )
    _check(db, td)

    # Edits that change every kind of facet value.
    act(
        "package_patch",
        id="set-1",
        owner_org="epd",
        tags=[{"name": "Parking"}, {"name": "bus"}],
        groups=[{"name": "environment"}],
        license_id="cc-zero",
        resources=[{"url": "https://example.org/1.json", "format": "JSON"}],
    )
    _check(db, td)
    act("package_patch", id="set-2", tags=[])  # a value loses its last dataset
    _check(db, td)

    act("package_patch", id="set-3", private=True)  # hidden from the anonymous
    act("package_patch", id="set-5", state="draft")  # hidden from all but editors
    _check(db, td)

    act("package_delete", id="set-3")
    act("package_delete", id="set-0")
    _check(db, td)

    act("package_patch", id="set-0", state="active")  # a sysadmin restores it
    act("package_patch", id="set-3", state="active", private=False)
    act("package_patch", id="set-5", state="active")
    _check(db, td)

    act("dataset_purge", id="set-4")
    _check(db, td)

    # Migrations 0027, 0028 and 0031 fill each dataset's kept values and search row from the
    # rows already indexed (none for a deleted dataset).
    act("package_delete", id="set-5")
    for before in ("0030", "0027", "0026"):
        try:
            command.downgrade(migrate._config(db), before)
        finally:  # the worker's later tests share this database: leave it at the head
            migrate.upgrade(db)
        _check(db, td)


def test_separators_in_a_value_are_not_separators(db: Database, act: Act) -> None:
    """A dataset's facet values are kept joined by two control characters; a value holding
    them (a resource's free-text format) is indexed, counted and found with spaces instead,
    never split into values of its own."""
    act("organization_create", name="td", title="Transport")
    for i, fmt in enumerate(["C\x1eSV", "C\x1fSV", "C SV"]):
        act(
            "package_create",
            name=f"odd-{i}",
            owner_org="td",
            resources=[{"url": f"https://example.org/{i}", "format": fmt}],
        )
    request = engine.SearchRequest(q="odd", facet_fields=["res_format"], facet_limit=-1)
    with db.read() as conn:
        found = engine.search(conn, request, ANONYMOUS)
        filtered = engine.search(conn, engine.SearchRequest(fq=['res_format:"C\x1eSV"']), ANONYMOUS)
    assert found.count == 3
    assert found.facets == {"res_format": [("C SV", 3)]}
    assert filtered.count == 3
