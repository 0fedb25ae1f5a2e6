"""Distributed writes (clauses 4.3.6.2, 4.3.6.3, 5.6 and the 207 answers of the 1.8 OpenAPI):
a write on the hub whose entity matches a registration that offers the write operation is
forwarded to that registration's source.

Who receives what (the registration's ``operations`` must include the operation, e.g. through
``redirectionOps`` or ``updateOps``; the default ``federationOps`` offers no write):

* ``exclusive``: the registered attributes of the registered entities go to the source only;
  the rest of the request stays local.
* ``redirect``: the matching attributes go to the source only; a redirect entry without
  attribute names takes the whole entity, so nothing of it is written locally.
* ``inclusive``: the matching attributes go to the source, and the whole request is also
  written locally.
* ``auxiliary``: never receives a write (clause 4.3.6.2).

When everything the request held went to sources, the local write is skipped (a create whose
only attributes are exclusively registered does not create an empty local entity).

Results: every part that failed, local or remote, is reported in the spec's format: a 207 with
a BatchOperationResult (``errors`` entries with ``entityId``, ``registrationId`` for a source's
part, and a ProblemDetails) for entity-level operations and batches, a 207 with an UpdateResult
(``notUpdated`` entries with ``registrationId``) for attribute operations. A source that is
slow, down, cooling down or refused by the SSRF guard is such a failed part: the hub's own part
is written all the same and the answer comes within the source's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartcity.hub.errors import ERROR_BASE, NgsiError, ResourceNotFound
from smartcity.hub.federation.forwarding import (
    WARNING_HEADER,
    Forwarder,
    api_base,
    host_alias,
    source_headers,
    timeout_of,
    via_names,
    warning_of,
)
from smartcity.hub.federation.matching import offered_names
from smartcity.hub.federation.model import Doc, offers
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.outbound import async_http_client

# Entity members that are not attributes: kept in every part sent to a source.
_MEMBERS = frozenset({"id", "type", "scope", "@context"})
_JSON = "application/json"
# The representations `options` may name (clause 5.5.4), which say how a body is read.
_REPRESENTATIONS = {"keyValues", "simplified", "normalized", "concise"}


@dataclass
class Route:
    """One source's share of one entity: ``names`` (expanded) or None for all of it."""

    registration: Doc
    names: set[str] | None


@dataclass
class Split:
    """How one entity's write is shared out."""

    routes: list[Route] = field(default_factory=list)
    local: bool = True  # whether the hub writes its own part
    taken: set[str] = field(default_factory=set)  # attributes the local part must not hold


@dataclass
class Sent:
    """A source's answer to one forwarded request (status None: no usable answer)."""

    registration: Doc
    status: int | None = None
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def problem(self) -> Doc:
        """The source's ProblemDetails, or one that says why it gave none."""
        if isinstance(self.body, dict) and "type" in self.body and self.status is not None:
            return self.body
        if self.status is not None:
            return _problem("InternalError", self.status, f"the source answered {self.status}")
        if self.error is not None and self.error.startswith("no answer within"):
            return _problem("GatewayTimeout", 504, self.error)
        return _problem("InternalError", 502, self.error or "no answer")


def _problem(kind: str, status: int, detail: str) -> Doc:
    return {"type": ERROR_BASE + kind, "title": kind, "status": status, "detail": detail}


class Writes:
    """One write request's forwarding: which registrations may receive it and how to send."""

    def __init__(self, request: Request, forwarder: Forwarder, tenant: str,
                 docs: list[Doc], operation: str) -> None:  # fmt: skip
        self.request = request
        self.forwarder = forwarder
        self.tenant = tenant
        self.docs = docs
        self.operation = operation
        via = request.headers.get("via", "")
        self.alias = host_alias()
        self.via = f"{via}, 1.1 {self.alias}" if via.strip() else f"1.1 {self.alias}"
        self.link = request.headers.get("link")
        self.content_type = request.headers.get("content-type", _JSON)
        self.params: list[tuple[str, str | int | float | bool | None]] = [
            (k, v) for k, v in request.query_params.multi_items() if k != "local"
        ]
        self.params.append(("local", "true"))

    def already_read(self, names: Iterable[str]) -> None:
        """Send on without the parameters ``names``: they said how to read the body, and
        the body sent on is the hub's reading of it. ``options`` loses only its
        representation values (keyValues, simplified, normalized, concise)."""
        drop = set(names)
        if not drop:
            return
        kept: list[tuple[str, str | int | float | bool | None]] = []
        for key, value in self.params:
            if key == "options" and "options" in drop and isinstance(value, str):
                rest = [o for o in value.split(",") if o.strip() not in _REPRESENTATIONS]
                if rest:
                    kept.append((key, ",".join(rest)))
            elif key not in drop or key == "options":
                kept.append((key, value))
        self.params = kept

    # -- routing -----------------------------------------------------------------------------
    def split(self, entity_id: str, types: Sequence[str] | None, names: set[str]) -> Split:
        """Share out a write of ``names`` (expanded) of one entity whose ``types`` are known
        (or None: unknown). Without names, the write is about the entity itself: a delete
        goes to every registration about the entity, a create or replace without attributes
        only to those that offer all of its attributes."""
        out = Split()
        whole_taken = False
        deleting = self.operation in ("deleteEntity", "deleteBatch")
        for doc in self.docs:
            matched, offered = offered_names(doc, entity_id, types)
            if not matched:
                continue
            forwarded = set(names) if offered is None else names & offered
            if names and not forwarded:
                continue  # the registration is about other attributes of this entity
            if not names and offered is not None and not deleting:
                continue  # an entity without attributes is nothing to a per-attribute source
            out.routes.append(Route(doc, None if offered is None else forwarded))
            mode = doc.get("mode", "inclusive")
            if mode in ("exclusive", "redirect"):
                out.taken |= forwarded
                whole_taken = whole_taken or offered is None
        if out.taken:
            # What an exclusive or redirect source owns goes to it alone, not to the
            # inclusive sources that would take the entity's other attributes.
            kept = []
            for route in out.routes:
                if route.registration.get("mode", "inclusive") in ("exclusive", "redirect"):
                    kept.append(route)
                    continue
                rest = (names if route.names is None else route.names) - out.taken
                if rest:
                    kept.append(Route(route.registration, rest))
            out.routes = kept
        if whole_taken:
            out.local = False
        elif names and out.routes and not names - out.taken:
            out.local = False  # every attribute went to a source: nothing is left to write here
        return out

    # -- sending -----------------------------------------------------------------------------
    async def send_all(self, requests: Sequence[tuple[Doc, str, str, Any]]) -> list[Sent]:
        """Send (registration, method, path, body) requests concurrently."""
        if not requests:
            return []
        async with async_http_client(self.forwarder.guard) as client:
            return list(await asyncio.gather(*(self._send(client, *r) for r in requests)))

    async def _send(
        self, client: httpx.AsyncClient, reg: Doc, method: str, path: str, body: Any
    ) -> Sent:
        if self.forwarder.cooling(self.tenant, reg):
            return Sent(reg, error="not asked: cooling down after a failure")
        timeout = timeout_of(reg)
        headers = source_headers(reg, self.via, self.link)
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = self.content_type
        self.forwarder.health_of(self.tenant, reg["id"]).times_sent += 1
        url = api_base(reg["endpoint"]) + path
        try:
            response = await asyncio.wait_for(
                client.request(method, url, params=self.params, headers=headers,
                               content=content, timeout=timeout),
                timeout,
            )  # fmt: skip
            sent = Sent(reg, status=response.status_code, body=_json_or_none(response))
        except TimeoutError:
            sent = Sent(reg, error=f"no answer within {timeout:g} s")
        except Exception as exc:  # one broken source never fails the hub's write
            sent = Sent(reg, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        # A source's 4xx is an answer about the data (e.g. 409), not a failing source.
        failed = sent.status is None or sent.status >= 500
        self.forwarder.record(self.tenant, reg, sent.error or (
            f"the source answered HTTP {sent.status}" if failed else None))  # fmt: skip
        return sent

    def warnings(self, sent: Sequence[Sent]) -> list[str]:
        """An NGSILD-Warning value per source that gave no answer (clause 6.3.17)."""
        return [
            warning_of(self.alias, s.registration, s.error or "no answer")
            for s in sent
            if s.status is None
        ]


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


async def plan(
    request: Request,
    forwarder: Forwarder | None,
    tenant: str,
    operation: str,
    *,
    include_auxiliary: bool = False,
) -> Writes | None:
    """The forwarding context of a write, or None when it stays local (no registration offers
    the operation, ``local=true``, or the request already passed through this hub)."""
    if forwarder is None or forwarder.registrations.surely_none(tenant):
        return None
    docs = forwarder.registrations.cached(tenant)
    if docs is None:
        from starlette.concurrency import run_in_threadpool

        docs = await run_in_threadpool(forwarder.registrations.active, tenant)
    if request.query_params.get("local", "").strip().lower() in ("true", "1"):
        return None
    seen = via_names(request.headers.get("via", ""))
    if host_alias() in seen:
        return None
    eligible = [
        d
        for d in docs
        if (include_auxiliary or d.get("mode", "inclusive") != "auxiliary")
        and offers(d, operation)
        and d.get("contextSourceAlias") not in seen
    ]
    if not eligible:
        return None
    return Writes(request, forwarder, tenant, eligible, operation)


# -- bodies -------------------------------------------------------------------------------------
def part_of(body: Doc, names: set[str] | None, ctx: ActiveContext) -> Doc:
    """The members of a client's entity or fragment body that a source receives: its
    entity members and the attributes among ``names`` (None: the whole body)."""
    if names is None:
        return body
    return {k: v for k, v in body.items() if k in _MEMBERS or ctx.expand(k) in names}


def local_doc(doc: Doc, taken: set[str]) -> Doc:
    """A parsed entity without the attributes that went to exclusive or redirect sources."""
    if not taken:
        return doc
    return {**doc, "attrs": {k: v for k, v in doc["attrs"].items() if k not in taken}}


def entity_url(entity_id: str, *rest: str) -> str:
    path = "/entities/" + quote(entity_id, safe=":")
    for part in rest:
        path += "/" + quote(part, safe=":")
    return path


# -- results ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a distributed single-entity write produced, to render as the spec says."""

    entity_id: str
    local_error: NgsiError | None = None
    local_done: bool = False
    sent: list[Sent] = field(default_factory=list)

    def all_ok(self) -> bool:
        return self.local_error is None and all(s.ok for s in self.sent)

    def batch_result(self) -> Doc:
        errors: list[Doc] = []
        if self.local_error is not None:
            errors.append({"entityId": self.entity_id, "error": self.local_error.problem()})
        for s in self.sent:
            if not s.ok:
                errors.append(
                    {
                        "entityId": self.entity_id,
                        "registrationId": s.registration["id"],
                        "error": s.problem(),
                    }
                )
        succeeded = (self.local_done and self.local_error is None) or any(s.ok for s in self.sent)
        return {"success": [self.entity_id] if succeeded else [], "errors": errors}


async def run_local(write: Callable[[], Awaitable[Any]]) -> tuple[Any, NgsiError | None]:
    try:
        return await write(), None
    except NgsiError as exc:
        return None, exc


def json_response(body: Any, status: int, warnings: list[str]) -> Response:
    headers = {WARNING_HEADER: ", ".join(warnings)} if warnings else None
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers=headers)


def empty_response(status: int, warnings: list[str], headers: dict[str, str] | None = None
                   ) -> Response:  # fmt: skip
    out = dict(headers or {})
    if warnings:
        out[WARNING_HEADER] = ", ".join(warnings)
    return Response(status_code=status, headers=out)


def only_missing(outcome: Outcome) -> bool:
    """True when nobody had the entity: the hub's own 404 and every source's 404."""
    return (isinstance(outcome.local_error, ResourceNotFound) or not outcome.local_done) and all(
        s.status == 404 for s in outcome.sent
    )
