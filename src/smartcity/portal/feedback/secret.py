"""The server secret: keys the hashes of voter tokens and addresses, and signs CSRF tokens.

Read from ``SMARTCITY_SECRET`` (settings) or ``$SMARTCITY_HOME/secret``; created once, mode
0600, if neither exists. Every process of one installation must share it (same home or env),
otherwise a vote counted by one process is not recognised by another.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from smartcity.config import smartcity_home


def load_or_create_secret(home: Path | None = None) -> str:
    path = (home or smartcity_home()) / "secret"
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: link() fails if another process
    # got there first, so concurrent first starts all end up with the same secret.
    tmp = path.with_name(f".secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


class Keyed:
    """HMAC-SHA256 under the server secret, one purpose label per kind of value."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret must be at least 16 characters")
        self._key = secret.encode()

    def digest(self, purpose: str, value: str) -> str:
        msg = f"{purpose}\x00{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def sign(self, message: str) -> str:
        return self.digest("sign", message)
