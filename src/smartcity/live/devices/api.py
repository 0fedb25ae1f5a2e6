"""The device registry over HTTP: ``/api/v1/devices`` (needs a write API key for the tenant)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from smartcity.hub.api.deps import require
from smartcity.hub.api.negotiation import TENANT_PATTERN
from smartcity.hub.errors import ResourceNotFound
from smartcity.live.devices.schemas import DeviceCreate, DeviceOut
from smartcity.live.devices.service import Device, DeviceRegistry

router = APIRouter(prefix="/api/v1/devices", tags=["Devices"])


def registry(request: Request) -> DeviceRegistry:
    reg: DeviceRegistry = request.app.state.ingest.registry
    return reg


def _device(request: Request, device_id: str) -> Device:
    device = registry(request).get(device_id)
    if device is None:
        raise ResourceNotFound(f"device {device_id} is not registered")
    require(request, device.tenant, "write")
    return device


@router.post("", status_code=201, summary="Register a device (its secret is shown once)")
def create_device(spec: DeviceCreate, request: Request, response: Response) -> DeviceOut:
    require(request, spec.tenant, "write")
    device, secret = registry(request).create(spec)
    response.headers["Location"] = f"/api/v1/devices/{device.device_id}"
    return device.out(secret)


@router.get("", summary="List devices of a tenant (silent=true: silent for > 2x interval)")
def list_devices(
    request: Request,
    tenant: Annotated[str, Query(pattern=TENANT_PATTERN)] = "",
    status: Literal["new", "ok", "silent", "revoked"] | None = None,
    silent: bool = False,
) -> list[DeviceOut]:
    require(request, tenant, "write")
    reg = registry(request)
    devices = reg.silent(tenant=tenant) if silent else reg.devices(tenant, status=status)
    return [d.out() for d in devices]


@router.get("/{device_id}", summary="One device")
def get_device(device_id: str, request: Request) -> DeviceOut:
    return _device(request, device_id).out()


@router.delete("/{device_id}", status_code=204, summary="Revoke a device's credentials")
def revoke_device(device_id: str, request: Request) -> Response:
    _device(request, device_id)
    registry(request).revoke(device_id)
    return Response(status_code=204)
