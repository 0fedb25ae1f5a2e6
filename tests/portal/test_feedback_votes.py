"""Votes on both backends: one person, one vote (a signed-in account or an e-mail address
proven by a link), the browser's token only a first filter, never a vote for one's own
comment (issue #9; issue #11: 70 votes from 70 client-chosen tokens)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from tests.portal.test_feedback_service import MEASURE, Clock, browser, draft, make, post

from smartcity.portal.feedback import tables
from smartcity.portal.feedback.errors import (
    FeedbackNotFound,
    InvalidFeedback,
    NotAllowed,
    RateLimited,
    VoteRefused,
)
from smartcity.portal.feedback.model import Client
from smartcity.portal.feedback.service import FeedbackService
from smartcity.storage.engine import Database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fb(db: Database, clock: Clock) -> FeedbackService:
    return make(db, clock)


def as_account(fb: FeedbackService, account: int, browser_n: int) -> Client:
    return Client(
        f"198.51.100.{browser_n}", f"browser-token-{browser_n:08d}", fb.account_person(account)
    )


def link_token(fb: FeedbackService, to: str) -> str:
    """The token in the newest vote mail to ``to``, read from the outbox as a relay would."""
    mails = [m for m in fb.privacy.pending_mail() if m.to == to]
    assert mails, f"no mail to {to}"
    fb.privacy.mark_sent(mails[-1].id)
    found = re.search(r"/votes/confirm\?token=([A-Za-z0-9_-]+)", mails[-1].body)
    assert found, mails[-1].body
    return found.group(1)


def test_tokens_chosen_by_the_client_make_no_votes(fb: FeedbackService) -> None:
    comment = post(fb)
    for n in range(70):  # the finding: 70 votes from 70 X-Voter-Token values
        with pytest.raises(VoteRefused) as err:
            fb.votes.vote(comment, browser(100 + n))
        assert (err.value.code, err.value.status) == ("vote_needs_person", 403)
    assert fb.comment(comment).votes == 0


def test_one_account_votes_once_from_any_number_of_browsers(fb: FeedbackService) -> None:
    comment = post(fb)
    # The finding: three browser contexts, three votes within seconds.
    results = [fb.votes.vote(comment, as_account(fb, 42, n)) for n in (11, 12, 13)]
    assert [r.recorded for r in results] == [True, False, False]
    assert fb.comment(comment).votes == 1


def test_the_browser_stays_a_first_filter(fb: FeedbackService) -> None:
    comment = post(fb)
    assert fb.votes.vote(comment, as_account(fb, 1, 9)).recorded
    # Another person from the same browser: not counted again.
    assert not fb.votes.vote(comment, as_account(fb, 2, 9)).recorded
    assert fb.votes.vote(comment, as_account(fb, 2, 10)).recorded
    assert fb.comment(comment).votes == 2


def test_nobody_votes_for_their_own_comment(fb: FeedbackService) -> None:
    by_browser = post(fb, "from browser 1", who=1)
    by_email = post(fb, "with an address", who=2, email="Author@Example.hk")
    signed_in = Client("192.0.2.1", "browser-token-00000003", fb.account_person(77))
    by_account = fb.post_comment(draft("as a signed-in account"), signed_in).comment
    assert by_account is not None
    refusals = [
        (by_browser, as_account(fb, 5, 1)),  # the author's browser, whoever signs in there
        (
            by_email,
            Client("192.0.2.9", "browser-token-00000099", fb.email_person("author@example.hk")),
        ),
        (by_account.id, as_account(fb, 77, 50)),  # the author's account, another browser
    ]
    for comment, client in refusals:
        with pytest.raises(VoteRefused) as err:
            fb.votes.vote(comment, client)
        assert (err.value.code, err.value.status) == ("own_comment", 403)
    with pytest.raises(VoteRefused):  # no mail is sent for one's own comment either
        fb.votes.request_by_email(by_email, "author@example.hk", browser(60))
    assert fb.privacy.pending_mail() == []
    assert fb.votes.vote(by_browser, as_account(fb, 5, 61)).recorded  # others may


def test_a_vote_by_email_counts_when_the_link_is_confirmed(fb: FeedbackService) -> None:
    comment = post(fb)
    assert (
        fb.votes.request_by_email(comment, "Voter@Example.hk", browser(20), language="zh-Hant")
        is None
    )
    [mail] = fb.privacy.pending_mail()
    assert mail.to == "voter@example.hk" and mail.subject == "智慧城市網站：確認您的投票"
    assert "/tc/votes/confirm?token=" in mail.body
    assert fb.comment(comment).votes == 0  # not before the link is confirmed
    confirmed = fb.votes.confirm(link_token(fb, "voter@example.hk"))
    assert (confirmed.vote.recorded, confirmed.vote.votes) == (True, 1)
    assert confirmed.target == MEASURE
    assert confirmed.person == fb.email_person("voter@example.hk")
    # The same address from another browser: one person, so no second vote.
    fb.votes.request_by_email(comment, "voter@EXAMPLE.hk", browser(21))
    again = fb.votes.confirm(link_token(fb, "voter@example.hk"))
    assert not again.vote.recorded and fb.comment(comment).votes == 1
    # The address is never stored beside the vote: only keyed hashes.
    with fb.db.read() as conn:
        stored = [
            *conn.execute(select(tables.votes)).all(),
            *conn.execute(select(tables.vote_requests)).all(),
        ]
    assert stored and not any("@" in str(value) for row in stored for value in row)


def test_vote_links_work_once_and_expire(db: Database, clock: Clock) -> None:
    fb = make(db, clock, vote_token_ttl=3600)
    comment = post(fb)
    fb.votes.request_by_email(comment, "a@example.hk", browser(30))
    token = link_token(fb, "a@example.hk")
    assert fb.votes.confirm(token).vote.recorded
    with pytest.raises(NotAllowed) as err:
        fb.votes.confirm(token)
    assert (err.value.code, err.value.status) == ("vote_token_used", 410)
    fb.votes.request_by_email(comment, "b@example.hk", browser(31))
    late = link_token(fb, "b@example.hk")
    clock.advance(3601)
    with pytest.raises(NotAllowed) as err:
        fb.votes.confirm(late)
    assert err.value.code == "vote_token_expired"
    with pytest.raises(FeedbackNotFound):
        fb.votes.confirm("not-a-token-at-all")
    assert fb.comment(comment).votes == 1


def test_a_browser_that_voted_gets_no_mail(fb: FeedbackService) -> None:
    comment = post(fb)
    assert fb.votes.vote(comment, as_account(fb, 1, 40)).recorded
    already = fb.votes.request_by_email(comment, "c@example.hk", browser(40))
    assert already is not None and not already.recorded
    assert fb.privacy.pending_mail() == []


def test_vote_mails_are_limited_per_address(db: Database, clock: Clock) -> None:
    fb = make(db, clock, vote_mail_rate_email=(2, 86400))
    comments = [post(fb, f"comment {n}") for n in range(3)]
    fb.votes.request_by_email(comments[0], "d@example.hk", browser(50))
    fb.votes.request_by_email(comments[1], "D@example.hk", browser(51))
    with pytest.raises(RateLimited):
        fb.votes.request_by_email(comments[2], "d@example.hk", browser(52))
    with pytest.raises(InvalidFeedback) as err:
        fb.votes.request_by_email(comments[2], "not an address", browser(52))
    assert err.value.code == "invalid_email"
