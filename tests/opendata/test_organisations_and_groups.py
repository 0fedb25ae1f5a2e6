"""A search page reads the organisations and groups it shows (its datasets' own and those its
facets name) in one statement: each kind by id or by name, in name order, never the other's."""

from __future__ import annotations

from typing import Any

from tests.opendata.helpers import Act

from smartcity.opendata.catalogue import repository as repo
from smartcity.storage.engine import Database


def _names(rows: list[Any]) -> list[str]:
    return [r.name for r in rows]


def test_both_kinds_by_id_or_name_in_name_order(db: Database, act: Act) -> None:
    td = act("organization_create", name="td", title="Transport Department")["result"]
    act("organization_create", name="epd", title="Environmental Protection Department")
    act("organization_create", name="wsd", title="Water Supplies Department")
    act("group_create", name="transport", title="Transport")
    environment = act("group_create", name="environment", title="Environment")["result"]
    act("group_create", name="td", title="A group named as an organisation is")
    with db.read() as conn:
        orgs, groups = repo.organisations_and_groups(
            conn,
            repo.Named(ids=[td["id"], td["id"]], names=["wsd", "nothing"]),
            repo.Named(ids=[environment["id"]], names=["transport"]),
        )
        assert _names(orgs) == ["td", "wsd"]
        assert _names(groups) == ["environment", "transport"]
        assert orgs[0].id == td["id"] and orgs[0].title["en"] == "Transport Department"
        assert groups[0].id == environment["id"]

        # A name asked of one kind does not bring the other kind's row of that name.
        orgs, groups = repo.organisations_and_groups(conn, repo.Named(names=["td"]), repo.Named())
        assert _names(orgs) == ["td"] and groups == []
        orgs, groups = repo.organisations_and_groups(conn, repo.Named(), repo.Named(names=["td"]))
        assert orgs == [] and _names(groups) == ["td"]
        assert repo.organisations_and_groups(conn, repo.Named(), repo.Named()) == ([], [])
