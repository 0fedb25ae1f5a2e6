"""Fetching a remote @context document over HTTP, with the limits that keep a hostile or dead
context server from hurting the hub (the caching around it is ``hub.contexts``).

* Every connection goes through the outbound guard (``hub.outbound``), redirects included:
  they are followed here, at most ``MAX_REDIRECTS`` hops, each hop a new checked connection.
* A fetch has a hard deadline (``timeout``, name resolution and redirects included) and a
  size cap.
* Request handlers fetch asynchronously (``fetch_async``) so that a context server that never
  answers holds up only the requests that need its context, never the event loop. At most
  ``concurrency`` fetches run at once on an event loop, at most ``per_host`` to one host; a
  request that cannot get a slot within ``timeout`` gets 503 rather than queueing
  indefinitely behind the slow ones.
* Threads (notifiers, the CLI, device ingestion) fetch with ``fetch``, synchronously.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson

from smartcity.hub import outbound
from smartcity.hub.errors import BadRequestData, LdContextNotAvailable

ACCEPT = {"Accept": "application/ld+json, application/json"}
MAX_REDIRECTS = 3
HINT = "Preload it with `smartcity contexts add URL FILE` to work offline."


class FetchesBusy(LdContextNotAvailable):
    """No fetch slot came free in time: the hub is busy, the URL may be fine (so this is
    not remembered as the URL's failure)."""


def check_context_url(url: str) -> httpx.URL:
    """``url`` parsed as the HTTP client will parse it; a 400 when it cannot be fetched."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BadRequestData(f"@context URL {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequestData(f"@context URL {url!r} is not an http(s) URL")
    return parsed


class _Body:
    """The downloaded bytes, refused as soon as they pass the size cap."""

    def __init__(self, url: str, max_bytes: int) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise LdContextNotAvailable(
                f"@context {self.url} is larger than {self.max_bytes} bytes"
            )
        self.chunks.append(chunk)

    def document(self) -> Any:
        try:
            doc = orjson.loads(b"".join(self.chunks))
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {self.url} is not valid JSON") from exc
        if not isinstance(doc, dict) or "@context" not in doc:
            raise LdContextNotAvailable(f"@context {self.url} is not a JSON-LD context document")
        return doc


def _check_status(url: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        raise LdContextNotAvailable(f"@context {url} answered HTTP {response.status_code}. {HINT}")


def _failure(url: str, current: httpx.URL, exc: httpx.HTTPError) -> Exception:
    refused = outbound.refusal_in(exc)
    if refused is not None:
        hop = "" if str(current) == url else f" (redirected to {current})"
        return BadRequestData(f"@context URL {url}{hop} cannot be fetched: {refused}")
    return LdContextNotAvailable(
        f"@context {url} could not be fetched ({type(exc).__name__}). {HINT}"
    )


def _too_many_redirects(url: str) -> LdContextNotAvailable:
    return LdContextNotAvailable(f"@context {url} redirects more than {MAX_REDIRECTS} times")


@dataclass
class _Host:
    slots: asyncio.Semaphore
    users: int = 0


class _Admission:
    """The fetch slots of one event loop (asyncio semaphores belong to the loop they wait on;
    the server has one loop, tests may run several)."""

    def __init__(self, concurrency: int, per_host: int) -> None:
        self.total = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.per_host = per_host
        self.hosts: dict[str, _Host] = {}

    @asynccontextmanager
    async def slot(self, url: str, host: str, wait: float) -> AsyncIterator[None]:
        entry = self.hosts.get(host)
        if entry is None:
            entry = self.hosts[host] = _Host(asyncio.Semaphore(self.per_host))
        entry.users += 1
        held: list[asyncio.Semaphore] = []
        try:
            try:
                async with asyncio.timeout(wait):
                    for semaphore in (entry.slots, self.total):
                        await semaphore.acquire()
                        held.append(semaphore)
            except TimeoutError:
                raise FetchesBusy(
                    f"@context {url} cannot be fetched now: the hub fetches at most "
                    f"{self.per_host} contexts from one host and {self.concurrency} in all at "
                    f"once, and none of them finished in time. Try again shortly. {HINT}"
                ) from None
            yield
        finally:
            for semaphore in held:
                semaphore.release()
            entry.users -= 1
            if entry.users == 0:  # forget hosts nobody waits for: the map stays small
                del self.hosts[host]


class ContextFetcher:
    def __init__(
        self,
        guard: outbound.TargetGuard,
        *,
        timeout: float = 3.0,
        max_bytes: int = 512 * 1024,
        concurrency: int = 8,
        per_host: int = 2,
    ) -> None:
        self.guard = guard
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self.per_host = per_host
        self._admissions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Admission] = (
            weakref.WeakKeyDictionary()
        )

    def fetch(self, url: str) -> Any:
        """The document at ``url``, from a thread (blocks for at most about ``timeout``)."""
        current = check_context_url(url)
        body = _Body(url, self.max_bytes)
        deadline = time.monotonic() + self.timeout
        try:
            with outbound.http_client(self.guard, timeout=self.timeout) as client:
                request = client.build_request("GET", current, headers=ACCEPT)
                for _ in range(MAX_REDIRECTS + 1):
                    current = request.url
                    response = client.send(request, stream=True)
                    try:
                        if response.next_request is not None:
                            request = response.next_request
                            continue
                        _check_status(url, response)
                        for chunk in response.iter_bytes():
                            body.add(chunk)
                            if time.monotonic() > deadline:
                                raise LdContextNotAvailable(
                                    f"@context {url} took too long to download"
                                )
                        return body.document()
                    finally:
                        response.close()
        except httpx.HTTPError as exc:
            raise _failure(url, current, exc) from exc
        raise _too_many_redirects(url)

    async def fetch_async(self, url: str) -> Any:
        """The document at ``url``, for a request handler: waits on the event loop without
        blocking it, at most about twice ``timeout`` (a slot, then the fetch)."""
        current = check_context_url(url)
        loop = asyncio.get_running_loop()
        admission = self._admissions.get(loop)
        if admission is None:
            admission = self._admissions[loop] = _Admission(self.concurrency, self.per_host)
        async with admission.slot(url, current.host, self.timeout):
            try:
                with anyio.fail_after(self.timeout):
                    return await self._download(url, current)
            except TimeoutError:
                raise LdContextNotAvailable(
                    f"@context {url} did not arrive within {self.timeout:g} s. {HINT}"
                ) from None

    async def _download(self, url: str, current: httpx.URL) -> Any:
        body = _Body(url, self.max_bytes)
        try:
            async with outbound.async_http_client(self.guard, timeout=self.timeout) as client:
                request = client.build_request("GET", current, headers=ACCEPT)
                for _ in range(MAX_REDIRECTS + 1):
                    current = request.url
                    response = await client.send(request, stream=True)
                    try:
                        if response.next_request is not None:
                            request = response.next_request
                            continue
                        _check_status(url, response)
                        async for chunk in response.aiter_bytes():
                            body.add(chunk)
                        return body.document()
                    finally:
                        await response.aclose()
        except httpx.HTTPError as exc:
            raise _failure(url, current, exc) from exc
        raise _too_many_redirects(url)
