"""The compact measurement endpoint for devices: ``POST /api/v1/devices/{id}/readings``.

The device authenticates with its own secret (``Authorization: Bearer <secret>`` or
``X-Device-Key``). The body is one reading or a list of up to ``MAX_BATCH`` readings. The
answer comes only after the readings are committed: a 2xx means they survive a crash.
A batch is answered item by item (207 when some items were refused); bad items never
drop good ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from smartcity.hub.errors import BadRequestData, NgsiError, PayloadTooLarge, Unauthorized
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.live.devices.service import Device, DeviceRegistry
from smartcity.live.ingest.readings import Reading, Rejected, parse_reading
from smartcity.live.ingest.runtime import Ingest
from smartcity.live.ingest.writer import Outcome, Submission

MAX_BATCH = 1_000
MAX_BODY = 1024 * 1024
RETRY_AFTER_S = 1

router = APIRouter(prefix="/api/v1", tags=["Device ingestion"])


class ServiceUnavailable(NgsiError):
    type_name = "ServiceUnavailable"  # not an NGSI-LD error type; used for overload
    status = 503
    title = "Service unavailable"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _overloaded(detail: str) -> Response:
    problem = ServiceUnavailable(detail).problem()
    return _json(problem, 503, {"Retry-After": str(RETRY_AFTER_S)})


def authenticate(registry: DeviceRegistry, device_id: str, request: Request) -> Device:
    """The device, if the request carries its secret. Unknown, revoked and wrong-secret all
    answer 401 alike, so the endpoint does not reveal which device ids exist."""
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    secret = token.strip() if kind.lower() == "bearer" else request.headers.get("x-device-key")
    device = registry.cached(device_id)
    ingest: Ingest = request.app.state.ingest
    reason = None
    if device is None:
        reason = "unknown_device"
    elif device.revoked_at is not None:
        reason = "revoked"
    elif not registry.verify(device, secret):
        reason = "bad_credentials"
    if reason is not None or device is None:
        ingest.metrics.add(received=1)
        ingest.metrics.reject(reason or "unknown_device")
        raise Unauthorized(
            f"device {device_id}: send its secret as 'Authorization: Bearer <secret>' "
            "(unknown devices and revoked or wrong secrets are refused alike)"
        )
    return device


@router.post(
    "/devices/{device_id}/readings",
    summary="Send readings: one object, or a list of up to 1,000",
    responses={207: {"description": "some items were refused (see results)"}, 503: {}},
)
async def post_readings(device_id: str, request: Request) -> Response:
    ingest: Ingest = request.app.state.ingest
    device = authenticate(ingest.registry, device_id, request)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes; send smaller batches")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        ingest.metrics.add(received=1)
        ingest.metrics.reject("malformed")
        raise BadRequestData(f"the body is not valid JSON: {exc}") from None
    single = not isinstance(payload, list)
    items = [payload] if single else payload
    if not items:
        raise BadRequestData("an empty list holds no readings")
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"at most {MAX_BATCH} readings per request, got {len(items)}")
    now = now_us()
    ingest.metrics.add(received=len(items))
    readings: list[Reading] = []
    results: list[dict[str, Any]] = []
    accepted: list[int] = []  # index in results of each reading
    for index, item in enumerate(items):
        try:
            reading = parse_reading(device, item, now)
        except Rejected as exc:
            ingest.metrics.reject(exc.reason)
            results.append(
                {"index": index, "status": "rejected", "reason": exc.reason, "detail": exc.detail}
            )
            continue
        result: dict[str, Any] = {"index": index, "t": reading.observed_at}
        if reading.ignored:
            result["ignored"] = reading.ignored
        results.append(result)
        accepted.append(index)
        readings.append(reading)
    if single and not readings:
        raise BadRequestData(results[0]["detail"], reason=results[0]["reason"])
    if readings:
        outcome = await _submit(ingest, readings)
        if outcome is None:
            ingest.metrics.reject("overload", len(readings))
            return _overloaded(
                f"ingestion is saturated ({ingest.writer.pending} readings queued); "
                f"retry after {RETRY_AFTER_S} s"
            )
        if outcome.error is not None:
            if outcome.retryable:
                return _overloaded(f"{outcome.error}; retry later")
            raise NgsiError(outcome.error)
        for index, status in zip(accepted, outcome.statuses, strict=True):
            results[index]["status"] = status
    if single:
        return _json(results[0])
    refused = sum(1 for r in results if r["status"] == "rejected")
    status_code = 200 if not refused else (207 if refused < len(results) else 400)
    return _json({"results": results, "accepted": len(results) - refused}, status_code)


async def _submit(ingest: Ingest, readings: list[Reading]) -> Outcome | None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Outcome] = loop.create_future()

    def resolve(outcome: Outcome) -> None:
        if not future.done():
            future.set_result(outcome)

    def done(outcome: Outcome) -> None:  # in the writer's thread
        loop.call_soon_threadsafe(resolve, outcome)

    submission = Submission(readings, done)
    if not ingest.writer.offer(submission, timeout=0):
        return None
    # Shielded: a client that disconnects does not cancel the write, only its answer.
    return await asyncio.shield(future)


@router.get("/ingest/metrics", summary="Ingestion counters of this server process")
def ingest_metrics(request: Request) -> dict[str, Any]:
    ingest: Ingest = request.app.state.ingest
    snapshot = ingest.metrics.snapshot()
    snapshot["queued"] = ingest.writer.pending
    snapshot["queueCapacity"] = ingest.writer.capacity
    snapshot["mqtt"] = ingest.mqtt.status() if ingest.mqtt is not None else None
    snapshot["at"] = iso_from_us(now_us())
    return snapshot
