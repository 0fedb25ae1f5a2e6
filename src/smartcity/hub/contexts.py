"""Where @context documents come from: built in, preloaded, hosted, or fetched (carefully).

Peers crash or hang on unreachable remote contexts; here a fetch has a hard timeout and size
limit, concurrent requests for the same URL share one fetch, results are cached in memory and
in the database (so a restart does not refetch), and a failure is cached for a short while so
that a dead context server cannot tie up the hub's workers. ``smartcity contexts add`` stores
a context ahead of time so the hub works fully offline.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import or_, select

from smartcity.hub.errors import BadRequestData, LdContextNotAvailable
from smartcity.hub.jsonld import ActiveContext, process_context
from smartcity.storage import schema
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
FAILURE_TTL = 30.0
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


def _no_remote(url: str) -> Any:
    raise BadRequestData(f"the core @context cannot load {url}")


def is_private_host(host: str) -> bool:
    """True if ``host`` is, or resolves to, a loopback, private, link-local or reserved address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved:
            return True
    return False


class ContextStore:
    """Resolves @context URLs to documents and context lists to cached ActiveContexts."""

    def __init__(
        self,
        db: Database | None,
        *,
        timeout: float = 3.0,
        max_bytes: int = 512 * 1024,
        forbid_private: bool = False,
    ) -> None:
        self.db = db
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.forbid_private = forbid_private
        self._documents: dict[str, Any] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._active: OrderedDict[str, ActiveContext] = OrderedDict()

    # -- documents ---------------------------------------------------------------------------
    def load(self, url: str) -> Any:
        if url in CORE_ALIASES:
            return core_document()
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
                doc = self._fetch(url)
                self._store(url, doc, "cached")
            self._documents[url] = doc
            return doc

    def _load_stored(self, url: str) -> Any:
        if self.db is None:
            return None
        with self.db.read() as conn:
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

    def _fetch(self, url: str) -> Any:
        failed = self._failures.get(url)
        if failed and time.monotonic() - failed[0] < FAILURE_TTL:
            raise LdContextNotAvailable(failed[1])
        try:
            doc = self._fetch_uncached(url)
        except LdContextNotAvailable as exc:
            self._failures[url] = (time.monotonic(), exc.detail)
            raise
        self._failures.pop(url, None)
        return doc

    def _fetch_uncached(self, url: str) -> Any:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequestData(f"@context URL {url!r} is not an http(s) URL")
        if self.forbid_private and is_private_host(parts.hostname):
            raise BadRequestData(
                f"@context URL {url} points to a private or loopback address, which this hub "
                "is configured to refuse (SMARTCITY_FORBID_PRIVATE_TARGETS)"
            )
        hint = "Preload it with `smartcity contexts add URL FILE` to work offline."
        try:
            with (
                httpx.Client(timeout=self.timeout, follow_redirects=True) as client,
                client.stream(
                    "GET", url, headers={"Accept": "application/ld+json, application/json"}
                ) as response,
            ):
                if response.status_code != 200:
                    raise LdContextNotAvailable(
                        f"@context {url} answered HTTP {response.status_code}. {hint}"
                    )
                chunks: list[bytes] = []
                size = 0
                deadline = time.monotonic() + self.timeout
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise LdContextNotAvailable(
                            f"@context {url} is larger than {self.max_bytes} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise LdContextNotAvailable(f"@context {url} took too long to download")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(
                f"@context {url} could not be fetched ({type(exc).__name__}). {hint}"
            ) from exc
        try:
            doc = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {url} is not valid JSON") from exc
        if not isinstance(doc, dict) or "@context" not in doc:
            raise LdContextNotAvailable(f"@context {url} is not a JSON-LD context document")
        return doc

    # -- active contexts ---------------------------------------------------------------------
    def active(self, context: Any) -> ActiveContext:
        """The active context for a user @context (None = core only). The core is applied last,
        so core terms always keep their meaning (the core context is @protected)."""
        if context is None or context == [] or context == CORE_CONTEXT_URL:
            return core_context()
        key = context if isinstance(context, str) else orjson.dumps(context).decode()
        hit = self._active.get(key)
        if hit is not None:
            self._active.move_to_end(key)
            return hit
        user = process_context(ActiveContext(), context, self.load)
        merged = user.copy()
        core = core_context()
        merged.terms.update(core.terms)
        if merged.vocab is None:
            merged.vocab = core.vocab
        self._active[key] = merged
        if len(self._active) > 512:
            self._active.popitem(last=False)
        return merged
