"""Which requests' reads may go to a read replica, and read-your-writes across replicas.

The app (``smartcity.app.CityApp``) hands every HTTP request here first when the database has
replicas (``serve --read-database``). A request matching one of the app's ``LagRule``s (entity
queries and retrieval, temporal queries, open data reads, analytics) runs with its reads
declared lag-tolerant (storage/replicas.py), and storage sends them to a healthy replica. Every
other request reads from the primary, and every write goes there.

Read-your-writes: a write's response carries the primary's WAL position after the write, in a
``Smartcity-LSN`` header and a cookie that lives ``COOKIE_SECONDS``; a read that brings it back
(header or cookie) goes to a replica only once that replica has replayed up to it, else to the
primary. The cookie serves browsers and any client keeping cookies; others send the header.
Eight seconds outlast the lag bound a replica is allowed (5 s by default): after that a replica
in use has replayed the write anyway.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from smartcity.storage import replicas
from smartcity.storage.engine import Database

LSN_HEADER = "Smartcity-LSN"
LSN_COOKIE = "smartcity_lsn"
COOKIE_SECONDS = 8
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class LagRule:
    """Requests whose reads tolerate a replica's short lag: ``methods`` on paths matching
    ``pattern`` and, when given, accepted by ``accept(path)`` (CKAN: a read-only action)."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] | None = None

    @classmethod
    def of(cls, methods: str, pattern: str, accept: Callable[[str], bool] | None = None) -> LagRule:
        return cls(frozenset(methods.split()), re.compile(pattern), accept)

    def matches(self, method: str, path: str) -> bool:
        return (
            method in self.methods
            and self.pattern.match(path) is not None
            and (self.accept is None or self.accept(path))
        )


class ReadRouting:
    def __init__(self, db: Database, rules: Sequence[LagRule]) -> None:
        self.db = db
        self.rules = tuple(rules)

    def lag_tolerant(self, method: str, path: str) -> bool:
        return any(rule.matches(method, path) for rule in self.rules)

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
    ) -> None:
        method = scope["method"]
        if self.lag_tolerant(method, scope["path"]):
            # The context variable follows the request into the thread pool (anyio copies
            # the context), so every read it makes, wherever made, sees the declaration.
            with replicas.lag_tolerant(client_lsn(scope)):
                await app(scope, receive, send)
            return
        if method in SAFE_METHODS:
            await app(scope, receive, send)
            return
        await app(scope, receive, self._with_position(scope, send))

    def _with_position(self, scope: Scope, send: Send) -> Send:
        """``send`` adding the primary's WAL position to the response's head. The head is sent
        once the endpoint has finished, so the write has committed and the position read now is
        at or past its commit record (group commit included: whoever committed it, it is done)."""
        secure = scope.get("scheme") == "https"

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 500:
                try:
                    lsn = await run_in_threadpool(self.db.current_lsn)
                except Exception:  # the primary went away after answering: no promise to give
                    lsn = None
                if lsn:
                    cookie = (
                        f"{LSN_COOKIE}={lsn}; Max-Age={COOKIE_SECONDS}; Path=/; HttpOnly; "
                        "SameSite=Lax" + ("; Secure" if secure else "")
                    )
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", []),
                            (LSN_HEADER.lower().encode(), lsn.encode()),
                            (b"set-cookie", cookie.encode()),
                        ],
                    }
            await send(message)

        return send_with_position


def client_lsn(scope: Scope) -> int:
    """The furthest WAL position the client brought back (header or cookie); 0 for none."""
    best = 0
    for name, value in scope.get("headers", ()):
        if name == b"smartcity-lsn":
            best = max(best, replicas.parse_lsn(value.decode("latin-1")) or 0)
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, raw = part.strip().partition("=")
                if key == LSN_COOKIE:
                    best = max(best, replicas.parse_lsn(raw) or 0)
    return best
