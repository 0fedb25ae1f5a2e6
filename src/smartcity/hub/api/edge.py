"""The edge of the one app: what every HTTP request passes before any route (or the lean path,
hub/api/hot.py) sees it. ``smartcity.app.CityApp`` calls ``Edge.admit`` first.

* The path and the query string, percent-decoded, must be UTF-8 without U+0000; the path also
  without other control characters (ids travel in it, and from it into headers and storage;
  hub/text.py says why).
* The body may hold at most the route's limit (``BodyLimits``): a larger Content-Length is
  refused before a byte of the body is read, a chunked body while it streams, after at most the
  limit (plus one network read). An admitted body is handed to the app whole, as one message.
* A refusal is a ProblemDetails answer (413 or 400) with ``Connection: close``. When the client
  may still be sending, the rest of its body is read and discarded, up to ``Linger``'s bounds
  in bytes and seconds, before the connection closes: closing with unread data would make the
  kernel reset the connection, and a client still sending would see the reset instead of the
  answer (nginx's "lingering close"). Memory stays flat: each read is dropped at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import Message, Receive, Scope, Send

from smartcity.hub.errors import BadRequestData, NgsiError, PayloadTooLarge
from smartcity.hub.text import NUL_HINT, id_problem


@dataclass(frozen=True)
class Linger:
    """How much of a refused body is read and discarded before the connection is closed."""

    max_bytes: int = 512 * 1024 * 1024
    max_seconds: float = 10.0
    idle_seconds: float = 2.0  # a client that stops sending is not waited for longer


@dataclass(frozen=True)
class Refusal:
    """A refusal as written to the client: status, body and headers (Content-Length and
    ``Connection: close`` are the edge's)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)


# How a route's clients expect a refusal written, given the problem and the route's limit.
Answer = Callable[[NgsiError, Scope, int], Refusal]


@dataclass(frozen=True)
class BodyRule:
    """What the edge admits on a route."""

    limit: int
    # The route reads its body as a stream and enforces ``limit`` itself as it goes (file
    # uploads, which may be large): the edge refuses only a declared Content-Length over the
    # limit and keeps nothing in memory.
    streamed: bool = False
    # How a refusal is written for this route (default: NGSI-LD ProblemDetails).
    answer: Answer | None = None


class BodyLimits:
    """The rule per route: the first pattern that matches the path wins."""

    def __init__(
        self, routes: Sequence[tuple[str, int | BodyRule]], default: int | BodyRule
    ) -> None:
        self.routes = [
            (re.compile(pattern), rule if isinstance(rule, BodyRule) else BodyRule(rule))
            for pattern, rule in routes
        ]
        self.default = default if isinstance(default, BodyRule) else BodyRule(default)

    def for_path(self, path: str) -> BodyRule:
        for pattern, rule in self.routes:
            if pattern.match(path):
                return rule
        return self.default


def request_line_problem(scope: Scope) -> str | None:
    """Why the path or query string cannot be admitted, or None."""
    raw = scope.get("raw_path") or scope["path"].encode()
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "the path is not UTF-8 once percent-decoded"
    problem = id_problem(path)
    if problem is not None:
        return f"the path {problem}"
    query: bytes = scope.get("query_string", b"")
    if query:
        decoded = unquote_to_bytes(query)
        if b"\x00" in decoded:
            return f"the query string holds {NUL_HINT}"
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return "the query string is not UTF-8 once percent-decoded"
    return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class Edge:
    def __init__(self, limits: BodyLimits, linger: Linger | None = None) -> None:
        self.limits = limits
        self.linger = linger or Linger()

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The receive to hand to the app, or None when the edge has answered (refused)."""
        declared = _header(scope, b"content-length")
        chunked = b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()
        length = int(declared) if declared is not None and declared.isdigit() else None
        has_body = chunked or bool(length)
        # A client that asked "Expect: 100-continue" sends no body until told to; reading
        # (receive) would tell it to, so a refusal before reading leaves it unread.
        waiting = (_header(scope, b"expect") or b"").lower() == b"100-continue"
        pending = has_body and not waiting
        rule = self.limits.for_path(scope["path"])
        problem = request_line_problem(scope)
        if problem is not None:
            await self.refuse(BadRequestData(problem), scope, receive, send, pending=pending)
            return None
        if not has_body:
            return receive
        limit = rule.limit
        too_large = PayloadTooLarge(
            f"the request body is larger than {limit} bytes, the limit of {scope['path']}; "
            "send less (split batches)",
            code="body_too_large",  # the feedback API's error code (docs/portal.md)
        )
        if length is not None and length > limit:
            await self.refuse(too_large, scope, receive, send, pending=pending)
            return None
        if rule.streamed:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client went away: there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                more = bool(message.get("more_body", False))
                await self.refuse(too_large, scope, receive, send, pending=more)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return _replay(b"".join(chunks), receive)

    async def refuse(
        self, exc: NgsiError, scope: Scope, receive: Receive, send: Send, *, pending: bool
    ) -> None:
        """Answer ``exc`` and close; first discard what the client is still sending."""
        rule = self.limits.for_path(scope["path"])
        if rule.answer is not None:
            refusal = rule.answer(exc, scope, rule.limit)
        else:
            refusal = Refusal(exc.status, orjson.dumps(exc.problem()))
        payload = refusal.body
        headers = [
            *refusal.headers,
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        # The whole answer goes out now; the response ends (and the server closes the
        # connection) only after the discarding.
        await send({"type": "http.response.body", "body": payload, "more_body": pending})
        if pending:
            await self.discard(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def discard(self, receive: Receive) -> int:
        """Read and drop the rest of a body, within the linger bounds; the bytes dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger.max_seconds
        dropped = 0
        while dropped <= self.linger.max_bytes:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                message = await asyncio.wait_for(receive(), min(left, self.linger.idle_seconds))
            except TimeoutError:
                break
            if message["type"] != "http.request":
                break
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return dropped


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the admitted body as one message, then defers to the
    server's (which reports the disconnect the app may wait for)."""
    first: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if first:
            return first.pop()
        return await receive()

    return replayed
