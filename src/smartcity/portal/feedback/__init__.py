"""Public feedback on the blueprint's measures and areas: comments, votes, reports, moderation,
anti-abuse and privacy requests.

The app builds one ``FeedbackService`` and keeps it at ``app.state.feedback``; the JSON API
(``endpoints``, ``moderation_api``) and the site's HTML forms both call it::

    fb = request.app.state.feedback                         # FeedbackService
    client = Client(ip=request.client.host, session=voter_token_from_signed_cookie,
                    person=fb.account_person(user.id) or a person proven by an e-mail link)

    # reading (public shapes only: PublicComment.to_json() never holds an e-mail)
    page = fb.comments(Target("measure", "mobility-01"), offset=0, limit=20, sort="newest")
    page.threads[0].html, .replies, .can_reply, .state ("published" | "hidden" | "deleted")
    fb.comment(42)                                          # one comment and its replies

    # writing (each raises a FeedbackError subclass with .code, .detail, .status)
    fb.post_comment(CommentDraft(target, text, stance, language, name, email,
                                 parent_id, honeypot=form["website"]), client)
        -> PostResult(status="published", comment) | PostResult(status="pending", None)
    fb.votes.vote(42, client)       -> VoteResult(recorded=False when already voted);
        VoteRefused "vote_needs_person" without client.person, "own_comment" for one's own
    fb.votes.request_by_email(42, email, client, language="en")   # queues a link, or says
        this browser voted already; fb.votes.confirm(token) -> VoteConfirmed(vote, target,
        person): the link is <public_url>/<en|tc|sc>/votes/confirm?token=... (a button POSTs)
    fb.report(42, "spam", None, client) -> ReportResult
    fb.validate(draft)              # the same checks, without storing (form re-display)

    # forms
    token = fb.mint_csrf(session_id); fb.verify_csrf(session_id, token) -> bool
    render_comment_html(text)       # sanitize.py: escaped, linkified, nh3-cleaned

    # moderators (actor: the logged-in user's name, written to the log)
    fb.moderation.queue(offset=0, limit=50) -> (total, [ModerationItem])
    fb.moderation.hide(42, actor, reason) / .restore(...) / .approve(...)
    fb.moderation.answer(42, actor, text, {"en": .., "zh-Hant": .., "zh-Hans": ..})
    fb.moderation.log(42)

    # privacy (notice.PRIVACY_NOTICE[lang] is the text to show)
    fb.privacy.request_privacy_action(email, "export" | "delete", language="en", ip=...)
    fb.privacy.confirm_privacy_action(token) -> PrivacyOutcome (export data | deleted count)
        the e-mailed link is <public_url>/<en|tc|sc>/privacy/confirm?token=...: that page must
        show a button that POSTs the token (never act on GET: mail scanners open links)

Error codes the site should translate (``FeedbackError.code``): invalid_target, unknown_target,
too_short, too_long, too_many_links, control_character, invalid_unicode, invalid_email,
invalid_stance, invalid_language, reply_too_deep, unknown_parent, parent_elsewhere,
unknown_comment, voter_token_required, vote_needs_person, own_comment, vote_token_unknown,
vote_token_used, vote_token_expired, invalid_reason, detail_required, rate_limited
(``.retry_after`` seconds), privacy_token_unknown, privacy_token_used, privacy_token_expired.
"""
