"""Who may do what: API keys as CKAN sends them, roles per organisation, private and draft
datasets invisible to everyone not entitled to them (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, make_act, open_settings

from smartcity.app import create_app
from smartcity.storage.engine import Database


class Portal:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        od = client.app.state.opendata  # type: ignore[attr-defined]
        self.keys = client.app.state.hub.keys  # type: ignore[attr-defined]
        self.organisations = od.organisations
        self.anonymous = make_act(client)

    def key(self, name: str, *, scope: str = "write") -> str:
        return self.keys.create(name, scope=scope)[1]

    def as_(self, token: str, *, header: str = "Authorization") -> Act:
        return make_act(self.client, headers={header: token})


@pytest.fixture
def portal(db: Database, tmp_path: Path) -> Iterator[Portal]:
    app = create_app(open_settings(db, tmp_path, auth=True))
    app.state.opendata.organisations.seed_licences()
    with TestClient(app) as client:
        yield Portal(client)


@pytest.fixture
def world(portal: Portal) -> dict[str, Act]:
    """A sysadmin; td's admin, editor and member; epd's editor; a reader with no role."""
    admin_token = portal.key("site-admin")
    portal.organisations.set_sysadmin("site-admin", True)
    admin = portal.as_(admin_token)
    admin("organization_create", name="td", title="Transport Department")
    admin("organization_create", name="epd", title="Environmental Protection Department")
    for user, org, role in (
        ("td-admin", "td", "admin"),
        ("td-editor", "td", "editor"),
        ("td-member", "td", "member"),
        ("epd-editor", "epd", "editor"),
    ):
        admin("organization_member_create", id=org, username=user, role=role)
    admin("package_create", name="public-data", owner_org="td", title="Public")
    admin(
        "package_create",
        name="private-data",
        owner_org="td",
        title="Secret plans",
        private=True,
        tags=[{"name": "secret"}],
    )
    admin("package_create", name="draft-data", owner_org="td", title="Draft plans", state="draft")
    return {
        "admin": admin,
        "td-admin": portal.as_(portal.key("td-admin")),
        # ckanapi sends the key in both headers; older clients only in X-CKAN-API-Key.
        "td-editor": portal.as_(portal.key("td-editor"), header="X-CKAN-API-Key"),
        "td-member": portal.as_(portal.key("td-member")),
        "epd-editor": portal.as_("Bearer " + portal.key("epd-editor")),
        "nobody": portal.as_(portal.key("nobody")),
        "anonymous": portal.anonymous,
    }


def _visible(act: Act) -> set[str]:
    found = act("package_search", include_private=True, include_drafts=True, rows=100)
    return {p["name"] for p in found["result"]["results"]}


def test_writes_need_the_right_role_in_the_organisation(world: dict[str, Act]) -> None:
    denied = world["epd-editor"]("package_create", 403, name="x", owner_org="td")
    assert denied["error"]["__type"] == "Authorization Error"
    assert "editor" in denied["error"]["message"]
    world["td-member"]("package_create", 403, name="x", owner_org="td")
    world["nobody"]("package_create", 403, name="x", owner_org="td")
    anonymous = world["anonymous"]("package_create", 403, name="x", owner_org="td")
    assert "API key" in anonymous["error"]["message"]
    world["epd-editor"]("package_patch", 403, id="public-data", title="Mine now")
    world["epd-editor"]("package_delete", 403, id="public-data")
    world["epd-editor"]("resource_create", 403, package_id="public-data", url="https://x.org/a")

    made = world["td-editor"]("package_create", name="new-data", owner_org="td")["result"]
    assert made["creator_user_id"] == "td-editor"
    world["td-editor"]("package_patch", id="new-data", title="Edited")
    world["epd-editor"]("package_create", name="epd-data", owner_org="epd")
    # Moving a dataset needs the role in both organisations.
    world["td-editor"]("package_patch", 403, id="new-data", owner_org="epd")


def test_organisation_admins_manage_members_editors_do_not(world: dict[str, Act]) -> None:
    world["td-editor"]("organization_member_create", 403, id="td", username="x", role="editor")
    world["td-editor"]("organization_patch", 403, id="td", description="mine")
    world["td-admin"]("organization_member_create", id="td", username="nobody", role="editor")
    world["nobody"]("package_create", name="now-allowed", owner_org="td")
    world["td-admin"]("organization_member_delete", id="td", username="nobody")
    world["nobody"]("package_create", 403, name="not-any-more", owner_org="td")
    world["td-admin"]("organization_patch", id="td", description="Roads")
    # Organisations and groups are created by sysadmins only.
    world["td-admin"]("organization_create", 403, name="mine", title="Mine")
    world["td-admin"]("group_create", 403, name="mine", title="Mine")
    bad_role = world["td-admin"](
        "organization_member_create", 409, id="td", username="y", role="owner"
    )
    assert bad_role["error"]["__type"] == "Validation Error"


def test_private_and_draft_datasets_are_invisible_to_others(world: dict[str, Act]) -> None:
    everything = {"public-data", "private-data", "draft-data"}
    assert _visible(world["admin"]) == everything
    assert _visible(world["td-editor"]) == everything
    assert _visible(world["td-member"]) == {"public-data", "private-data"}
    for outsider in ("epd-editor", "nobody", "anonymous"):
        act = world[outsider]
        assert _visible(act) == {"public-data"}, outsider
        for name in ("private-data", "draft-data"):
            assert act("package_show", 404, id=name)["error"]["__type"] == "Not Found Error"
        assert act("package_list", include_private=True)["result"] == ["public-data"]
        assert act("package_search", q="secret")["result"]["count"] == 0
        assert act("tag_list")["result"] == []  # the private dataset's tag stays hidden
        td = act("organization_show", id="td", include_datasets=True)["result"]
        assert [p["name"] for p in td["packages"]] == ["public-data"]
        assert "users" not in td
        facets = act("package_search", **{"facet.field": '["organization"]'})["result"]
        assert facets["search_facets"]["organization"]["items"][0]["count"] == 1
    # Without include_private even members see only public datasets (CKAN's default).
    found = world["td-member"]("package_search")["result"]["results"]
    assert [p["name"] for p in found] == ["public-data"]
    members = world["td-member"]("organization_show", id="td")["result"]["users"]
    assert {"name": "td-editor", "capacity": "editor"} in members


def test_keys_are_checked(portal: Portal, world: dict[str, Act]) -> None:
    unknown = portal.as_("sc_not_a_real_key")("package_list", 403)
    assert "unknown or revoked" in unknown["error"]["message"]
    reader = portal.as_(portal.key("td-editor", scope="read"))
    assert "private-data" in _visible(reader)  # reads as td-editor ...
    refused = reader("package_patch", 403, id="public-data", title="x")  # ... but never writes
    assert "read-only" in refused["error"]["message"]


def test_resource_writes_follow_the_dataset(world: dict[str, Act]) -> None:
    resource: dict[str, Any] = world["td-editor"](
        "resource_create", package_id="private-data", url="https://example.org/a.csv"
    )["result"]
    world["epd-editor"]("resource_show", 404, id=resource["id"])  # private dataset's resource
    world["td-member"]("resource_show", id=resource["id"])
    world["epd-editor"]("resource_delete", 404, id=resource["id"])
    world["td-member"]("resource_delete", 403, id=resource["id"])
    world["td-editor"]("resource_delete", id=resource["id"])


def test_the_audit_trail_names_who_changed_what_to_insiders(world: dict[str, Act]) -> None:
    world["td-editor"]("package_patch", id="public-data", title="Public (revised)")
    trail = world["td-member"]("package_activity_list", id="public-data")["result"]
    assert [e["activity_type"] for e in trail] == ["package_patch", "package_create"]
    assert trail[0]["user_id"].startswith("td-editor (key ")
    assert trail[0]["data"]["title"] == "Public (revised)"
    assert trail[1]["user_id"].startswith("site-admin")
    public = world["anonymous"]("package_activity_list", id="public-data")["result"]
    assert [e["user_id"] for e in public] == [None, None]
    world["anonymous"]("package_activity_list", 404, id="private-data")


def test_facets_of_the_first_page_count_only_what_the_reader_sees(
    world: dict[str, Act], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page (no words, no filters) counts its facets as the whole index less the
    datasets hidden from the reader (search/engine.py ``_browse``); with more hidden than
    ``MAX_HIDDEN`` it counts the visible ones instead: both give the same answer."""
    from smartcity.opendata.search import engine

    world["admin"]("package_create", name="gone", owner_org="td", tags=[{"name": "secret"}])
    world["admin"]("package_delete", id="gone")
    wanted = {"facet.field": '["organization", "tags"]', "facet.limit": -1}

    def facets(who: str, **params: Any) -> dict[str, dict[str, int]]:
        found = world[who]("package_search", **wanted, **params)["result"]["search_facets"]
        return {f: {i["name"]: i["count"] for i in v["items"]} for f, v in found.items()}

    expected = {
        ("anonymous", False): {"organization": {"td": 1}, "tags": {}},
        ("epd-editor", True): {"organization": {"td": 1}, "tags": {}},
        ("td-member", False): {"organization": {"td": 1}, "tags": {}},
        ("td-member", True): {"organization": {"td": 2}, "tags": {"secret": 1}},
        ("td-editor", True): {"organization": {"td": 3}, "tags": {"secret": 1}},
        ("admin", True): {"organization": {"td": 3}, "tags": {"secret": 1}},
    }
    for hidden_at_most in (engine.MAX_HIDDEN, 0):
        monkeypatch.setattr(engine, "MAX_HIDDEN", hidden_at_most)
        for (who, everything), counts in expected.items():
            params = {"include_private": everything, "include_drafts": everything}
            assert facets(who, **params) == counts, (who, everything, hidden_at_most)
