"""DATA.GOV.HK's historical archive API on this site: ``/api/v1/historical-archive/...``.

GET only, query parameters as DATA.GOV.HK takes them; answers are JSON (the lists) or the
archived content itself (``get-file``, ``get-data-dictionary``: served here, where DATA.GOV.HK
redirects to its file store). Errors are ``{"errors": [{"parameter", "message"}]}`` with
status 400 (a parameter missing or unreadable), 403 (an unknown API key) or 404 (no such
file or version).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.archive.queries import ArchiveError, ArchiveQueries
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.ckan.endpoints import authenticate, opendata
from smartcity.opendata.errors import OpenDataError

router = APIRouter(prefix="/api/v1/historical-archive", tags=["Open data (historical archive)"])


def _errors(status: int, errors: list[dict[str, str]]) -> Response:
    return JSONResponse({"errors": errors}, status_code=status)


async def _answer(
    request: Request, work: Callable[[ArchiveQueries, Principal, dict[str, str]], Any]
) -> Any:
    params = {k: v for k, v in request.query_params.items()}
    try:
        principal = await run_in_threadpool(authenticate, request)
        return await run_in_threadpool(work, opendata(request).archive_queries, principal, params)
    except ArchiveError as exc:
        return _errors(exc.status, exc.errors)
    except OpenDataError as exc:
        return _errors(exc.status, [{"parameter": "", "message": exc.message}])


def _file(found: Any) -> Response:
    if isinstance(found, Response):
        return found
    return FileResponse(
        found.path,
        media_type=found.mimetype,
        filename=found.filename,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.get("/list-files", summary="Archived files with a version in a period")
async def list_files(request: Request) -> Any:
    base = str(request.base_url).rstrip("/")
    found = await _answer(request, lambda q, p, params: q.list_files(p, params, base))
    return found if isinstance(found, Response) else JSONResponse(found)


@router.get("/list-file-versions", summary="A file's version timestamps in a period")
async def list_file_versions(request: Request) -> Any:
    found = await _answer(request, lambda q, p, params: q.list_file_versions(p, params))
    return found if isinstance(found, Response) else JSONResponse(found)


@router.get("/get-file", summary="A file as it was at a version's timestamp")
async def get_file(request: Request) -> Response:
    return _file(await _answer(request, lambda q, p, params: q.get_file(p, params)))


@router.get("/get-data-dictionary", summary="A file's data dictionary as it was on a date")
async def get_data_dictionary(request: Request) -> Response:
    return _file(await _answer(request, lambda q, p, params: q.get_data_dictionary(p, params)))
