"""The live files of a published entity type, generated on request from the hub:
``/dataset/{id or name}/live/current.csv``, ``current.geojson``, ``history`` (the days, JSON)
and ``history/{YYYY-MM-DD}.csv``. Whoever may see the dataset may download them; a private
dataset's files are as invisible as the dataset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.citydata import exports
from smartcity.opendata.citydata.publish import TENANT_EXTRA, TYPE_EXTRA
from smartcity.opendata.ckan import envelope
from smartcity.opendata.ckan.endpoints import authenticate, opendata
from smartcity.opendata.errors import NotFound, OpenDataError, ValidationFailed

router = APIRouter(tags=["Open data (live city datasets)"])
HISTORY_DAYS = 31  # days listed by the history index (any earlier day may still be asked for)
NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _entity_type(request: Request, principal: Principal, key: str) -> exports.EntityType:
    od = opendata(request)
    with od.catalogue.db.read() as conn:
        row = od.catalogue.visible_dataset(conn, principal, key)
    extras = row.extras or {}
    if TYPE_EXTRA not in extras:
        raise NotFound(f"dataset {key!r} is not a live city dataset (publish-type makes one)")
    return exports.EntityType(str(extras[TYPE_EXTRA]), str(extras.get(TENANT_EXTRA) or ""))


async def _resolve(request: Request, key: str) -> exports.EntityType:
    principal = await run_in_threadpool(authenticate, request)
    return await run_in_threadpool(_entity_type, request, principal, key)


def _stream(body: Iterator[bytes], media_type: str, filename: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **NO_CACHE},
    )


def _hub(request: Request) -> Any:
    return request.app.state.hub


@router.get("/dataset/{key}/live/current.csv", summary="A live dataset's entities now (CSV)")
async def current_csv(request: Request, key: str) -> Response:
    try:
        etype = await _resolve(request, key)
    except OpenDataError as exc:
        return envelope.failed("", exc)
    body = exports.current_csv(_hub(request), etype)
    return _stream(body, "text/csv; charset=utf-8", f"{key}.csv")


@router.get(
    "/dataset/{key}/live/current.geojson", summary="A live dataset's entities now (GeoJSON)"
)
async def current_geojson(request: Request, key: str) -> Response:
    try:
        etype = await _resolve(request, key)
    except OpenDataError as exc:
        return envelope.failed("", exc)
    body = exports.current_geojson(_hub(request), etype)
    return _stream(body, "application/geo+json", f"{key}.geojson")


def today() -> dt.date:
    return dt.datetime.now(exports.HKT).date()


@router.get("/dataset/{key}/live/history", summary="A live dataset's daily history files")
async def history_index(request: Request, key: str) -> Response:
    try:
        await _resolve(request, key)
    except OpenDataError as exc:
        return envelope.failed("", exc)
    base = str(request.base_url).rstrip("/") + request.url.path
    days = [today() - dt.timedelta(days=n) for n in range(HISTORY_DAYS)]
    body = {
        "timezone": "Asia/Hong_Kong",
        "days": [{"date": d.isoformat(), "url": f"{base}/{d.isoformat()}.csv"} for d in days],
        "note": "any earlier day is at the same address; today's file grows until midnight",
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=NO_CACHE)


@router.get(
    "/dataset/{key}/live/history/{day}.csv", summary="What the hub recorded on one day (CSV)"
)
async def history_day(request: Request, key: str, day: str) -> Response:
    try:
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            raise ValidationFailed.one("day", "must be a date: YYYY-MM-DD") from None
        if date > today():
            raise ValidationFailed.one("day", f"{day} has not happened yet (Hong Kong time)")
        etype = await _resolve(request, key)
    except OpenDataError as exc:
        return envelope.failed("", exc)
    body = exports.history_csv(_hub(request), etype, date)
    return _stream(body, "text/csv; charset=utf-8", f"{key}-{day}.csv")
