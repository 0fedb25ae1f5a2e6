"""Signed CSRF tokens for the site's forms (double-submit is not needed: the token is bound
to the session id and signed with the server secret, so it cannot be forged or moved).

A token is ``<issued seconds>.<nonce>.<hmac>``; it verifies for ``max_age`` seconds.
"""

from __future__ import annotations

import hmac
import secrets
import time

from smartcity.portal.feedback.secret import Keyed

DEFAULT_MAX_AGE = 2 * 3600


def mint_csrf_token(keyed: Keyed, session_id: str, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    nonce = secrets.token_urlsafe(12)
    mac = keyed.digest("csrf", f"{session_id}\x00{issued}\x00{nonce}")
    return f"{issued}.{nonce}.{mac}"


def verify_csrf_token(
    keyed: Keyed,
    session_id: str,
    token: str | None,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> bool:
    if not token or len(token) > 200:
        return False
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    issued_raw, nonce, mac = parts
    issued = int(issued_raw)
    current = now if now is not None else time.time()
    if issued > current + 60 or current - issued > max_age:
        return False
    expected = keyed.digest("csrf", f"{session_id}\x00{issued}\x00{nonce}")
    return hmac.compare_digest(expected, mac)
