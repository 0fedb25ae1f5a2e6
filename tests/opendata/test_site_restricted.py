"""A private or draft dataset's page is shown to its organisation's editors — labelled, never
indexed or cached, without the public links — and to nobody else: anonymous visitors, other
organisations' editors and the organisation's plain members get a 404, as everywhere else."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from tests.opendata import test_site_editor as editor
from tests.opendata.test_site_editor import CSV, Site, csrf

site = editor.site  # the editor pages' app, accounts and organisations (a fixture)


def private_plans(site: Site) -> None:
    site.root("package_create", name="plans", owner_org="td", title="Car park plans", private=True)
    site.sign_in("td-editor")
    new = "/en/publish/dataset/plans/resource/new"
    sent = site.client.post(
        new,
        data={"csrf": csrf(site.client.get(new).text), "name_en": "Spaces"},
        files={"upload": ("spaces.csv", CSV, "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text[:1000]


def test_its_editors_see_a_private_dataset_labelled_and_unindexed(site: Site) -> None:
    private_plans(site)
    page = site.client.get("/en/dataset/plans")
    assert page.status_code == 200
    assert "Private: only its organisation's editors see it." in html.unescape(page.text)
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert page.headers["cache-control"] == "no-store"
    # No public links: DCAT, schema.org, the resource's public page, the API examples.
    assert ".ttl" not in page.text and "application/ld+json" not in page.text
    assert "RemoteCKAN" not in page.text and "/report/dataset/plans" not in page.text
    resource = site.show("plans")["resources"][0]
    assert f'href="/en/publish/dataset/plans/resource/{resource["id"]}"' in page.text
    assert f'href="/en/dataset/plans/resource/{resource["id"]}"' not in page.text
    assert "Edit this dataset" in page.text
    tc = site.client.get("/tc/dataset/plans")
    assert "私人：只有其所屬組織的編輯可以看到。" in tc.text
    # Its DCAT and its resource page stay an anonymous visitor's, signed in or not.
    assert site.client.get("/dataset/plans.ttl").status_code == 404
    assert site.client.get(f"/en/dataset/plans/resource/{resource['id']}").status_code == 404


def test_a_draft_says_it_is_a_draft(site: Site) -> None:
    site.root("package_create", name="draft-plans", owner_org="td", title="Plans", state="draft")
    site.sign_in("td-editor")
    page = site.client.get("/sc/dataset/draft-plans")
    assert page.status_code == 200 and "草稿：发布前只有其所属组织的编辑可以看到。" in page.text


@pytest.mark.parametrize("user", ["epd-editor", "td-member", "nobody", None])
def test_nobody_else_sees_it(site: Site, user: str | None) -> None:
    private_plans(site)
    site.client.post(  # sign out the editor who made it
        "/en/logout", data={"csrf": csrf(site.client.get("/en/publish").text)}
    )
    if user is not None:
        site.sign_in(user)
    page = site.client.get("/en/dataset/plans")
    assert page.status_code == 404
    assert "Car park plans" not in page.text


def test_a_visitor_without_a_session_gets_404(site: Site) -> None:
    private_plans(site)
    with TestClient(site.client.app) as visitor:
        assert visitor.get("/en/dataset/plans").status_code == 404
        assert not re.search("Car park plans", visitor.get("/en/dataset").text)
