"""The portal's read API under ``/api/v1``: measures, areas, KPIs, statuses, CSV exports.

Query parameters are checked by hand so every mistake (unknown parameter, unknown area or
status, bad boolean, out-of-range limit) gets a 400 ProblemDetails saying what is allowed.
Problems use ``"type": "about:blank"`` (RFC 9457): the status code says it all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from smartcity.hub.api.deps import hub
from smartcity.portal.blueprint.model import AREAS
from smartcity.portal.measures import csvio
from smartcity.portal.measures.errors import PortalError
from smartcity.portal.measures.schemas import KpiView
from smartcity.portal.measures.service import MeasureService

router = APIRouter(tags=["Portal"])
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
MAX_Q = 200
MEASURE_PARAMS = {"area", "status", "is_new", "q", "limit", "offset"}
CSV_TYPE = "text/csv; charset=utf-8"
# Excel only reads a CSV as UTF-8 (rather than the system's ANSI code page, which garbles
# Chinese) when the file starts with a byte order mark.
BOM = "\ufeff"


class BadQuery(PortalError):
    status = 400
    title = "Bad Request"


def _problem(exc: PortalError) -> Response:
    body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
    return Response(
        orjson.dumps(body), status_code=exc.status, media_type="application/problem+json"
    )


def _json(value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value), media_type="application/json", headers=headers)


def _service(request: Request) -> MeasureService:
    return MeasureService(hub(request).db)


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    params = request.query_params
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadQuery(
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: "
            + (", ".join(sorted(allowed)) or "none")
        )
    for name in params:
        if len(params.getlist(name)) > 1:
            raise BadQuery(f"give {name} once")
    return dict(params)


def _filters(service: MeasureService, params: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    area = params.get("area")
    if area is not None:
        if area not in AREAS:
            raise BadQuery(f"unknown area {area!r}; areas are: {', '.join(AREAS)}")
        out["area"] = area
    status = params.get("status")
    if status is not None:
        codes = [s.code for s in service.statuses()]
        if status not in codes:
            raise BadQuery(f"unknown status {status!r}; statuses are: {', '.join(codes)}")
        out["status"] = status
    is_new = params.get("is_new")
    if is_new is not None:
        lowered = is_new.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise BadQuery(f"is_new must be true or false, not {is_new!r}")
        out["is_new"] = lowered in ("true", "1")
    q = params.get("q")
    if q is not None and q.strip():
        if len(q) > MAX_Q:
            raise BadQuery(f"q is limited to {MAX_Q} characters")
        out["q"] = q
    return out


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low} and {high}, not {value}")
    return value


@router.get("/measures", summary="List the blueprint's measures with their progress")
def list_measures(request: Request) -> Response:
    """Filters: area, status, is_new, q (words in any of the three languages); limit (default
    200, at most 1000) and offset. The total is in the X-Total-Count header."""
    try:
        service = _service(request)
        params = _params(request, MEASURE_PARAMS)
        filters = _filters(service, params)
        limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int(params, "offset", 0, 0, 1_000_000)
        total = service.count_measures(**filters)
        page = service.list_measures(**filters, limit=limit, offset=offset)
    except PortalError as exc:
        return _problem(exc)
    body = [m.model_dump(mode="json", by_alias=True) for m in page]
    return _json(body, {"X-Total-Count": str(total)})


@router.get("/measures.csv", summary="The measures as CSV (the import/export schema)")
def measures_csv(request: Request) -> Response:
    """Same filters as /measures (no paging); UTF-8 with a byte order mark for Excel."""
    try:
        service = _service(request)
        filters = _filters(service, _params(request, MEASURE_PARAMS - {"limit", "offset"}))
    except PortalError as exc:
        return _problem(exc)
    return _csv(BOM + csvio.to_csv(service.list_measures(**filters)), "measures.csv")


@router.get("/measures/{measure_id}", summary="One measure")
def get_measure(request: Request, measure_id: str) -> Response:
    try:
        _params(request, set())
        measure = _service(request).get_measure(measure_id)
    except PortalError as exc:
        return _problem(exc)
    return _json(measure.model_dump(mode="json", by_alias=True))


@router.get("/measures/{measure_id}/timeline", summary="A measure's changes, newest first")
def measure_timeline(request: Request, measure_id: str) -> Response:
    try:
        _params(request, set())
        entries = _service(request).timeline(measure_id)
    except PortalError as exc:
        return _problem(exc)
    return _json([e.model_dump(mode="json") for e in entries])


@router.get("/areas", summary="The eight areas with rolled-up progress and status counts")
def list_areas(request: Request) -> Response:
    try:
        _params(request, set())
    except PortalError as exc:
        return _problem(exc)
    service = _service(request)
    return _json([a.model_dump(mode="json", by_alias=True) for a in service.area_summaries()])


@router.get("/progress", summary="The whole blueprint's rolled-up progress")
def blueprint_progress(request: Request) -> Response:
    service = _service(request)
    return _json({"progress": service.blueprint_progress(), "measures": service.count_measures()})


@router.get("/statuses", summary="The status catalogue")
def list_statuses(request: Request) -> Response:
    return _json([s.model_dump(mode="json", by_alias=True) for s in _service(request).statuses()])


def _kpis(request: Request) -> list[KpiView]:
    params = _params(request, {"area"})
    area = params.get("area")
    if area is not None and area not in AREAS:
        raise BadQuery(f"unknown area {area!r}; areas are: {', '.join(AREAS)}")
    return _service(request).kpis(area)


@router.get("/kpis", summary="Current-situation figures (filter: area)")
def list_kpis(request: Request) -> Response:
    try:
        kpis = _kpis(request)
    except PortalError as exc:
        return _problem(exc)
    return _json([k.model_dump(mode="json", by_alias=True) for k in kpis])


KPI_COLUMNS = (
    "id",
    "area",
    *(f"label/{lang}" for lang in csvio.LANG_KEYS),
    "qualifier",
    "value",
    *(f"unit/{lang}" for lang in csvio.LANG_KEYS),
    "as_of",
    *(f"text/{lang}" for lang in csvio.LANG_KEYS),
)


def kpis_to_csv(kpis: Iterable[KpiView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(KPI_COLUMNS)
    for k in kpis:
        writer.writerow(
            [k.id, k.area, *(k.label.get(x) for x in csvio.LANG_KEYS), k.qualifier, repr(k.value)]
            + [*(k.unit.get(x) for x in csvio.LANG_KEYS), k.as_of]
            + [k.text.get(x) for x in csvio.LANG_KEYS]
        )
    return out.getvalue()


@router.get("/kpis.csv", summary="Current-situation figures as CSV")
def kpis_csv(request: Request) -> Response:
    """UTF-8 with a byte order mark so Excel shows the Chinese labels correctly."""
    try:
        kpis = _kpis(request)
    except PortalError as exc:
        return _problem(exc)
    return _csv(BOM + kpis_to_csv(kpis), "kpis.csv")


def _csv(text: str, filename: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
