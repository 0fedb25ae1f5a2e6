"""Where connector output goes: the hub's service layer in process, or a hub over HTTP.

Both paths do the same thing: validate each entity with the hub's own parser (a bad entity is
counted, never stops the run), drop readings the hub already holds (same or older observedAt:
overlapping files and re-runs add nothing twice to the history) and static entities that have
not changed, then write in rounds so that several hours of one station become several history
instances in time order instead of being merged into one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from smartcity.hub.contexts import ContextStore
from smartcity.hub.entity import Doc, parse_entity
from smartcity.hub.errors import NgsiError
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import parse_datetime_us
from smartcity.live.connectors.base import ConnectorResult, Entity

_SYSTEM = ("createdAt", "modifiedAt", "instanceId")


class SinkError(Exception):
    """Writing failed as a whole (hub unreachable, key refused); the message says what to do."""


@dataclass
class WriteSummary:
    written: int = 0  # entity writes accepted (an entity written in 3 rounds counts 3)
    created: int = 0
    unchanged: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class Sink(Protocol):
    def current(
        self, ids: Sequence[str], ctx: ActiveContext, context: dict[str, Any]
    ) -> dict[str, Doc]: ...

    def write(
        self, pairs: Sequence[tuple[Entity, Doc]], context: dict[str, Any], summary: WriteSummary
    ) -> None: ...


def observed(doc: Doc) -> int | None:
    """The newest observedAt among an entity's attributes (microseconds), or None."""
    times = [
        parse_datetime_us(inst["observedAt"], field="observedAt")
        for instances in doc.get("attrs", {}).values()
        for inst in instances
        if isinstance(inst, dict) and inst.get("observedAt")
    ]
    return max(times) if times else None


def _strip(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in i.items() if k not in _SYSTEM} for i in instances]


def unchanged(new: Doc, old: Doc) -> bool:
    return all(
        _strip(old["attrs"].get(iri, [])) == _strip(instances)
        for iri, instances in new["attrs"].items()
    )


def deliver(result: ConnectorResult, sink: Sink) -> WriteSummary:
    summary = WriteSummary()
    context = result.jsonld_context()
    ctx = ContextStore(None).active(context)  # inline terms only: nothing is ever fetched
    by_id: dict[str, list[tuple[Entity, Doc]]] = {}
    for entity in result.entities:
        try:
            doc = parse_entity(entity, ctx)
        except NgsiError as exc:
            summary.errors[f"invalid entity: {exc.detail}"] += 1
            continue
        by_id.setdefault(doc["id"], []).append((entity, doc))
    stored = sink.current(list(by_id), ctx, context)
    rounds: list[list[tuple[Entity, Doc]]] = []
    for entity_id, pairs in by_id.items():
        # Static parts first, then readings oldest to newest; one reading per time.
        pairs.sort(key=lambda p: observed(p[1]) or -1)
        old = stored.get(entity_id)
        mark = observed(old) if old else None
        seen: dict[int, tuple[Entity, Doc]] = {}
        kept: list[tuple[Entity, Doc]] = []
        for entity, doc in pairs:
            when = observed(doc)
            if when is not None and when in seen:
                # The same entity and time from two inputs (e.g. 24pc + 24aqhi, or overlapping
                # detector files): one instance, with the attributes of both.
                first_entity, first_doc = seen[when]
                first_entity.update({k: v for k, v in entity.items() if k not in ("id", "type")})
                first_doc["attrs"].update(doc["attrs"])
                summary.unchanged["same entity and time in several records (merged)"] += 1
                continue
            if when is not None:
                seen[when] = (entity, doc)
                if mark is not None and when <= mark:
                    summary.unchanged["reading already in the hub"] += 1
                    continue
            elif old is not None and unchanged(doc, old):
                summary.unchanged["unchanged since the last run"] += 1
                continue
            kept.append((entity, doc))
        for index, pair in enumerate(kept):
            if index == len(rounds):
                rounds.append([])
            rounds[index].append(pair)
    for batch in rounds:
        sink.write(batch, context, summary)
    return summary


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LocalSink:
    """Writes through ``EntityService.upsert_many`` into the configured database."""

    def __init__(self, service: EntityService, tenant: str = "") -> None:
        self.service = service
        self.tenant = tenant

    def current(
        self, ids: Sequence[str], ctx: ActiveContext, context: dict[str, Any]
    ) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        for chunk in _chunks(ids, 500):
            docs, _ = self.service.find(self.tenant, EntityQuery(ids=list(chunk)), limit=len(chunk))
            found.update((d["id"], d) for d in docs)
        return found

    def write(
        self, pairs: Sequence[tuple[Entity, Doc]], context: dict[str, Any], summary: WriteSummary
    ) -> None:
        for chunk in _chunks(pairs, 1000):
            result = self.service.upsert_many(self.tenant, [d for _, d in chunk], replace=False)
            summary.written += len(result.success)
            summary.created += len(result.created)
            for _, error in result.errors:
                summary.errors[f"refused by the hub: {error.detail}"] += 1


class HubSink:
    """POSTs NGSI-LD batches (application/ld+json, inline @context) to a running hub."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        tenant: str = "",
        *,
        timeout: float = 30.0,
        batch: int = 200,
        client: httpx.Client | None = None,
    ) -> None:
        self.base = base_url.rstrip("/") + "/ngsi-ld/v1"
        headers = {"Content-Type": "application/ld+json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        self.client = client or httpx.Client(timeout=timeout, headers=headers)
        self.batch = batch

    def _post(self, path: str, body: Any, **params: str) -> httpx.Response:
        try:
            response = self.client.post(self.base + path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise SinkError(
                f"cannot reach the hub at {self.base} ({type(exc).__name__}); is it running? "
                "Start it with `smartcity serve`, or check --hub"
            ) from None
        if response.status_code in (401, 403):
            raise SinkError(
                f"the hub refused the key ({response.status_code}): pass --key with a write key "
                "for this tenant (create one with `smartcity keys create NAME --scope write`)"
            )
        if response.status_code >= 400 and response.status_code != 207:
            raise SinkError(f"the hub answered {response.status_code}: {_problem(response)}")
        return response

    def current(
        self, ids: Sequence[str], ctx: ActiveContext, context: dict[str, Any]
    ) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        for chunk in _chunks(ids, 200):
            body = {
                "type": "Query",
                "entities": [{"id": i} for i in chunk],
                "@context": context,
            }
            response = self._post("/entityOperations/query", body, limit=str(len(chunk)))
            for item in response.json():
                try:
                    doc = parse_entity({k: v for k, v in item.items() if k != "@context"}, ctx)
                except NgsiError:
                    continue
                found[doc["id"]] = doc
        return found

    def write(
        self, pairs: Sequence[tuple[Entity, Doc]], context: dict[str, Any], summary: WriteSummary
    ) -> None:
        for chunk in _chunks(pairs, self.batch):
            body = [{**entity, "@context": context} for entity, _ in chunk]
            response = self._post("/entityOperations/upsert", body, options="update")
            if response.status_code == 207:
                report = response.json()
                summary.written += len(report.get("success", []))
                for error in report.get("errors", []):
                    detail = (error.get("error") or {}).get("detail", "unknown error")
                    summary.errors[f"refused by the hub: {detail}"] += 1
            else:
                summary.written += len(chunk)
                if response.status_code == 201:
                    summary.created += len(response.json())


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or body)
    except ValueError:
        return response.text[:200]
