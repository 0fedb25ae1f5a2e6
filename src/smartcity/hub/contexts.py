"""Where @context documents come from: built in, preloaded, hosted, or fetched (carefully).

Peers crash or hang on unreachable remote contexts; here a fetch has a hard timeout and size
limit and goes through the outbound guard (``hub.context_fetch``), concurrent requests for the
same URL share one fetch, results are cached in memory and in the database (so a restart does
not refetch), and a failure is cached for a short while so that a dead context server cannot
tie up the hub's workers. ``smartcity contexts add`` stores a context ahead of time so the hub
works fully offline.

Request handlers use ``active_async``: the remote documents a context names (nested ones
included) are fetched asynchronously first, then the context is processed from memory, so a
slow context server never blocks the event loop. Threads use ``active``, which fetches
synchronously.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import anyio
import orjson
from sqlalchemy import or_, select

from smartcity.hub.context_fetch import ContextFetcher, FetchesBusy
from smartcity.hub.errors import BadRequestData, NgsiError
from smartcity.hub.jsonld import ActiveContext, process_context
from smartcity.hub.outbound import TargetGuard
from smartcity.hub.text import refuse_unstorable
from smartcity.storage import replicas, schema
from smartcity.storage.engine import Database

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
# Every published core context URL resolves to the built-in one: the core is never fetched.
CORE_ALIASES = frozenset(
    {
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        *(f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{n}.jsonld" for n in range(10)),
        *(
            f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{n}.1.jsonld"
            for n in range(10)
        ),
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
    }
)
# The platform's own "city" context: the short names of the Smart Data Models types and
# attributes the platform writes (and the few Hong Kong terms with no model), mapped to their
# IRIs. Built in like the core context: any URL whose path is CITY_CONTEXT_PATH, on any host
# name, resolves to it, so it works offline and is never fetched (docs/hub.md).
CITY_CONTEXT_ID = "smartcity-context.jsonld"
CITY_CONTEXT_PATH = "/ngsi-ld/v1/jsonldContexts/" + CITY_CONTEXT_ID
CITY_CONTEXT_URL = "http://localhost" + CITY_CONTEXT_PATH  # how in-process writers name it
FAILURE_TTL = 30.0
# How many remote documents one @context may bring in beyond those already cached.
MAX_NEW_DOCUMENTS = 32
_HOSTED_PATH = re.compile(r"/ngsi-ld/v1/jsonldContexts/(urn:ngsi-ld:context:[0-9a-f-]{36})$")


def _hosted_id(url: str) -> str | None:
    match = _HOSTED_PATH.search(url)
    return match.group(1) if match else None


def context_key(url: str) -> str:
    """The id under which a cached (not hosted) context is listed in /jsonldContexts."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


@cache
def core_document() -> dict[str, Any]:
    raw = resources.files("smartcity.hub") / "contexts" / "ngsi-ld-core-context-v1.8.jsonld"
    return json.loads(raw.read_text(encoding="utf-8"))


@cache
def core_context() -> ActiveContext:
    return process_context(ActiveContext(), core_document()["@context"], _no_remote)


@cache
def city_document() -> dict[str, Any]:
    raw = resources.files("smartcity.hub") / "contexts" / CITY_CONTEXT_ID
    return json.loads(raw.read_text(encoding="utf-8"))


@cache
def city_context() -> ActiveContext:
    """The city context as a request sending it in its Link header gets it (core applied last)."""
    return ContextStore(None).active(CITY_CONTEXT_URL)


def city_terms() -> dict[str, str]:
    """Short name -> IRI of every term of the city context."""
    return dict(city_document()["@context"])


def _built_in(url: str) -> dict[str, Any] | None:
    """The core or the city context if ``url`` names one of them (never fetched), else None."""
    if url in CORE_ALIASES:
        return core_document()
    try:
        path = urlsplit(url).path
    except ValueError:  # not a URL at all: the fetch path says why
        return None
    return city_document() if path == CITY_CONTEXT_PATH else None


def _no_remote(url: str) -> Any:
    raise BadRequestData(f"the core @context cannot load {url}")


class _NotLoaded(Exception):
    """The document at ``url`` is not in memory yet (the async path fetches it, then retries)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class ContextStore:
    """Resolves @context URLs to documents and context lists to cached ActiveContexts."""

    def __init__(
        self,
        db: Database | None,
        *,
        timeout: float = 3.0,
        max_bytes: int = 512 * 1024,
        forbid_private: bool = False,
        concurrency: int = 8,
        per_host: int = 2,
    ) -> None:
        self.db = db
        self.fetcher = ContextFetcher(
            TargetGuard(forbid_private),
            timeout=timeout,
            max_bytes=max_bytes,
            concurrency=concurrency,
            per_host=per_host,
        )
        self._documents: dict[str, Any] = {}
        self._failures: dict[str, tuple[float, NgsiError]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._active: OrderedDict[str, ActiveContext] = OrderedDict()
        # Fetches under way, per event loop: concurrent requests for one URL share one.
        self._pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[None]]
        ] = weakref.WeakKeyDictionary()

    # -- documents ---------------------------------------------------------------------------
    def load(self, url: str) -> Any:
        """The document at ``url``, fetched if need be (blocking: threads only)."""
        built_in = _built_in(url)
        if built_in is not None:
            return built_in
        hosted = _hosted_id(url)
        if hosted is not None:
            # A context this hub hosts (POST /jsonldContexts): served from the store, whatever
            # host name the client used to reach us, and never fetched over HTTP.
            doc = self._documents.get(hosted) or self._load_stored(hosted)
            if doc is not None:
                self._documents[hosted] = doc
                return doc
        doc = self._documents.get(url)
        if doc is not None:
            return doc
        with self._guard:
            lock = self._locks.setdefault(url, threading.Lock())
        with lock:
            doc = self._documents.get(url)
            if doc is not None:
                return doc
            doc = self._load_stored(url)
            if doc is None:
                self._raise_if_failed(url)
                doc = self._remembering(url, lambda: self.fetcher.fetch(url))
                self._store(url, doc, "cached")
            self._documents[url] = doc
            return doc

    def _in_memory(self, url: str) -> Any:
        """``load`` without I/O: the async path's loader (raises _NotLoaded)."""
        built_in = _built_in(url)
        if built_in is not None:
            return built_in
        hosted = _hosted_id(url)
        doc = self._documents.get(hosted) if hosted is not None else None
        if doc is None:
            doc = self._documents.get(url)
        if doc is not None:
            return doc
        self._raise_if_failed(url)
        raise _NotLoaded(url)

    async def _obtain(self, url: str) -> None:
        """Bring the document at ``url`` into memory without blocking the event loop."""
        hosted = _hosted_id(url)
        if hosted is not None:
            doc = await anyio.to_thread.run_sync(self._load_stored, hosted)
            if doc is not None:
                self._documents[hosted] = doc
                return
        pending = self._pending.setdefault(asyncio.get_running_loop(), {})
        shared = pending.get(url)
        if shared is None:
            shared = pending[url] = asyncio.ensure_future(self._obtain_remote(url))
            shared.add_done_callback(lambda _: pending.pop(url, None))
        # Shielded: a client that goes away cancels its wait, not the others' fetch.
        await asyncio.shield(shared)

    async def _obtain_remote(self, url: str) -> None:
        doc = await anyio.to_thread.run_sync(self._load_stored, url)
        if doc is None:
            self._raise_if_failed(url)
            try:
                doc = await self.fetcher.fetch_async(url)
            except FetchesBusy:
                raise  # the hub was busy; the URL may be fine
            except NgsiError as exc:
                self._failures[url] = (time.monotonic(), exc)
                raise
            self._failures.pop(url, None)
            await anyio.to_thread.run_sync(self._store, url, doc, "cached")
        self._documents[url] = doc

    def _raise_if_failed(self, url: str) -> None:
        failed = self._failures.get(url)
        if failed and time.monotonic() - failed[0] < FAILURE_TTL:
            error = failed[1]
            raise type(error)(error.detail)

    def _remembering(self, url: str, fetch: Callable[[], Any]) -> Any:
        try:
            doc = fetch()
        except NgsiError as exc:
            self._failures[url] = (time.monotonic(), exc)
            raise
        self._failures.pop(url, None)
        return doc

    def _load_stored(self, url: str) -> Any:
        if self.db is None:
            return None
        # On the primary even in a request whose reads may lag (storage/replicas.py): a
        # context hosted a moment ago must expand at once, and it is cached once loaded.
        with replicas.primary_only(), self.db.read() as conn:
            body = conn.execute(
                select(schema.jsonld_contexts.c.body).where(schema.jsonld_contexts.c.url == url)
            ).scalar()
        return orjson.loads(body) if body is not None else None

    def _store(self, url: str, doc: Any, kind: str, tenant: str = "") -> None:
        if self.db is None:
            return
        body = orjson.dumps(doc).decode()
        table = schema.jsonld_contexts
        with self.db.write() as conn:
            conn.execute(table.delete().where(table.c.url == url))
            conn.execute(
                table.insert().values(
                    url=url,
                    body=body,
                    kind=kind,
                    created_at=int(time.time() * 1e6),
                    tenant=tenant,
                )
            )

    def add(self, url: str, document: Any, kind: str = "preloaded", tenant: str = "") -> None:
        """Store a context document under its URL (``smartcity contexts add``)."""
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("a context document must be a JSON object with an @context member")
        refuse_unstorable(document, "the context document")  # a file, not only a request body
        process_context(ActiveContext(), document["@context"], self.load)  # validate
        self._store(url, document, kind, tenant)
        self._documents[url] = document
        self._active.clear()

    # -- the /jsonldContexts API (clause 5.13) ------------------------------------------------
    # A hosted context belongs to the tenant that hosted it: only that tenant lists, serves
    # and deletes it. Cached and preloaded contexts are copies of documents published
    # elsewhere, shared by every tenant (tenant ''). Expanding a request's @context resolves
    # a hosted context's URL whatever the tenant, as a URL on another server would resolve.
    def host(self, document: Any, tenant: str = "") -> str:
        """Store a context the hub serves itself, in ``tenant``; returns its id."""
        context_id = f"urn:ngsi-ld:context:{uuid.uuid4()}"
        self.add(context_id, document, kind="hosted", tenant=tenant)
        return context_id

    def entries(self, tenant: str = "") -> list[dict[str, Any]]:
        """The contexts ``tenant`` sees: its hosted ones and the shared (cached) ones."""
        if self.db is None:
            return []
        table = schema.jsonld_contexts
        mine = or_(table.c.kind != "hosted", table.c.tenant == tenant)
        with self.db.read() as conn:
            rows = conn.execute(select(table).where(mine).order_by(table.c.created_at)).all()
        return [
            {
                "id": row.url if row.kind == "hosted" else context_key(row.url),
                "url": None if row.kind == "hosted" else row.url,
                "kind": "Hosted" if row.kind == "hosted" else "Cached",
                "createdAt": row.created_at,
                "body": row.body,
                "stored": row.url,
            }
            for row in rows
        ]

    def remove(self, stored_url: str) -> None:
        if self.db is None:
            return
        table = schema.jsonld_contexts
        with self.db.write() as conn:
            conn.execute(table.delete().where(table.c.url == stored_url))
        self._documents.pop(stored_url, None)
        self._failures.pop(stored_url, None)
        self._active.clear()

    # -- active contexts ---------------------------------------------------------------------
    def active(self, context: Any) -> ActiveContext:
        """The active context for a user @context (None = core only). The core is applied last,
        so core terms always keep their meaning (the core context is @protected)."""
        if context is None or context == [] or context == CORE_CONTEXT_URL:
            return core_context()
        key = _key(context)
        hit = self._active.get(key)
        if hit is not None:
            self._active.move_to_end(key)
            return hit
        return self._activate(context, key, self.load)

    async def active_async(self, context: Any) -> ActiveContext:
        """``active`` for request handlers: the remote documents the context names are fetched
        first, asynchronously (see ``hub.context_fetch``), so the event loop never waits on
        a context server."""
        if context is None or context == [] or context == CORE_CONTEXT_URL:
            return core_context()
        key = _key(context)
        hit = self._active.get(key)
        if hit is not None:
            self._active.move_to_end(key)
            return hit
        for _ in range(MAX_NEW_DOCUMENTS):
            try:
                return self._activate(context, key, self._in_memory)
            except _NotLoaded as missing:
                await self._obtain(missing.url)
        raise BadRequestData(
            f"the @context names more than {MAX_NEW_DOCUMENTS} remote documents; preload them "
            "with `smartcity contexts add URL FILE`"
        )

    def _activate(self, context: Any, key: str, load: Callable[[str], Any]) -> ActiveContext:
        user = process_context(ActiveContext(), context, load)
        merged = user.copy()
        core = core_context()
        merged.terms.update(core.terms)
        if merged.vocab is None:
            merged.vocab = core.vocab
        self._active[key] = merged
        if len(self._active) > 512:
            self._active.popitem(last=False)
        return merged


def _key(context: Any) -> str:
    return context if isinstance(context, str) else orjson.dumps(context).decode()
