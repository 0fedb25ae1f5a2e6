"""``GET /datastore/dump/{resource_id}``: CKAN's dump of a resource's table, streamed.

Parameters as CKAN's: ``format`` (csv, tsv, json, xlsx), ``bom`` (a UTF-8 byte-order mark
before CSV/TSV, which Excel needs to read UTF-8), ``q``, ``filters``, ``fields``, ``sort``,
``limit``, ``offset``. Who may not see the dataset gets CKAN's Not Found, as for a resource
that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.ckan import envelope, params
from smartcity.opendata.ckan.endpoints import authenticate, opendata
from smartcity.opendata.ckan.requests import query_params
from smartcity.opendata.datastore import dump, physical
from smartcity.opendata.datastore import search as s
from smartcity.opendata.datastore.store import DataStore, Registered, name_list
from smartcity.opendata.errors import OpenDataError, ValidationFailed

router = APIRouter(tags=["Open data (CKAN Action API)"])


def _json(data: dict[str, Any], name: str) -> Any:
    value = params.text(data, name)
    if value and value.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValidationFailed.one(name, "is not valid JSON") from None
    return value


@router.get("/datastore/dump/{resource_id}", summary="A DataStore table as CSV, TSV, JSON or XLSX")
async def dump_table(request: Request, resource_id: str) -> Response:
    data = query_params(request)
    try:
        fmt = (params.text(data, "format") or "csv").lower()
        if fmt not in dump.MEDIA_TYPES:
            raise ValidationFailed.one("format", "must be csv, tsv, json or xlsx")
        principal = await run_in_threadpool(authenticate, request)
        store: DataStore = opendata(request).datastore
        found: Registered = await run_in_threadpool(store.readable, principal, resource_id)
        q = _json(data, "q")
        search = s.SearchParams(
            filters=_json(data, "filters") or {},
            q=q or None,
            fields=name_list(params.text(data, "fields"), "fields") or None,
            sort=s.parse_sort(found, params.text(data, "sort")),
            limit=params.integer(data, "limit", 0) or 0,
            offset=params.integer(data, "offset", 0) or 0,
        )
        s.query(found, search)  # a bad filter or field answers before the stream starts
    except OpenDataError as exc:
        return envelope.failed("", exc)
    names = search.fields or [physical.ROW_ID, *(f.id for f in found.fields)]

    def rows() -> Iterator[tuple[list[str], list[Any]]]:
        with store.db.snapshot() as conn:
            yield from s.stream(conn, found, search)

    body: Iterator[bytes]
    if fmt in ("csv", "tsv"):
        body = dump.delimited(rows(), names, tab=fmt == "tsv", bom=params.boolean(data, "bom"))
    elif fmt == "json":
        by_id = {f.id: f.as_dict() for f in found.fields}
        fields = [by_id.get(n, {"id": n, "type": "int"}) for n in names]
        body = dump.json_lines(rows(), fields)
    else:
        body = dump.xlsx(rows(), names)
    return StreamingResponse(
        body,
        media_type=dump.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{resource_id}.{fmt}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-cache",
        },
    )
