"""“Report a problem with this data”: the dataset page links to a form (no JavaScript) whose
report is a feedback comment on ``dataset:<name>``, held for a moderator; private and unknown
datasets are refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act

from smartcity.portal.feedback.service import FeedbackService

LINKS = {
    "en": "Report a problem with this data",
    "tc": "回報此數據的問題",
    "sc": "报告此数据的问题",
}


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def feedback(client: TestClient) -> FeedbackService:
    service: FeedbackService = client.app.state.feedback  # type: ignore[attr-defined]
    return service


@pytest.mark.parametrize("prefix", ["en", "tc", "sc"])
def test_the_dataset_page_links_to_the_report_form(
    od_client: TestClient, transport: dict[str, Any], prefix: str
) -> None:
    page = od_client.get(f"/{prefix}/dataset/car-park-vacancy")
    assert page.status_code == 200
    href = f'href="/{prefix}/report/dataset/car-park-vacancy"'
    assert href in page.text and LINKS[prefix] in page.text
    form = od_client.get(f"/{prefix}/report/dataset/car-park-vacancy")
    assert form.status_code == 200 and LINKS[prefix] in form.text


def test_a_report_on_a_public_dataset_waits_for_a_moderator(
    od_client: TestClient, transport: dict[str, Any]
) -> None:
    url = "/en/report/dataset/car-park-vacancy"
    token = csrf(od_client.get(url).text)
    data = {"csrf": token, "text": "The counts for Sha Tin are all zero.", "website": ""}
    sent = od_client.post(url, data=data, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:1000]
    thanks = od_client.get(sent.headers["location"])
    assert "A moderator will read your report" in thanks.text
    total, items = feedback(od_client).moderation.queue()
    assert total == 1
    assert items[0].target == "dataset:car-park-vacancy" and items[0].status == "pending"
    assert "Sha Tin" in (items[0].text or "")
    # An empty report is sent back with the mistake, nothing stored.
    empty = od_client.post(url, data={"csrf": token, "text": " "}, follow_redirects=False)
    assert empty.status_code == 400 and "There is a problem" in empty.text
    assert feedback(od_client).moderation.queue()[0] == 1


def test_private_or_unknown_datasets_cannot_be_reported(
    od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    act("package_create", name="secret", owner_org="td", title="Car park plans", private=True)
    token = csrf(od_client.get("/en/report/dataset/car-park-vacancy").text)
    for name in ("secret", "nothing-here"):
        url = f"/en/report/dataset/{name}"
        page = od_client.get(url)
        assert page.status_code == 404
        assert f"There is no public dataset called “{name}”" in page.text
        sent = od_client.post(url, data={"csrf": token, "text": "Wrong numbers."})
        assert sent.status_code == 404 and "There is no public dataset" in sent.text
    assert feedback(od_client).moderation.queue()[0] == 0
    # The JSON API refuses them too, and says why.
    api = od_client.post(
        "/api/v1/comments",
        json={"target": "dataset:secret", "text": "Wrong numbers."},
        headers={"X-Voter-Token": "api-test-browser-0001"},
    )
    assert api.status_code == 404 and "unknown_target" in api.text


def test_moderators_are_linked_to_the_dataset() -> None:
    from smartcity.portal.site.moderation import _target_url
    from smartcity.web.i18n import LANGS

    tc = next(lang for lang in LANGS if lang.prefix == "tc")
    assert _target_url(tc, "dataset:car-park-vacancy", 7) == "/tc/dataset/car-park-vacancy"
    assert _target_url(tc, "measure:mobility-01", 7) == "/tc/measures/mobility-01#comment-7"
