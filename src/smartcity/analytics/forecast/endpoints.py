"""``/api/v1/analytics/forecasts/traffic``: speed (or flow) forecasts 15, 30 and 60 minutes
ahead for every traffic detector, with the observed series (docs/analytics.md, Forecasts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request

from smartcity.analytics.forecast.serving import ATTRIBUTES, ForecastService, Snapshot
from smartcity.analytics.tenancy import analytics_tenant, refuse_if_private
from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.runtime import Hub

router = APIRouter(prefix="/api/v1/analytics/forecasts", tags=["Analytics"])


class Forecasts:
    def __init__(self, hub: Hub) -> None:
        tenant, self.private = analytics_tenant(hub)
        self.service = ForecastService(hub.temporal, tenant)


def install(app: FastAPI, hub: Hub) -> Forecasts:
    forecasts = Forecasts(hub)
    app.state.forecasts = forecasts
    app.include_router(router)
    return forecasts


def _service(request: Request) -> ForecastService:
    forecasts: Forecasts = request.app.state.forecasts
    refuse_if_private(forecasts.private)
    return forecasts.service


ServiceDep = Annotated[ForecastService, Depends(_service)]
AttributeQuery = Annotated[
    str,
    Query(description="What to forecast: averageVehicleSpeed (km/h) or intensity (vehicles)"),
]


def _snapshot(service: ForecastService, attribute: str) -> Snapshot:
    if attribute not in ATTRIBUTES:
        raise HTTPException(
            400, f"attribute {attribute!r} cannot be forecast; use one of {', '.join(ATTRIBUTES)}"
        )
    return service.current(attribute)


@router.get("/traffic", summary="Forecasts for every traffic detector")
def traffic_forecasts(
    service: ServiceDep,
    attribute: AttributeQuery = "averageVehicleSpeed",
    series: Annotated[bool, Query(description="Include each observed series (24 h)")] = False,
) -> dict[str, Any]:
    """The latest 5-minute mean and forecasts 15, 30 and 60 minutes ahead per detector."""
    return _snapshot(service, attribute).document(with_series=series)


@router.get("/traffic/{entity_id:path}", summary="One detector's forecasts and observed series")
def traffic_forecast(
    entity_id: str, service: ServiceDep, attribute: AttributeQuery = "averageVehicleSpeed"
) -> dict[str, Any]:
    snap = _snapshot(service, attribute)
    try:
        i = snap.ids.index(entity_id)
    except ValueError:
        raise ResourceNotFound(
            f"no forecast for {entity_id}: not a TrafficFlowObserved entity with {attribute} "
            "history (new detectors are included at the next hourly refit)"
        ) from None
    return snap.document(with_series=True, only=i)
