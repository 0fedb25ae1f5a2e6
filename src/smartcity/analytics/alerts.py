"""Alerts are data: what an analysis raises is an NGSI-LD ``Alert`` entity in the hub.

Every alert is a Smart Data Models ``Alert`` (dataModel.Alert: category, subCategory, severity,
alertSource, dateIssued, validFrom, validTo, description, location) written through the hub's
service layer in process, so subscriptions are notified, the dashboard and the Temporal API see
it and the open data catalogue can publish it, like any other entity.

One alert per (analysis, subject, subCategory): its id is built from them
(``urn:ngsi-ld:Alert:crowds:shing-kai-footbridge:overcrowding``), so running an analysis again
updates the same entity instead of adding another. An alert **clears** by getting ``validTo``
(the time the condition ended); it is not deleted. Why: the entity and its temporal evolution
stay as the record of what happened and when (an incident log a safety officer or an auditor
asks for), subscribers are told of the clearing like of any change (``q=validTo`` or
``watchedAttributes=validTo``), and a consumer that wants only the live ones asks for
``q=!validTo``. If the condition comes back, the same entity is raised again: ``validFrom``
restarts and ``validTo`` goes.

For an analysis the simplest call is ``reconcile``: it is given every alert that holds now and
clears that analysis's other active alerts. ``raise_alert`` and ``clear_alert`` do one at a
time. Severity is Smart Data Models' scale: informational, low, medium, high, critical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from smartcity.hub.contexts import city_context
from smartcity.hub.entity import Doc, parse_entity, render_entity
from smartcity.hub.query.qlang import parse_q
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import iso_from_us, now_us

SEVERITIES = ("informational", "low", "medium", "high", "critical")
ID_PREFIX = "urn:ngsi-ld:Alert:"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class AlertSpec:
    """One alert that holds now.

    ``analysis``: who raises it (``crowds``, ``water``, ``parking``...); ``subject``: what it is
    about, stable from run to run (a zone id, a DMA id); ``category``/``sub_category``: Smart
    Data Models' (e.g. ``security``/``overcrowding``); ``source``: the ``alertSource`` (the
    entity or sensor the alert is about; default: the analysis)."""

    analysis: str
    subject: str
    category: str
    sub_category: str
    severity: str
    description: str
    location: dict[str, Any] | None = None
    source: str | None = None
    # Extra figures (JSON-able) kept on the alert as ``data``, e.g. {"density": 2.4}.
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}: {self.severity!r}")
        for name in ("analysis", "subject", "sub_category"):
            if not getattr(self, name):
                raise ValueError(f"an alert needs a {name}")

    @property
    def id(self) -> str:
        return alert_id(self.analysis, self.subject, self.sub_category)


@dataclass
class Outcome:
    """What one ``reconcile`` did (entity ids)."""

    raised: list[str] = field(default_factory=list)  # new, or back after clearing
    updated: list[str] = field(default_factory=list)  # severity changed
    unchanged: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


def alert_id(analysis: str, subject: str, sub_category: str) -> str:
    parts = (_SLUG.sub("-", p).strip("-") for p in (analysis, subject, sub_category))
    return ID_PREFIX + ":".join(parts)


def raise_alert(
    entities: EntityService, spec: AlertSpec, *, at_us: int | None = None, tenant: str = ""
) -> str:
    """Raise (or keep, or re-raise) ``spec``'s alert; returns "raised", "updated" or
    "unchanged". Written only when something a reader cares about changed (new, cleared
    before, other severity), so a run every minute does not notify subscribers every minute."""
    at = at_us if at_us is not None else now_us()
    current = _get(entities, tenant, spec.id)
    if current is not None and not current.get("validTo"):
        if current.get("severity") == spec.severity:
            return "unchanged"
        _write(entities, tenant, spec, at, issued=current.get("dateIssued"), since=current)
        return "updated"
    _write(entities, tenant, spec, at, issued=None if current is None else current["dateIssued"])
    return "raised"


def clear_alert(
    entities: EntityService,
    analysis: str,
    subject: str,
    sub_category: str,
    *,
    at_us: int | None = None,
    tenant: str = "",
) -> bool:
    """Mark the alert over (``validTo``); False if there was no active one."""
    entity_id = alert_id(analysis, subject, sub_category)
    current = _get(entities, tenant, entity_id)
    if current is None or current.get("validTo"):
        return False
    at = at_us if at_us is not None else now_us()
    doc = parse_entity({"id": entity_id, "validTo": _dt(at)}, city_context(), require_type=False)
    entities.merge(tenant, doc)
    return True


def active_alerts(
    entities: EntityService, analysis: str | None = None, *, tenant: str = ""
) -> list[dict[str, Any]]:
    """The alerts without ``validTo`` (of one analysis, or all), as key-value dicts. Asked
    of the hub as ``q=!validTo``: cleared alerts pile up over the months, active ones do not."""
    return alerts(entities, analysis, tenant=tenant, active_only=True)


def alerts(
    entities: EntityService,
    analysis: str | None = None,
    *,
    tenant: str = "",
    limit: int = 10_000,
    active_only: bool = False,
) -> list[dict[str, Any]]:
    """Every alert (of one analysis, or all), active and cleared, as key-value dicts."""
    ctx = city_context()
    pattern = "^" + re.escape(ID_PREFIX + (f"{analysis}:" if analysis else ""))
    query = EntityQuery(
        types=[frozenset({ctx.expand("Alert")})],
        id_pattern=pattern,
        q=parse_q("!validTo") if active_only else None,
        expand=ctx.expand,
    )
    docs, _ = entities.find(tenant, query, limit=limit)
    return [_compact(d) for d in docs]


def reconcile(
    entities: EntityService,
    analysis: str,
    holding: Iterable[AlertSpec],
    *,
    at_us: int | None = None,
    tenant: str = "",
    prefix: str = "",
    keep: Iterable[str] = (),
) -> Outcome:
    """Make ``analysis``'s alerts in the hub what ``holding`` says holds now: raise or update
    those, clear the others that are still active. With ``prefix``, only alerts whose subject
    starts with it are cleared (one venue's, when the analysis watches several). ``keep``: ids
    of alerts to leave as they are (the analysis could not tell: e.g. its sensors fell
    silent; an alert clears on evidence that the condition ended, not for want of data)."""
    at = at_us if at_us is not None else now_us()
    outcome = Outcome()
    wanted: set[str] = set(keep)
    for spec in holding:
        if spec.analysis != analysis:
            raise ValueError(f"alert {spec.id} is not of analysis {analysis!r}")
        wanted.add(spec.id)
        what = raise_alert(entities, spec, at_us=at, tenant=tenant)
        getattr(outcome, what).append(spec.id)
    for alert in active_alerts(entities, analysis, tenant=tenant):
        subject, sub_category = alert["id"][len(ID_PREFIX) :].split(":")[1:3]
        if alert["id"] not in wanted and subject.startswith(prefix):
            clear_alert(entities, analysis, subject, sub_category, at_us=at, tenant=tenant)
            outcome.cleared.append(alert["id"])
    return outcome


# -- plumbing -----------------------------------------------------------------------------------
def _dt(at_us: int | str) -> dict[str, Any]:
    """A DateTime Property (NGSI-LD's typed value), from µs or an ISO string."""
    iso = at_us if isinstance(at_us, str) else iso_from_us(at_us)
    return {"type": "Property", "value": {"@type": "DateTime", "@value": iso}}


def _get(entities: EntityService, tenant: str, entity_id: str) -> dict[str, Any] | None:
    docs, _ = entities.find(tenant, EntityQuery(ids=[entity_id]), limit=1)
    return _compact(docs[0]) if docs else None


def _compact(doc: Doc) -> dict[str, Any]:
    out = render_entity(doc, city_context(), fmt="keyValues")
    for key in ("validFrom", "validTo", "dateIssued"):  # DateTime values come back typed
        value = out.get(key)
        if isinstance(value, dict) and "@value" in value:
            out[key] = value["@value"]
    return out


def _write(
    entities: EntityService,
    tenant: str,
    spec: AlertSpec,
    at: int,
    *,
    issued: str | None,
    since: dict[str, Any] | None = None,
) -> None:
    """The whole alert, replacing what was there (so a re-raise drops the old ``validTo``)."""
    payload: dict[str, Any] = {
        "id": spec.id,
        "type": "Alert",
        "category": spec.category,
        "subCategory": spec.sub_category,
        "severity": spec.severity,
        "description": spec.description,
        "alertSource": spec.source or f"urn:smartcity:analytics:{spec.analysis}",
        "dateIssued": _dt(issued or at),
        # An escalation keeps the start of the condition; a (re-)raise starts it now.
        "validFrom": _dt(since["validFrom"] if since is not None else at),
    }
    if spec.location is not None:
        payload["location"] = {"type": "GeoProperty", "value": spec.location}
    if spec.data:
        payload["data"] = {"type": "JsonProperty", "json": spec.data}
    doc = parse_entity(payload, city_context())
    result = entities.upsert_many(tenant, [doc], replace=True)
    if result.errors:
        raise result.errors[0][1]
