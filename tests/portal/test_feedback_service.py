"""The feedback service on both backends: threads, votes, reports, moderation, pre-moderation,
honeypot, rate limits, limits on text, privacy requests."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from smartcity.config import FeedbackSettings
from smartcity.portal.feedback import tables
from smartcity.portal.feedback.errors import (
    FeedbackNotFound,
    InvalidFeedback,
    NotAllowed,
    RateLimited,
)
from smartcity.portal.feedback.model import Client, CommentDraft, Target
from smartcity.portal.feedback.service import FeedbackService
from smartcity.storage.engine import Database

SECRET = "test-secret-0123456789abcdef"
MEASURE = Target("measure", "mobility-01")
DEPT = {"en": "Transport Department", "zh-Hant": "運輸署", "zh-Hans": "运输署"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000_000  # microseconds

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


def make(db: Database, clock: Clock, **overrides: Any) -> FeedbackService:
    generous = {
        "secret": SECRET,
        "comment_rate_session": (1000, 600),
        "comment_rate_ip": (1000, 600),
        "reaction_rate_session": (1000, 600),
        "reaction_rate_ip": (1000, 600),
    }
    return FeedbackService(db, FeedbackSettings(**{**generous, **overrides}), clock=clock)


def browser(n: int, ip: str | None = None) -> Client:
    return Client(ip=ip or f"203.0.113.{n % 250}", session=f"browser-token-{n:08d}")


def draft(text: str = "More parking data, please.", **fields: Any) -> CommentDraft:
    return CommentDraft(target=fields.pop("target", MEASURE), text=text, **fields)


def post(
    fb: FeedbackService,
    text: str = "More parking data, please.",
    *,
    who: int = 1,
    parent: int | None = None,
    **fields: Any,
) -> int:
    result = fb.post_comment(draft(text, parent_id=parent, **fields), browser(who))
    assert result.status == "published" and result.comment is not None
    return result.comment.id


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fb(db: Database, clock: Clock) -> FeedbackService:
    return make(db, clock)


# -- posting and threads ------------------------------------------------------------------------


def test_post_and_read_a_thread(fb: FeedbackService, clock: Clock) -> None:
    root = post(
        fb,
        "Real-time parking vacancy for every car park.",
        name="Ada",
        email="Ada@Example.org",
        stance="support",
        language="en",
    )
    clock.advance(1)
    reply = post(fb, "同意，尤其是九龍。", who=2, parent=root, language="zh-Hant")
    page = fb.comments(MEASURE)
    assert page.total == 1
    [thread] = page.threads
    assert (thread.id, thread.name, thread.stance, thread.state) == (
        root,
        "Ada",
        "support",
        "published",
    )
    assert thread.html == "<p>Real-time parking vacancy for every car park.</p>"
    [child] = thread.replies
    assert (child.id, child.parent_id, child.depth, child.language) == (reply, root, 1, "zh-Hant")
    body = str(page.to_json())
    assert "example.org" not in body.lower() and "email" not in body
    # Stored lower-cased, for the privacy requests.
    with fb.db.read() as conn:
        emails = conn.execute(select(tables.comments.c.email).order_by(tables.comments.c.id))
        assert emails.scalars().all() == ["ada@example.org", None]
    assert fb.comments(Target("measure", "mobility-02")).total == 0


def test_replies_stop_at_depth_three(fb: FeedbackService) -> None:
    ids = [post(fb, "level 0")]
    for level in (1, 2, 3):
        ids.append(post(fb, f"level {level}", parent=ids[-1]))
    node = fb.comment(ids[3])
    assert node.depth == 3 and not node.can_reply
    assert fb.comment(ids[2]).can_reply
    with pytest.raises(InvalidFeedback) as err:
        post(fb, "level 4", parent=ids[3])
    assert err.value.code == "reply_too_deep" and err.value.status == 400
    assert "3 levels" in err.value.detail


def test_replies_need_a_visible_parent_on_the_same_target(fb: FeedbackService) -> None:
    root = post(fb)
    with pytest.raises(InvalidFeedback) as err:
        post(fb, parent=root, target=Target("area", "mobility"))
    assert err.value.code == "parent_elsewhere"
    with pytest.raises(FeedbackNotFound):
        post(fb, parent=root + 1000)
    fb.moderation.hide(root, "mod")
    with pytest.raises(FeedbackNotFound):
        post(fb, parent=root)


def test_unknown_targets_are_refused(db: Database, clock: Clock) -> None:
    fb = make(db, clock)
    fb.target_exists = lambda kind, ident: (kind, ident) == ("measure", "mobility-01")
    post(fb)
    with pytest.raises(FeedbackNotFound) as err:
        post(fb, target=Target("measure", "mobility-99"))
    assert err.value.code == "unknown_target"
    with pytest.raises(InvalidFeedback):
        Target.parse("measure:<script>")
    with pytest.raises(InvalidFeedback):
        Target.parse("proposal:x")


# -- votes --------------------------------------------------------------------------------------


def voter(fb: FeedbackService, n: int, *, account: int | None = None) -> Client:
    """Browser ``n`` with a proven person: portal account ``account`` (default: ``n``)."""
    return Client(
        ip=f"203.0.113.{n % 250}",
        session=f"browser-token-{n:08d}",
        person=fb.account_person(account if account is not None else n),
    )


def test_one_vote_per_person(fb: FeedbackService) -> None:
    comment = post(fb)
    first = fb.votes.vote(comment, voter(fb, 7))
    again = fb.votes.vote(comment, voter(fb, 7))
    other = fb.votes.vote(comment, voter(fb, 8))
    assert (first.recorded, first.votes) == (True, 1)
    assert (again.recorded, again.votes) == (False, 1)
    assert again.to_json()["result"] == "already_voted"
    assert (other.recorded, other.votes) == (True, 2)
    assert fb.comment(comment).votes == 2
    with fb.db.read() as conn:
        rows = conn.execute(select(tables.votes)).all()
    assert len(rows) == 2
    assert not any("browser-token" in (r.voter_digest + r.browser_digest) for r in rows)
    with pytest.raises(InvalidFeedback) as err:
        fb.votes.vote(comment, Client(ip="1.2.3.4", session=None, person=fb.account_person(9)))
    assert err.value.code == "voter_token_required"


def test_threads_sort_by_votes(fb: FeedbackService, clock: Clock) -> None:
    a = post(fb, "a")
    clock.advance(1)
    b = post(fb, "b")
    fb.votes.vote(a, voter(fb, 3))
    assert [t.id for t in fb.comments(MEASURE, sort="votes").threads] == [a, b]
    assert [t.id for t in fb.comments(MEASURE, sort="newest").threads] == [b, a]
    assert [t.id for t in fb.comments(MEASURE, sort="oldest", limit=1, offset=1).threads] == [b]


# -- reports and moderation ---------------------------------------------------------------------


def test_reports_from_distinct_people_hide_a_comment(fb: FeedbackService) -> None:
    comment = post(fb, "Buy cheap watches")
    assert fb.report(comment, "spam", None, voter(fb, 11)).counted
    assert fb.report(comment, "spam", None, voter(fb, 12)).recorded
    # The same person again, from this browser or another, does not count twice.
    assert not fb.report(comment, "offensive", None, voter(fb, 12)).recorded
    assert not fb.report(comment, "offensive", None, voter(fb, 99, account=12)).recorded
    assert fb.comments(MEASURE).total == 1
    fb.report(comment, "other", "advertising", voter(fb, 13))
    assert fb.comments(MEASURE).total == 0
    with pytest.raises(FeedbackNotFound):
        fb.comment(comment)
    total, queue = fb.moderation.queue()
    assert total == 1 and queue[0].status == "hidden_by_reports"
    assert [r.reason for r in queue[0].open_reports] == ["spam", "spam", "other"]
    assert fb.moderation.log(comment)[0].action == "hidden_by_reports"
    with pytest.raises(InvalidFeedback):
        fb.report(comment + 1, "other", None, voter(fb, 14))  # 'other' needs a detail


def test_made_up_browser_tokens_never_hide_a_comment(fb: FeedbackService) -> None:
    """Issue #11: reports were counted per browser token, which the client chooses: three
    made-up tokens hid any comment. A browser alone is no person: its report waits for a
    moderator and counts towards nothing."""
    comment = post(fb, "An unpopular but fair opinion")
    for n in range(20):
        result = fb.report(comment, "spam", None, browser(100 + n))
        assert result.recorded and not result.counted
    assert fb.comment(comment).state == "published"
    total, queue = fb.moderation.queue()
    assert total == 1 and queue[0].status == "published" and len(queue[0].open_reports) == 20
    assert not any(r.by_person for r in queue[0].open_reports)
    # People still hide it, whatever anonymous reports came first.
    for n in (1, 2):
        fb.report(comment, "spam", None, voter(fb, 200 + n))
    assert fb.comment(comment).state == "published"  # two people, threshold 3
    fb.report(comment, "spam", None, voter(fb, 203))
    assert fb.moderation.item(comment).status == "hidden_by_reports"


def test_restore_clears_reports_and_those_reporters_cannot_hide_it_again(
    db: Database, clock: Clock
) -> None:
    fb = make(db, clock, reports_to_hide=2)
    comment = post(fb)
    fb.report(comment, "offensive", None, voter(fb, 21))
    fb.report(comment, "offensive", None, voter(fb, 22))
    assert fb.moderation.item(comment).status == "hidden_by_reports"
    item = fb.moderation.restore(comment, "moderator ada", "fair criticism")
    assert item.status == "published" and item.open_reports == []
    assert fb.moderation.queue()[0] == 0
    assert not fb.report(comment, "offensive", None, voter(fb, 21)).recorded
    assert not fb.report(comment, "offensive", None, voter(fb, 31, account=21)).recorded
    assert fb.comment(comment).state == "published"
    fb.report(comment, "spam", None, voter(fb, 23))
    assert fb.comment(comment).state == "published"  # one open report, threshold 2
    entry = fb.moderation.log(comment)[0]
    assert (entry.actor, entry.action, entry.reason, entry.created_at) == (
        "moderator ada",
        "restore",
        "fair criticism",
        clock.now,
    )


def test_hidden_comment_with_replies_stays_as_a_placeholder(fb: FeedbackService) -> None:
    root = post(fb, "root", name="Bo")
    reply = post(fb, "reply", parent=root)
    fb.moderation.hide(root, "mod", "insulting")
    [thread] = fb.comments(MEASURE).threads
    assert (thread.state, thread.text, thread.name, thread.html) == ("hidden", None, None, None)
    assert thread.replies[0].id == reply
    fb.moderation.hide(reply, "mod")
    assert fb.comments(MEASURE).total == 0
    with pytest.raises(NotAllowed):
        fb.moderation.approve(root, "mod")


def test_official_answer_shows_the_department(fb: FeedbackService) -> None:
    chain = [post(fb, "q")]
    for _ in range(3):
        chain.append(post(fb, "deeper", parent=chain[-1]))
    answer = fb.moderation.answer(chain[0], "officer lee", "We publish it in 2026.", DEPT)
    assert answer.official and answer.department == DEPT and answer.stance is None
    deep = fb.moderation.answer(chain[3], "officer lee", "Noted.", DEPT, language="zh-Hant")
    assert deep.depth == 4 and not deep.can_reply
    [thread] = fb.comments(MEASURE).threads
    assert thread.replies[0].id == answer.id  # official answers come first
    assert fb.moderation.log(answer.id)[0].action == "answer"
    with pytest.raises(InvalidFeedback):
        fb.moderation.answer(chain[0], "officer lee", "x", {"en": "Transport Department"})
    fb.moderation.hide(chain[1], "mod")
    with pytest.raises(NotAllowed):
        fb.moderation.answer(chain[1], "officer lee", "x", DEPT)


def test_premoderation_holds_comments_until_approved(db: Database, clock: Clock) -> None:
    fb = make(db, clock, premoderation=True)
    result = fb.post_comment(draft("Please add cycling data"), browser(1))
    assert (result.status, result.comment) == ("pending", None)
    assert fb.comments(MEASURE).total == 0
    total, [item] = fb.moderation.queue()
    assert (total, item.status) == (1, "pending")
    fb.moderation.approve(item.id, "mod")
    assert fb.comments(MEASURE).threads[0].text == "Please add cycling data"
    assert [e.action for e in fb.moderation.log(item.id)] == ["approve", "queued"]


def test_honeypot_discards_quietly_and_counts(fb: FeedbackService) -> None:
    result = fb.post_comment(draft("spam spam", honeypot="http://spam.example"), browser(1))
    assert (result.status, result.comment) == ("pending", None)
    fb.post_comment(draft("more", honeypot="x"), browser(2))
    assert fb.stats()["honeypot"] == 2
    assert fb.moderation.queue()[0] == 0
    with fb.db.read() as conn:
        assert conn.execute(select(tables.comments)).first() is None


# -- abuse limits -------------------------------------------------------------------------------


def test_rate_limit_per_session_is_a_sliding_window(db: Database, clock: Clock) -> None:
    fb = make(db, clock, comment_rate_session=(2, 600))
    post(fb)
    clock.advance(300)
    post(fb)
    with pytest.raises(RateLimited) as err:
        post(fb)
    assert err.value.status == 429 and err.value.retry_after == 300
    post(fb, who=2)  # another browser is not limited
    clock.advance(301)  # the first comment left the window
    post(fb)
    with pytest.raises(RateLimited):
        post(fb)


def test_rate_limit_per_ip_across_processes(db: Database, clock: Clock) -> None:
    first = make(db, clock, comment_rate_ip=(3, 3600))
    second = make(db, clock, comment_rate_ip=(3, 3600))  # another process, same database
    shared = "198.51.100.7"
    for n, fb in enumerate((first, second, first)):
        fb.post_comment(draft(), browser(n, ip=shared))
    with pytest.raises(RateLimited):
        second.post_comment(draft(), browser(9, ip=shared))
    second.post_comment(draft(), browser(9, ip="198.51.100.8"))
    with db.read() as conn:
        keys = conn.execute(select(tables.rate_events.c.key_digest)).scalars().all()
    assert keys and not any(shared in k for k in keys)


def test_votes_and_reports_are_rate_limited(db: Database, clock: Clock) -> None:
    fb = make(db, clock, reaction_rate_session=(2, 3600))
    a, b, c = post(fb, "a"), post(fb, "b"), post(fb, "c")
    fb.votes.vote(a, voter(fb, 5))
    fb.report(b, "spam", None, browser(5))
    assert not fb.votes.vote(a, voter(fb, 5)).recorded  # a repeat is a no-op, not a new action
    with pytest.raises(RateLimited):
        fb.votes.vote(c, voter(fb, 5))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("   \n\t ", "too_short"),
        ("x" * 5001, "too_long"),
        ("see http://a.example http://b.example www.c.example", "too_many_links"),
        ("bell \x07", "control_character"),
        ("spoof \u202e", "control_character"),
        ("half \ud800 surrogate", "invalid_unicode"),
        ("non \uffff char", "invalid_unicode"),
    ],
)
def test_text_limits(fb: FeedbackService, text: str, code: str) -> None:
    with pytest.raises(InvalidFeedback) as err:
        fb.post_comment(draft(text), browser(1))
    assert err.value.code == code


def test_text_is_trimmed_before_counting(db: Database, clock: Clock) -> None:
    fb = make(db, clock)
    long_ok = "  " + "字" * 5000 + "\n\n"
    assert fb.comment(post(fb, long_ok)).text == "字" * 5000
    post(fb, "two links: https://a.example and https://b.example")
    strict = make(db, clock, max_links=0)
    with pytest.raises(InvalidFeedback):
        post(strict, "https://a.example")
    with pytest.raises(InvalidFeedback) as err:
        post(fb, "x", email="not-an-address")
    assert err.value.code == "invalid_email"
    with pytest.raises(InvalidFeedback):
        post(fb, "x", stance="angry")


# -- privacy ------------------------------------------------------------------------------------


def _token(fb: FeedbackService, to: str) -> str:
    [mail] = [m for m in fb.privacy.pending_mail() if m.to == to]
    fb.privacy.mark_sent(mail.id)
    match = re.search(r"/privacy/confirm\?token=([A-Za-z0-9_-]+)", mail.body)
    assert match, mail.body
    return match.group(1)


def test_privacy_export_then_delete(fb: FeedbackService, clock: Clock) -> None:
    mine = post(fb, "my view", name="Chan Tai Man", email="Chan@Example.hk")
    other = post(fb, "a reply by someone else", who=2, parent=mine, email="other@example.hk")
    post(fb, "my second view", email="chan@example.hk", target=Target("area", "mobility"))
    fb.privacy.request_privacy_action("nobody@example.hk", "export")
    assert fb.privacy.pending_mail() == []  # no comments, no mail (same answer to the caller)

    fb.privacy.request_privacy_action("CHAN@example.hk", "export", language="zh-Hant")
    [mail] = fb.privacy.pending_mail()
    assert (
        mail.subject == "智慧城市網站：匯出您的意見" and "/tc/privacy/confirm?token=" in mail.body
    )
    token = _token(fb, "chan@example.hk")
    assert fb.privacy.pending_mail() == []
    exported = fb.privacy.confirm_privacy_action(token)
    assert [c["text"] for c in exported.comments] == ["my view", "my second view"]
    assert exported.comments[0]["email"] == "chan@example.hk"
    with pytest.raises(NotAllowed) as err:
        fb.privacy.confirm_privacy_action(token)
    assert (err.value.code, err.value.status) == ("privacy_token_used", 410)

    fb.privacy.request_privacy_action("chan@example.hk", "delete")
    outcome = fb.privacy.confirm_privacy_action(_token(fb, "chan@example.hk"))
    assert outcome.deleted == 2
    [thread] = fb.comments(MEASURE).threads
    assert (thread.id, thread.state, thread.text, thread.name) == (mine, "deleted", None, None)
    assert thread.replies[0].id == other and thread.replies[0].state == "published"
    assert fb.comments(Target("area", "mobility")).total == 0
    with fb.db.read() as conn:
        rows = conn.execute(select(tables.comments).where(tables.comments.c.id == mine)).one()
        requests = conn.execute(select(tables.privacy_requests.c.email)).scalars().all()
    assert (rows.name, rows.email, rows.text, rows.status) == (
        None,
        None,
        "",
        "deleted_by_author_request",
    )
    assert requests == [None, None]  # the address is forgotten once the request is done
    with pytest.raises(FeedbackNotFound):
        fb.privacy.confirm_privacy_action("not-a-token-at-all")


def test_privacy_tokens_expire(db: Database, clock: Clock) -> None:
    fb = make(db, clock, privacy_token_ttl=3600)
    post(fb, email="a@example.hk")
    fb.privacy.request_privacy_action("a@example.hk", "delete")
    token = _token(fb, "a@example.hk")
    clock.advance(3601)
    with pytest.raises(NotAllowed) as err:
        fb.privacy.confirm_privacy_action(token)
    assert err.value.code == "privacy_token_expired"
    assert fb.comments(MEASURE).threads[0].state == "published"


def test_privacy_requests_are_rate_limited_per_address(db: Database, clock: Clock) -> None:
    fb = make(db, clock, privacy_rate_email=(2, 86400))
    post(fb, email="a@example.hk")
    fb.privacy.request_privacy_action("a@example.hk", "export", ip="192.0.2.1")
    fb.privacy.request_privacy_action("A@example.hk", "export", ip="192.0.2.2")
    with pytest.raises(RateLimited):
        fb.privacy.request_privacy_action("a@example.hk", "export", ip="192.0.2.3")
    with pytest.raises(InvalidFeedback):
        fb.privacy.request_privacy_action("a@example.hk", "publish")
