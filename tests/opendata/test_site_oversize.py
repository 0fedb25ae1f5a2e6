"""A browser sent past a page's body limit gets a page, not the API's JSON: the editor pages'
forms and uploads say the limit in the reader's language, that nothing was saved, and what to
do instead (web/refusals.py). Scripts posting to the same paths, and the Action API, keep
their JSON errors."""

from __future__ import annotations

import pytest
from tests.opendata import test_site_editor as editor
from tests.opendata.test_site_editor import MAX_UPLOAD, Site, csrf

from smartcity.opendata.ckan.requests import FORM_OVERHEAD

site = editor.site  # the editor pages' app, accounts and organisations (a fixture)

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TOO_BIG = b"a,b\n" + b"1" * (MAX_UPLOAD + FORM_OVERHEAD)  # past the upload route's edge limit


def upload_form(site: Site, lang: str = "en") -> tuple[str, str]:
    """The car-parks dataset's new-resource form, signed in as its editor: (path, CSRF token)."""
    site.root("package_create", name="car-parks", owner_org="td", title="Car parks")
    site.sign_in("td-editor")
    new = f"/{lang}/publish/dataset/car-parks/resource/new"
    return new, csrf(site.client.get(new).text)


def kept_files(site: Site) -> list[str]:
    if not site.uploads.exists():
        return []
    return [p.name for p in site.uploads.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("lang", "heading", "limit"),
    [
        ("en", "What you sent is too large", "at most 2 KB"),
        ("tc", "你送出的內容太大", "最多接受 2 KB"),
        ("sc", "你提交的内容太大", "最多接受 2 KB"),
    ],
)
def test_an_upload_past_the_limit_gets_a_page_in_the_readers_language(
    site: Site, lang: str, heading: str, limit: str
) -> None:
    new, token = upload_form(site, lang)
    sent = site.client.post(
        new,
        data={"csrf": token, "name_en": "Spaces"},
        files={"upload": ("big.csv", TOO_BIG, "text/csv")},
        headers=BROWSER,
    )
    assert sent.status_code == 413
    assert sent.headers["content-type"].startswith("text/html")
    assert sent.headers["cache-control"] == "no-store"
    assert '<html lang="' + {"en": "en", "tc": "zh-Hant", "sc": "zh-Hans"}[lang] in sent.text
    assert f"<h1>{heading}</h1>" in sent.text and limit in sent.text
    assert f'href="{new}"' in sent.text  # back to the form, which a GET shows again
    assert site.show("car-parks")["resources"] == []
    assert kept_files(site) == []


def test_a_dataset_form_past_the_limit_gets_the_page_too(site: Site) -> None:
    site.sign_in("td-editor")
    token = csrf(site.client.get("/en/publish/new?organization=td").text)
    huge = "x" * (8 * 1024 * 1024 + 1)  # past the platform's body limit (Limits.max_body_bytes)
    sent = site.client.post(
        "/en/publish/new",
        data={"csrf": token, "owner_org": "td", "name": "huge", "notes_en": huge},
        headers=BROWSER,
    )
    assert sent.status_code == 413 and sent.headers["content-type"].startswith("text/html")
    assert "at most 8 MB" in sent.text
    assert site.root("package_show", _status=404, id="huge")["success"] is False


def test_scripts_and_the_action_api_keep_their_json(site: Site) -> None:
    new, token = upload_form(site)
    sent = site.client.post(
        new,
        data={"csrf": token},
        files={"upload": ("big.csv", TOO_BIG, "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert sent.status_code == 413
    assert "larger than" in sent.json()["detail"]
    api = site.client.post(
        "/api/3/action/resource_create",
        data={"package_id": "car-parks"},
        files={"upload": ("big.csv", TOO_BIG, "text/csv")},
        headers={"Authorization": site.root_key, **BROWSER},
    )
    assert api.status_code == 409  # CKAN's Validation Error, in its envelope
    assert api.json()["success"] is False and "upload" in api.json()["error"]
    assert site.show("car-parks")["resources"] == []
