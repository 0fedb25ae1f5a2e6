"""Distributed operations (clauses 4.3.6, 6.3.17, 6.3.18): a query or retrieval on the hub is
also sent to the department brokers whose registrations match it, and the answers are merged
with the hub's own.

* Matching: the registration's ``information`` against the request's type/id/idPattern/attrs
  (see ``matching``), and its ``operations`` must include the operation (default
  ``federationOps``). Expired registrations and those whose ``contextSourceAlias`` is already
  on the request's ``Via`` header are skipped; ``local=true`` forwards nothing.
* Forwarded requests carry the client's selectors and @context (Link), ``local=true`` (no
  cascades, no loops), a ``Via`` header with this hub's alias appended, the registration's
  ``tenant`` as NGSILD-Tenant and its ``contextSourceInfo`` pairs as headers. They are sent
  concurrently; each source has ``management.timeout`` (default 2 s, at most 10 s) and after a
  failure is left alone for ``management.cooldown``.
* Merging: entities with the same id become one; for an attribute that several answers hold,
  exclusive and redirect sources win over the hub's own data, which wins over inclusive
  sources, which win over auxiliary ones (clause 4.3.6.3).
* A source that fails, times out or is cooling down never fails the request: the answer holds
  what the others returned, with one ``NGSILD-Warning`` value per failed source
  (``199 <hub alias> "<registration>: <reason>"``, clause 6.3.17).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.federation.matching import Wanted, attrs_to_ask, registration_matches
from smartcity.hub.federation.model import TEMPORAL_OPERATIONS, Doc, of_a_period, offers
from smartcity.hub.federation.regquery import covers, period_asked
from smartcity.hub.federation.service import RegistrationService
from smartcity.hub.outbound import TargetGuard, async_http_client
from smartcity.hub.timeutil import iso_from_us, now_us

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 2000
MAX_TIMEOUT_S = 10.0
API_ROOT = "/ngsi-ld/v1"
WARNING_HEADER = "NGSILD-Warning"
# Merge priority by mode: a higher one's attribute values replace a lower one's.
PRIORITY = {"auxiliary": 0, "inclusive": 1, "exclusive": 3, "redirect": 3}
LOCAL_PRIORITY = 2
# Query parameters the forwarding sets itself.
_OWN_PARAMS = frozenset({"local", "attrs", "limit", "offset", "count"})


def host_alias() -> str:
    """This hub's name on Via headers (clause 6.3.18): SMARTCITY_HOST_ALIAS, else one made up
    per process (loops are prevented by local=true anyway; the alias names who forwarded)."""
    return os.environ.get("SMARTCITY_HOST_ALIAS") or _PROCESS_ALIAS


_PROCESS_ALIAS = f"smartcity-{uuid.uuid4().hex[:12]}"


@dataclass
class Health:
    """What clause 5.2.9 reports per registration: status, timesSent, timesFailed,
    lastSuccess, lastFailure. Kept in memory, per server process."""

    times_sent: int = 0
    times_failed: int = 0
    last_success: int | None = None
    last_failure: int | None = None
    cooldown_until: float = 0.0

    def render(self) -> Doc:
        out: Doc = {"timesSent": self.times_sent, "timesFailed": self.times_failed}
        if self.times_sent:
            failed_last = (self.last_failure or 0) > (self.last_success or 0)
            out["status"] = "failed" if failed_last else "ok"
        if self.last_success is not None:
            out["lastSuccess"] = iso_from_us(self.last_success)
        if self.last_failure is not None:
            out["lastFailure"] = iso_from_us(self.last_failure)
        return out


@dataclass
class Target:
    registration: Doc
    attrs: list[str] | None  # None: every attribute


@dataclass
class Answer:
    target: Target
    body: Any = None  # the decoded JSON answer; None when the source has nothing (404)
    count: int | None = None
    error: str | None = None


@dataclass
class Merged:
    entities: list[Doc]
    warnings: list[str] = field(default_factory=list)
    remote_only: int = 0  # entities in the answers that the hub's own part did not hold
    remote_fetched: int = 0  # entities in the sources' answers
    remote_total: int = 0  # the sources' NGSILD-Results-Count, added up


class Forwarder:
    def __init__(
        self, registrations: RegistrationService, guard: TargetGuard | None = None
    ) -> None:
        self.registrations = registrations
        # Checks each connection to a source (SMARTCITY_FORBID_PRIVATE_TARGETS): a refused
        # source is a failed one, reported in NGSILD-Warning like any other.
        self.guard = guard or TargetGuard()
        self.health: dict[tuple[str, str], Health] = {}

    def health_of(self, tenant: str, reg_id: str) -> Health:
        return self.health.setdefault((tenant, reg_id), Health())

    def cooling(self, tenant: str, reg: Doc) -> bool:
        """Whether the source failed lately and is left alone (management.cooldown)."""
        return time.monotonic() < self.health_of(tenant, reg["id"]).cooldown_until

    def record(self, tenant: str, reg: Doc, error: str | None) -> None:
        """One request's outcome in the registration's status members (clause 5.2.9); a
        failure starts the cooldown."""
        health = self.health_of(tenant, reg["id"])
        if error is None:
            health.last_success = now_us()
            return
        health.times_failed += 1
        health.last_failure = now_us()
        cooldown = reg.get("management", {}).get("cooldown")
        if cooldown is not None:
            health.cooldown_until = time.monotonic() + cooldown / 1000
        log.info("forwarding to %s failed: %s", reg["endpoint"], error)

    async def plan(
        self,
        request: Request,
        tenant: str,
        operation: str,
        wanted: Wanted,
        *,
        params: list[tuple[str, str]] | None = None,
        link: str | None = None,
    ) -> Distributed | None:
        """The sources to forward this request to, or None when it stays local.

        ``params`` and ``link`` are the query parameters and @context Link header to forward,
        by default the request's own (a POST query passes its body's translation)."""
        # The common case first, and cheaply: a tenant without registrations (the lean
        # retrieve-by-id path runs this on every request).
        docs = self.registrations.cached(tenant)
        if docs is None:  # a cache miss reads the database: off the loop on PostgreSQL
            if self.registrations.db.is_postgres:
                docs = await run_in_threadpool(self.registrations.active, tenant)
            else:
                docs = self.registrations.active(tenant)
        if not docs:
            return None
        if params is None:
            params = list(request.query_params.multi_items())
            link = request.headers.get("link")
        if any(k == "local" and v.strip().lower() in ("true", "1") for k, v in params):
            return None
        via = request.headers.get("via", "")
        alias = host_alias()
        if alias in via_names(via):
            return None
        seen = via_names(via)
        # A registration of a period (an observationInterval or a managementInterval) is asked
        # temporal requests only (``offers``), and only about a time its interval overlaps.
        period = period_asked(params) if operation in TEMPORAL_OPERATIONS else None
        targets = [
            Target(doc, attrs_to_ask(doc, wanted))
            for doc in docs
            if offers(doc, operation)
            and doc.get("contextSourceAlias") not in seen
            and (period is None or not of_a_period(doc) or covers(doc, period))
            and registration_matches(doc, wanted)
        ]
        if not targets:
            return None
        return Distributed(self, tenant, targets, params, link, via, alias)


def via_names(via: str) -> set[str]:
    """The pseudonyms on a Via header (``1.1 name, 1.1 other``)."""
    names: set[str] = set()
    for part in via.split(","):
        pieces = part.strip().split()
        if len(pieces) >= 2:
            names.add(pieces[1])
    return names


def warning_of(alias: str, reg: Doc, reason: str) -> str:
    text = f"registration {reg['id']} ({reg['endpoint']}): {reason}"
    text = text.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "/")
    return f'199 {alias} "{text}"'


class Distributed:
    """One request's forwarding: started before the local read, awaited after it."""

    def __init__(
        self,
        forwarder: Forwarder,
        tenant: str,
        targets: list[Target],
        params: list[tuple[str, str]],
        link: str | None,
        via: str,
        alias: str,
    ) -> None:
        self.forwarder = forwarder
        self.tenant = tenant
        self.params = [(k, v) for k, v in params if k not in _OWN_PARAMS]
        self.link = link
        self.targets = targets
        self.via = f"{via}, 1.1 {alias}" if via.strip() else f"1.1 {alias}"
        self.alias = alias

    # -- sending ---------------------------------------------------------------------------------
    def start(self, path: str, **params: str) -> asyncio.Task[list[Answer]]:
        """Send the request to every target now (concurrently); the task gives the answers."""
        return asyncio.ensure_future(self._all(path, params))

    async def _all(self, path: str, params: dict[str, str]) -> list[Answer]:
        async with async_http_client(self.forwarder.guard) as client:
            return list(
                await asyncio.gather(*(self._one(client, t, path, params) for t in self.targets))
            )

    async def _one(
        self, client: httpx.AsyncClient, target: Target, path: str, extra: dict[str, str]
    ) -> Answer:
        reg = target.registration
        health = self.forwarder.health_of(self.tenant, reg["id"])
        if self.forwarder.cooling(self.tenant, reg):
            return Answer(target, error="not asked: cooling down after a failure")
        timeout = timeout_of(reg)
        query: list[tuple[str, str | int | float | bool | None]] = list(self.params)
        query.append(("local", "true"))
        if target.attrs is not None:
            query.append(("attrs", ",".join(target.attrs)))
        query.extend(extra.items())
        headers = source_headers(reg, self.via, self.link)
        url = api_base(reg["endpoint"]) + path
        health.times_sent += 1
        try:
            response = await asyncio.wait_for(
                client.get(url, params=query, headers=headers, timeout=timeout), timeout
            )
            answer = _decode(target, response)
        except TimeoutError:
            answer = Answer(target, error=f"no answer within {timeout:g} s")
        except Exception as exc:  # one broken source never fails the hub's answer
            answer = Answer(target, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        self.forwarder.record(self.tenant, reg, answer.error)
        return answer

    # -- merging ---------------------------------------------------------------------------------
    async def merged(
        self, remote: Awaitable[list[Answer]], local: list[Doc], *, one: bool = False
    ) -> Merged:
        answers = await remote
        warnings = [
            warning_of(self.alias, a.target.registration, a.error) for a in answers if a.error
        ]
        layers: list[tuple[int, list[Doc]]] = [(LOCAL_PRIORITY, local)]
        for answer in answers:
            if answer.error is None and answer.body is not None:
                body = [answer.body] if one else answer.body
                mode = answer.target.registration.get("mode", "inclusive")
                layers.append((PRIORITY.get(mode, 1), [e for e in body if isinstance(e, dict)]))
        by_id: dict[str, list[tuple[int, Doc]]] = {}
        order: list[str] = []
        for priority, entities in layers:
            for entity in entities:
                key = str(entity.get("id"))
                if key not in by_id:
                    by_id[key] = []
                    order.append(key)
                by_id[key].append((priority, entity))
        local_ids = {str(e.get("id")) for e in local}
        return Merged(
            [_merge_entity(by_id[key]) for key in order],
            warnings,
            remote_only=len([k for k in order if k not in local_ids]),
            remote_fetched=sum(len(entities) for _, entities in layers[1:]),
            remote_total=sum(a.count or 0 for a in answers if a.error is None),
        )


def source_headers(reg: Doc, via: str, link: str | None) -> dict[str, str]:
    """The headers every request forwarded to ``reg``'s source carries (clause 6.3.18 Via,
    the registration's tenant and its contextSourceInfo pairs)."""
    headers = {"Accept": "application/json", "Via": via}
    if link:
        headers["Link"] = link
    if reg.get("tenant"):
        headers["NGSILD-Tenant"] = reg["tenant"]
    for pair in reg.get("contextSourceInfo", []):
        headers[pair["key"]] = pair["value"]
    return headers


def timeout_of(reg: Doc) -> float:
    """The registration's per-request timeout in seconds (management.timeout, capped)."""
    management = reg.get("management", {})
    return float(min(MAX_TIMEOUT_S, management.get("timeout", DEFAULT_TIMEOUT_MS) / 1000))


def api_base(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith(API_ROOT) else base + API_ROOT


def _decode(target: Target, response: httpx.Response) -> Answer:
    if response.status_code == 404:
        return Answer(target, body=None)
    if response.status_code != 200:
        return Answer(target, error=f"the source answered HTTP {response.status_code}")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return Answer(target, error="the source's answer is not JSON")
    count_header = response.headers.get("NGSILD-Results-Count")
    count = int(count_header) if count_header and count_header.isdigit() else None
    return Answer(target, body=body, count=count)


def _merge_entity(parts: list[tuple[int, Doc]]) -> Doc:
    """One entity from several answers (see the module docstring for who wins)."""
    parts = sorted(parts, key=lambda p: p[0])  # stable: equal priorities keep answer order
    out: Doc = {}
    types: list[Any] = []
    for _, entity in parts:
        for key, value in entity.items():
            if key == "@context":
                continue
            if key == "type":
                for t in value if isinstance(value, list) else [value]:
                    if t not in types:
                        types.append(t)
                continue
            out[key] = value
    result: Doc = {"id": out.pop("id")} if "id" in out else {}
    if types:
        result["type"] = types[0] if len(types) == 1 else types
    result.update(out)
    return result


def with_warnings(response: Response, warnings: list[str]) -> Response:
    if warnings:
        response.headers[WARNING_HEADER] = ", ".join(warnings)
    return response


async def local_or_none(read: Callable[[], Awaitable[Doc]]) -> Doc | None:
    """The hub's own entity, or None when only the sources may have it."""
    try:
        return await read()
    except ResourceNotFound:
        return None


def entity_path(kind: str, entity_id: str) -> str:
    return f"{kind}/{quote(entity_id, safe=':')}"
