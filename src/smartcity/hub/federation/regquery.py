"""Query Context Source Registrations beyond the entity selectors (clause 5.10.2): ``q`` and
``csf`` on the registration's Context Source properties, a geo-query on its ``location``
(or ``observationSpace`` / ``operationSpace`` as ``geoproperty``), and a temporal query on its
``observationInterval`` (``timeproperty`` observedAt, the default) or ``managementInterval``
(createdAt / modifiedAt), and ``scopeQ`` on the registration's ``scope`` (as on entities).
Without a temporal query only registrations without either interval are found (clause
5.10.2: they are the sources of latest information).

``q`` and ``csf`` are evaluated alike, by the q language of entity queries (query.qeval),
against a view of the registration as an entity whose Properties are its additional Context
Source properties (any member the specification does not define, e.g. ``"department": "TD"``)
and its simple members (``registrationName``, ``description``, ``endpoint``, ``mode``,
``contextSourceAlias``, ``tenant``, ``operations``, ``scope``, ``refreshRate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation.model import PROPERTIES, of_a_period
from smartcity.hub.query import geo, qeval
from smartcity.hub.query.qlang import QNode, parse_q
from smartcity.hub.query.scope import ScopeNode, parse_scope_q, scope_matches
from smartcity.hub.timeutil import parse_datetime_us

Doc = dict[str, Any]
_SIMPLE = (
    "registrationName",
    "description",
    "endpoint",
    "mode",
    "contextSourceAlias",
    "tenant",
    "operations",
    "scope",
    "refreshRate",
)
_GEO_MEMBERS = ("location", "observationSpace", "operationSpace")
_TIME_MEMBERS = {
    "observedAt": "observationInterval",
    "observationInterval": "observationInterval",
    "createdAt": "managementInterval",
    "modifiedAt": "managementInterval",
    "managementInterval": "managementInterval",
}


@dataclass(frozen=True)
class Temporal:
    timerel: str
    start: int
    end: int | None
    member: str


@dataclass(frozen=True)
class Filter:
    """The parts of a registration query that look beyond ``information``."""

    q: QNode | None = None
    csf: QNode | None = None
    geo: geo.GeoQuery | None = None
    geo_member: str = "location"
    temporal: Temporal | None = None
    scope: ScopeNode | None = None

    def __bool__(self) -> bool:
        return any(x is not None for x in (self.q, self.csf, self.geo, self.temporal, self.scope))


def parse_filter(
    *,
    q: str | None,
    csf: str | None,
    georel: str | None,
    geometry: str | None,
    coordinates: str | None,
    geoproperty: str | None,
    timerel: str | None,
    timeAt: str | None,
    endTimeAt: str | None,
    timeproperty: str | None,
    max_q_length: int,
    max_points: int,
    scopeQ: str | None = None,
) -> Filter:
    """Validate the parameters (400 BadRequestData for what is wrong)."""
    member = geoproperty or "location"
    if member not in _GEO_MEMBERS:
        raise BadRequestData(
            f"geoproperty on registrations is one of {', '.join(_GEO_MEMBERS)}, got {member!r}"
        )
    geo_query = geo.parse_geo_query(georel, geometry, coordinates, None, max_points=max_points)
    return Filter(
        q=parse_q(q, max_length=max_q_length) if q is not None else None,
        csf=parse_q(csf, max_length=max_q_length) if csf is not None else None,
        geo=geo_query,
        geo_member=member,
        temporal=temporal_filter(timerel, timeAt, endTimeAt, timeproperty),
        scope=parse_scope_q(scopeQ) if scopeQ is not None else None,
    )


def temporal_filter(timerel: str | None, time_at: str | None, end_time_at: str | None,
                    timeproperty: str | None) -> Temporal | None:  # fmt: skip
    """A temporal query on registrations (parameters, or a registration subscription's
    temporalQ); None without timerel."""
    if timerel is None:
        if time_at is not None or end_time_at is not None:
            raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
        return None
    if timerel not in ("before", "after", "between"):
        raise BadRequestData(f"timerel must be before, after or between, got {timerel!r}")
    if time_at is None:
        raise BadRequestData("timerel needs timeAt")
    start = parse_datetime_us(time_at, field="timeAt")
    end = None
    if timerel == "between":
        if end_time_at is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        end = parse_datetime_us(end_time_at, field="endTimeAt")
        if end <= start:
            raise BadRequestData("endTimeAt must be after timeAt")
    name = timeproperty or "observedAt"
    if name not in _TIME_MEMBERS:
        raise BadRequestData(
            "timeproperty on registrations is observedAt (observationInterval), createdAt or "
            f"modifiedAt (managementInterval), got {name!r}"
        )
    return Temporal(timerel, start, end, _TIME_MEMBERS[name])


def as_entity(doc: Doc, expand: Callable[[str], str]) -> Doc:
    """The registration as an entity of Properties, for q and csf; its simple members are
    named by ``expand`` (the one q's names are expanded by)."""
    attrs: dict[str, list[Doc]] = {}
    for key in _SIMPLE:
        if key in doc:
            attrs[expand(key)] = [{"type": "Property", "value": doc[key]}]
    if "mode" not in doc:
        attrs[expand("mode")] = [{"type": "Property", "value": "inclusive"}]
    for iri, value in doc.get(PROPERTIES, {}).items():
        if isinstance(value, dict) and ("value" in value or "object" in value):
            attrs[iri] = [value]
        else:
            attrs[iri] = [{"type": "Property", "value": value}]
    return {"id": doc["id"], "type": ["ContextSourceRegistration"], "attrs": attrs}


def passes(doc: Doc, flt: Filter, expand: Callable[[str], str]) -> bool:
    """Whether the registration passes the filter; ``expand`` gives the IRI of a name of q or
    csf (a query's @context, or the names a subscription's context expanded when stored)."""
    if flt.q is not None or flt.csf is not None:
        view = as_entity(doc, expand)
        for node in (flt.q, flt.csf):
            if node is not None and not qeval.matches(node, view, expand):
                return False
    if flt.scope is not None and not scope_matches(flt.scope, doc.get("scope")):
        return False
    if flt.geo is not None:
        shape = doc.get(flt.geo_member)
        if not isinstance(shape, dict) or not geo.matches(flt.geo, shape):
            return False
    if flt.temporal is not None:
        return covers(doc, flt.temporal)
    # Clause 5.10.2: without a temporal query, only the sources of latest information are
    # considered, i.e. registrations without a time interval.
    return not of_a_period(doc)


def covers(doc: Doc, t: Temporal) -> bool:
    """Whether the registration's interval for the query's time property (observationInterval
    or managementInterval) overlaps the period the temporal query asks about."""
    return _in_time(doc.get(t.member), t)


def period_asked(params: list[tuple[str, str]]) -> Temporal | None:
    """The period a forwarded temporal query asks about, from its parameters; None when it
    names none (or names it wrongly: the hub's own endpoint has said so already)."""
    given = dict(params)
    timeproperty = given.get("timeproperty")
    if timeproperty == "deletedAt":  # (the managementInterval too; not a registration query's)
        timeproperty = "modifiedAt"
    try:
        return temporal_filter(
            given.get("timerel"), given.get("timeAt"), given.get("endTimeAt"), timeproperty
        )
    except BadRequestData:
        return None


def _in_time(interval: Any, t: Temporal) -> bool:
    if not isinstance(interval, dict) or "startAt" not in interval:
        return False
    start = parse_datetime_us(interval["startAt"], field="startAt")
    end = parse_datetime_us(interval["endAt"], field="endAt") if "endAt" in interval else None
    if t.timerel == "before":
        return start < t.start
    if t.timerel == "after":
        return end is None or end > t.start
    assert t.end is not None
    return start < t.end and (end is None or end > t.start)
