"""The crowd and water analyses as JSON under ``/api/v1/analytics/crowds`` and
``/api/v1/analytics/water``.

Reads only: a GET computes the state from the hub's history at ``at`` (default now) and never
writes; the alerts are raised and cleared by ``smartcity analytics crowds|water run`` (once,
or ``--every`` N seconds), and are themselves NGSI-LD ``Alert`` entities any client can read
(``/ngsi-ld/v1/entities?type=Alert``). The ``.../alerts`` paths list them for convenience.
Problems are RFC 9457 ProblemDetails saying what was wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from smartcity.analytics import alerts as alert_store
from smartcity.analytics.crowds import analysis as crowds
from smartcity.analytics.crowds.venue import load_venue, venues
from smartcity.analytics.readings import from_hub
from smartcity.analytics.water import analysis as water
from smartcity.hub.api.deps import hub
from smartcity.hub.timeutil import now_us

router = APIRouter(prefix="/api/v1/analytics", tags=["Analytics"])
HKT_OFFSET = "+08:00"
MAX_NIGHTS = 90


class BadQuery(ValueError):
    pass


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _problem(status: int, detail: str) -> Response:
    body = {
        "type": "about:blank",
        "title": "Bad Request" if status == 400 else "Not Found",
        "status": status,
        "detail": detail,
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def parse_at(text: str | None) -> int:
    """ISO 8601 (without an offset: Hong Kong time) -> µs; None: now."""
    if text is None:
        return now_us()
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(
            f"at={text!r} is not a date-time; use ISO 8601 such as 2026-11-23T21:30 (Hong Kong "
            "time) or 2026-11-23T13:30Z"
        ) from None
    if dt.tzinfo is None:
        dt = datetime.fromisoformat(dt.isoformat() + HKT_OFFSET)
    return int(dt.timestamp() * 1_000_000)


@router.get("/crowds")
def list_venues() -> Response:
    """The venues the crowd analysis knows."""
    return _json({"venues": [{"id": v, "url": f"/api/v1/analytics/crowds/{v}"} for v in venues()]})


@router.get("/crowds/{venue_id}")
def venue_status(
    request: Request, venue_id: str, at: str | None = None, window: int = crowds.WINDOW_S
) -> Response:
    """Per zone: people, density (people/m²), speed, flow (people/m/min), Fruin LOS and alert
    rung; the venue's egress time through its gates against the Green Guide's 8 minutes."""
    if venue_id not in venues():
        return _problem(404, f"no venue {venue_id!r}; known: {', '.join(venues())}")
    if not 10 <= window <= 3600:
        return _problem(400, f"window={window}: seconds between 10 and 3600")
    try:
        at_us = parse_at(at)
    except BadQuery as exc:
        return _problem(400, str(exc))
    venue = load_venue(venue_id)
    sensors = [s for z in venue.zones for s in z.sensors]
    readings = from_hub(
        hub(request).temporal,
        "CrowdFlowObserved",
        crowds.ATTRS,
        at_us - window * 1_000_000,
        at_us + 1,
        ids=sensors,
    )
    return _json(crowds.assess(venue, readings, at_us, window_s=window).to_json())


@router.get("/crowds/{venue_id}/alerts")
def venue_alerts(request: Request, venue_id: str, all: bool = False) -> Response:
    """The venue's crowd alerts (active ones; ``all=true``: cleared ones too)."""
    if venue_id not in venues():
        return _problem(404, f"no venue {venue_id!r}; known: {', '.join(venues())}")
    found = alert_store.alerts(hub(request).entities, crowds.ANALYSIS)
    prefix = f"{alert_store.ID_PREFIX}{crowds.ANALYSIS}:{venue_id}."
    mine = [a for a in found if a["id"].startswith(prefix) and (all or not a.get("validTo"))]
    return _json({"alerts": mine})


@router.get("/water")
def water_status(request: Request, at: str | None = None, nights: int = water.NIGHTS) -> Response:
    """Every DMA ranked by its night leakage, with its nights (MNF, legitimate use, leakage)
    and what the detection found (burst, rising, none)."""
    if not 9 <= nights <= MAX_NIGHTS:
        return _problem(400, f"nights={nights}: between 9 and {MAX_NIGHTS}")
    try:
        at_us = parse_at(at)
    except BadQuery as exc:
        return _problem(400, str(exc))
    readings = water.night_readings(hub(request).temporal, at_us, nights)
    return _json(water.assess(readings, at_us).to_json())


@router.get("/water/alerts")
def water_alerts(request: Request, all: bool = False) -> Response:
    """The water alerts (active ones; ``all=true``: cleared ones too)."""
    found = alert_store.alerts(hub(request).entities, water.ANALYSIS)
    return _json({"alerts": [a for a in found if all or not a.get("validTo")]})
