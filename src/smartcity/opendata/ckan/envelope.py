"""CKAN's response envelope: ``{"help", "success", "result"}``, or ``"error"`` with
``__type`` and a message (per-field messages for a Validation Error), with CKAN's status
codes. ckanapi turns each ``__type`` back into its exception class."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from smartcity.opendata.errors import OpenDataError, ValidationFailed

MEDIA_TYPE = "application/json;charset=utf-8"
# Answers can be cached by nobody: they depend on the caller's key.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def ok(help_url: str, result: Any) -> Response:
    body = {"help": help_url, "success": True, "result": result}
    return Response(orjson.dumps(body), media_type=MEDIA_TYPE, headers=HEADERS)


def error_body(exc: OpenDataError) -> dict[str, Any]:
    if isinstance(exc, ValidationFailed):
        return {"__type": exc.type_name, **exc.errors}  # per field, as CKAN: no "message"
    prefixes = {
        "Not Found Error": "Not found: ",
        "Authorization Error": "Access denied: ",
        "Bad Request": "Bad request - ",
        "Search Query Error": "Search Query is invalid: ",
    }
    return {"__type": exc.type_name, "message": prefixes.get(exc.type_name, "") + exc.message}


def failed(help_url: str, exc: OpenDataError) -> Response:
    body = {"help": help_url, "success": False, "error": error_body(exc)}
    return Response(
        orjson.dumps(body), status_code=exc.status, media_type=MEDIA_TYPE, headers=HEADERS
    )
