"""Who may read and write DataStore tables (both backends): a private or draft dataset's
tables are invisible to everyone not entitled to them, in search, info, the dump and
datastore_search_sql, with the same Not Found as for a table that does not exist; writes
need the organisation's editor role."""

from __future__ import annotations

from tests.opendata.helpers import Act
from tests.opendata.test_authorization import Portal, portal, world  # noqa: F401

FIELDS = [{"id": "plan", "type": "text"}]


def _table(admin: Act, dataset: str) -> str:
    created = admin(
        "datastore_create",
        resource={"package_id": dataset, "name": "Plans"},
        fields=FIELDS,
        records=[{"plan": "=cmd|' /C calc'!A0"}],
    )
    return str(created["result"]["resource_id"])


def test_private_and_draft_tables_are_invisible(portal: Portal, world: dict[str, Act]) -> None:  # noqa: F811
    admin = world["admin"]
    private, draft, public = (
        _table(admin, d) for d in ("private-data", "draft-data", "public-data")
    )
    for who in ("anonymous", "nobody", "epd-editor"):
        for rid in (private, draft):
            for action, key in (("datastore_search", "resource_id"), ("datastore_info", "id")):
                error = world[who](action, 404, **{key: rid})["error"]
                assert error["__type"] == "Not Found Error"
        assert world[who]("datastore_search", resource_id=public)["result"]["total"] == 1
    assert portal.client.get(f"/datastore/dump/{private}").status_code == 404
    assert portal.client.get(f"/datastore/dump/{public}").status_code == 200
    # the organisation's member reads the private table, not the draft; its editor both
    assert world["td-member"]("datastore_search", resource_id=private)["result"]["total"] == 1
    world["td-member"]("datastore_search", 404, resource_id=draft)
    assert world["td-editor"]("datastore_search", resource_id=draft)["result"]["total"] == 1


def test_writes_need_the_editor_role(world: dict[str, Act]) -> None:  # noqa: F811
    rid = _table(world["admin"], "public-data")
    record = {"resource_id": rid, "records": [{"plan": "more"}]}
    for who in ("anonymous", "nobody", "td-member", "epd-editor"):
        error = world[who]("datastore_upsert", 403, method="insert", **record)["error"]
        assert error["__type"] == "Authorization Error"
        world[who]("datastore_delete", 403, resource_id=rid)
        world[who]("datastore_create", 403, resource_id=rid, fields=FIELDS)
    world["td-editor"]("datastore_upsert", method="insert", **record)
    assert world["anonymous"]("datastore_search", resource_id=rid)["result"]["total"] == 2
