"""``/api/v1/analytics/traffic/...``: the stored traffic results as JSON or CSV.

Each result is read from the Parquet written by ``smartcity analytics traffic run``; ``date``
(a Hong Kong day) defaults to the latest day analysed. ``format=csv`` (or ``Accept:
text/csv``) gives CSV with the same columns as the JSON rows.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from smartcity.analytics.traffic.measures import LEVELS, PERIODS
from smartcity.analytics.traffic.pipeline import Store
from smartcity.hub.errors import BadRequestData, ResourceNotFound

router = APIRouter(prefix="/api/v1/analytics/traffic", tags=["Analytics: traffic"])
CSV_TYPE = "text/csv; charset=utf-8"

DateQ = Annotated[str | None, Query(description="Hong Kong day YYYY-MM-DD (default: latest)")]
FormatQ = Annotated[str | None, Query(alias="format", description="json (default) or csv")]


def _store() -> Store:
    return Store()  # $SMARTCITY_HOME read per request: the CLI and the server agree


def _load(kind: str, day: str | None) -> tuple[date, pa.Table]:
    store = _store()
    days = store.days(kind)
    if day is None:
        if not days:
            raise ResourceNotFound(
                f"no traffic {kind} results yet: run `smartcity analytics traffic run`"
            )
        the_day = days[-1]
    else:
        try:
            the_day = date.fromisoformat(day)
        except ValueError:
            raise BadRequestData(f"date {day!r} is not YYYY-MM-DD") from None
    table = store.read(kind, the_day)
    if table is None:
        available = ", ".join(d.isoformat() for d in days[-5:]) or "none"
        raise ResourceNotFound(f"no traffic {kind} results for {the_day} (latest: {available})")
    return the_day, table


def _plain(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text, so JSON and CSV read the same."""
    cols = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_timestamp(col.type):
            seconds = col.cast(pa.timestamp("s", tz="UTC"), safe=False)
            col = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _respond(request: Request, kind: str, day: date, table: pa.Table, fmt: str | None) -> Response:
    table = _plain(table)
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if fmt not in (None, "json", "csv"):
        raise BadRequestData(f"format {fmt!r}: use json or csv")
    if wants_csv:
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        return Response(
            buf.getvalue(),
            media_type=CSV_TYPE,
            headers={"Content-Disposition": f'attachment; filename="traffic-{kind}-{day}.csv"'},
        )
    body: dict[str, Any] = {
        "date": day.isoformat(),
        "count": table.num_rows,
        "results": table.to_pylist(),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _where(table: pa.Table, **equal: str | None) -> pa.Table:
    for column, value in equal.items():
        if value is not None:
            table = table.filter(pc.equal(table[column], value))
    return table


@router.get("/days", summary="Days with stored traffic results")
def days() -> dict[str, list[str]]:
    return {"days": [d.isoformat() for d in _store().days("health")]}


@router.get("/health", summary="Daily detector health (PeMS cascade)")
def health(
    request: Request,
    date: DateQ = None,
    detector: Annotated[str | None, Query(description="One detector id")] = None,
    lanes: Annotated[bool, Query(description="Per lane instead of per station")] = False,
    fmt: FormatQ = None,
) -> Response:
    kind = "health_lanes" if lanes else "health"
    day, table = _load(kind, date)
    return _respond(request, kind, day, _where(table, detector_id=detector), fmt)


@router.get("/5min", summary="5-minute values per station (imputed ones marked) or per lane")
def five_minutes(
    request: Request,
    date: DateQ = None,
    detector: Annotated[str | None, Query(description="One detector id")] = None,
    lanes: Annotated[bool, Query(description="Per lane, as measured (no imputation)")] = False,
    fmt: FormatQ = None,
) -> Response:
    kind = "lane5" if lanes else "clean5"
    day, table = _load(kind, date)
    return _respond(request, kind, day, _where(table, detector_id=detector), fmt)


@router.get("/measures", summary="VKT, VHT, delay, speed, TTI, congested minutes")
def performance(
    request: Request,
    date: DateQ = None,
    level: Annotated[str, Query(description="detector, road or district")] = "detector",
    period: Annotated[str, Query(description="5min, hour or day")] = "hour",
    key: Annotated[str | None, Query(description="One detector, road or district")] = None,
    fmt: FormatQ = None,
) -> Response:
    if level not in LEVELS or period not in PERIODS:
        raise BadRequestData(
            f"level is one of {', '.join(LEVELS)}; period one of {', '.join(PERIODS)}"
        )
    day, table = _load("measures", date)
    return _respond(
        request, "measures", day, _where(table, level=level, period=period, key=key), fmt
    )


@router.get("/bottlenecks", summary="Active bottlenecks per day (PeMS rule)")
def bottlenecks(
    request: Request,
    date: DateQ = None,
    slots: Annotated[bool, Query(description="Every active 5-minute slot")] = False,
    fmt: FormatQ = None,
) -> Response:
    kind = "bottleneck_slots" if slots else "bottlenecks"
    day, table = _load(kind, date)
    return _respond(request, kind, day, table, fmt)


@router.get("/segments", summary="Road network segment speeds per hour (TD's processed feed)")
def segment_hours(
    request: Request,
    date: DateQ = None,
    segment: Annotated[str | None, Query(description="One IRN segment id")] = None,
    fmt: FormatQ = None,
) -> Response:
    day, table = _load("segment_hours", date)
    return _respond(request, "segments", day, _where(table, segment_id=segment), fmt)


@router.get("/reliability", summary="Journey-time buffer and planning time indices")
def reliability(request: Request, date: DateQ = None, fmt: FormatQ = None) -> Response:
    day, table = _load("reliability", date)
    return _respond(request, "reliability", day, table, fmt)
