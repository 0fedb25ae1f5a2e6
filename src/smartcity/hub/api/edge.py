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


class BodyLimits:
    """The largest request body per route: the first pattern that matches the path wins."""

    def __init__(self, routes: Sequence[tuple[str, int]], default: int) -> None:
        self.routes = [(re.compile(pattern), limit) for pattern, limit in routes]
        self.default = default

    def for_path(self, path: str) -> int:
        for pattern, limit in self.routes:
            if pattern.match(path):
                return limit
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


# How a path's clients read errors, when not as NGSI-LD ProblemDetails: (scope, error) →
# (status, JSON body), or None for ProblemDetails. The app gives one for CKAN's paths, whose
# clients (ckanapi) read errors only in CKAN's envelope.
Renderer = Callable[[Scope, NgsiError], tuple[int, bytes] | None]


class Edge:
    def __init__(
        self, limits: BodyLimits, linger: Linger | None = None, render: Renderer | None = None
    ) -> None:
        self.limits = limits
        self.linger = linger or Linger()
        self.render = render

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
        problem = request_line_problem(scope)
        if problem is not None:
            await self.refuse(BadRequestData(problem), receive, send, pending=pending, scope=scope)
            return None
        if not has_body:
            return receive
        limit = self.limits.for_path(scope["path"])
        too_large = PayloadTooLarge(
            f"the request body is larger than {limit} bytes, the limit of {scope['path']}; "
            "send less (split batches)",
            code="body_too_large",  # the feedback API's error code (docs/portal.md)
        )
        if length is not None and length > limit:
            await self.refuse(too_large, receive, send, pending=pending, scope=scope)
            return None
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
                await self.refuse(too_large, receive, send, pending=more, scope=scope)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return _replay(b"".join(chunks), receive)

    async def refuse(
        self,
        exc: NgsiError,
        receive: Receive,
        send: Send,
        *,
        pending: bool,
        scope: Scope | None = None,
    ) -> None:
        """Answer ``exc`` and close; first discard what the client is still sending."""
        rendered = self.render(scope, exc) if self.render and scope is not None else None
        status, payload = rendered or (exc.status, orjson.dumps(exc.problem()))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
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
