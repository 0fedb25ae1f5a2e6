"""``/api/v1/analytics/parking``: car park vacancy forecasts, "likely full on arrival",
alerts when a car park is about to fill, occupancy profiles (docs/analytics.md, Parking)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request

from smartcity.analytics.parking.service import ParkingService
from smartcity.analytics.tenancy import analytics_tenant, refuse_if_private
from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.runtime import Hub

router = APIRouter(prefix="/api/v1/analytics/parking", tags=["Analytics"])


class Parking:
    def __init__(self, hub: Hub) -> None:
        tenant, self.private = analytics_tenant(hub)
        self.service = ParkingService(hub.temporal, hub.entities, tenant)


def install(app: FastAPI, hub: Hub) -> Parking:
    parking = Parking(hub)
    app.state.parking = parking
    app.include_router(router)
    return parking


def _service(request: Request) -> ParkingService:
    parking: Parking = request.app.state.parking
    refuse_if_private(parking.private)
    return parking.service


ServiceDep = Annotated[ParkingService, Depends(_service)]


@router.get("", summary="Every car park: free spaces, forecasts, likely full on arrival")
def parking_status(service: ServiceDep) -> dict[str, Any]:
    return service.status()


@router.get("/alerts", summary="Car parks about to fill")
def parking_alerts(service: ServiceDep) -> dict[str, Any]:
    return service.alerts()


@router.get("/{entity_id:path}", summary="One car park: status, observed series, profile")
def parking_car_park(entity_id: str, service: ServiceDep) -> dict[str, Any]:
    found = service.car_park(entity_id)
    if found is None:
        raise ResourceNotFound(
            f"no car park {entity_id} with availableSpotNumber history (new car parks are "
            "included at the next hourly refit)"
        )
    return found
