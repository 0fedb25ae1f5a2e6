"""The live figure a measure links to: a count, or an aggregate of one attribute, over the hub's
entities of a type (e.g. vacant spaces over every ``OffStreetParking``), read in-process.

Names in the links are short names of the platform's city @context (hub/contexts.py), the one
the connectors and the simulator write with: ``OffStreetParking`` is the Smart Data Models type.

Robust by design: a hub with no such entities, a bad ``q`` in the data, or a failing query gives
a figure without a value, never a broken measure page.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from smartcity.hub.contexts import city_context
from smartcity.hub.provenance import is_simulated
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.types_expr import parse_type_selection
from smartcity.portal.blueprint.model import LiveLink, Text

log = logging.getLogger(__name__)
PAGE = 1000
MAX_ENTITIES = 20_000  # beyond this the figure is not worth a page's latency


@dataclass(frozen=True)
class LiveFigure:
    link: LiveLink
    value: float | None  # None: no data (no entities, or no numeric values)
    entities: int  # how many entities the figure is over
    observed_at: dt.datetime | None  # the newest reading used, if the data says
    api_url: str  # where the underlying entities are in the NGSI-LD API
    simulated: int = 0  # how many of those entities the simulator wrote (hub/provenance.py)

    @property
    def label(self) -> Text:
        return self.link.label


def _numbers(doc: dict[str, Any], attr_iri: str) -> tuple[list[float], list[str]]:
    values: list[float] = []
    times: list[str] = []
    for instance in doc.get("attrs", {}).get(attr_iri, []):
        value = instance.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values.append(float(value))
        if isinstance(instance.get("observedAt"), str):
            times.append(instance["observedAt"])
    return values, times


def _distinct(doc: dict[str, Any], attr_iri: str) -> set[str]:
    """The different values (or relationship targets) of an attribute, e.g. the stops that
    arrival estimations point to."""
    found: set[str] = set()
    for instance in doc.get("attrs", {}).get(attr_iri, []):
        value = instance.get("object", instance.get("value"))
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found.add(str(value))
    return found


def _aggregate(kind: str, values: list[float]) -> float | None:
    if not values:
        return None
    if kind == "sum":
        return sum(values)
    if kind == "avg":
        return sum(values) / len(values)
    if kind == "min":
        return min(values)
    if kind == "max":
        return max(values)
    return float(len(values))


def _api_url(link: LiveLink) -> str:
    """The query behind a figure, with the type's full IRI: a browser sends no Link header."""
    from urllib.parse import urlencode

    params = {"type": city_context().expand(link.entity_type), "options": "keyValues"}
    if link.q:
        params["q"] = link.q
    return "/ngsi-ld/v1/entities?" + urlencode(params)


def compute(entities: EntityService, link: LiveLink, tenant: str = "") -> LiveFigure:
    ctx = city_context()
    empty = LiveFigure(link, None, 0, None, _api_url(link))
    try:
        query = EntityQuery(
            expand=ctx.expand, types=parse_type_selection(link.entity_type, ctx.expand)
        )
        if link.q:
            from smartcity.hub.query.qlang import parse_q

            query.q = parse_q(link.q)
        simulated = 0
        if link.aggregate == "count" or link.attribute is None:
            _docs, total = entities.find(tenant, query, limit=0, count=True)
            if total:  # the first page says whether the counted entities are simulated
                sample, _ = entities.find(tenant, query, limit=PAGE)
                simulated = round(sum(map(is_simulated, sample)) * total / len(sample))
            return LiveFigure(
                link, float(total or 0), int(total or 0), None, _api_url(link), simulated
            )
        attr_iri = ctx.expand(link.attribute)
        values: list[float] = []
        times: list[str] = []
        distinct: set[str] = set()
        seen = 0
        offset = 0
        while offset < MAX_ENTITIES:
            docs, _ = entities.find(tenant, query, limit=PAGE, offset=offset)
            for doc in docs:
                simulated += is_simulated(doc)
                v, t = _numbers(doc, attr_iri)
                values.extend(v)
                times.extend(t)
                if link.aggregate == "distinct":
                    distinct.update(_distinct(doc, attr_iri))
            seen += len(docs)
            if len(docs) < PAGE:
                break
            offset += PAGE
    except Exception:  # the data's link is wrong, or the hub failed: show "no data"
        log.warning("live figure for %s failed", link.entity_type, exc_info=True)
        return empty
    newest = None
    if times:
        try:
            newest = dt.datetime.fromisoformat(max(times).replace("Z", "+00:00"))
        except ValueError:
            newest = None
    if link.aggregate == "distinct":
        value = float(len(distinct)) if seen else None
    else:
        value = _aggregate(link.aggregate, values)
    if value is not None and link.scale:
        value *= link.scale
    return LiveFigure(link, value, seen, newest, _api_url(link), simulated)


def figures(entities: EntityService | None, links: list[LiveLink]) -> list[LiveFigure]:
    if entities is None:
        return [LiveFigure(link, None, 0, None, _api_url(link)) for link in links]
    return [compute(entities, link) for link in links]
