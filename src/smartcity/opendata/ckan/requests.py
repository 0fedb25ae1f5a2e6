"""What a CKAN request carries: parameters from the query string (GET), a JSON body, or a
form (multipart, with a file in ``upload``), read with limits.

A JSON body is capped at the platform's body limit (``Limits.max_body_bytes``); a multipart
body at the upload limit plus room for the other fields, counted while it streams in, so
an oversized upload is refused without being kept.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from smartcity.config import Limits
from smartcity.opendata.catalogue.service import Upload
from smartcity.opendata.errors import BadRequest, ValidationFailed

FORM_OVERHEAD = 1024 * 1024  # the other fields of a multipart upload
MAX_DEPTH = 32


def query_params(request: Request) -> dict[str, Any]:
    """GET parameters; a name given more than once becomes a list (as CKAN does)."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    return out


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


async def _limited(request: Request, limit: int, what: str) -> AsyncGenerator[bytes, None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ValidationFailed.one(what, f"the request is larger than {limit} bytes")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValidationFailed.one(what, f"the request is larger than {limit} bytes")
        yield chunk


async def body_params(
    request: Request, limits: Limits, max_upload: int
) -> tuple[dict[str, Any], Upload | None]:
    """A POST's parameters and its uploaded file, if any."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        parser = MultiPartParser(
            request.headers,
            _limited(request, max_upload + FORM_OVERHEAD, "upload"),
            max_files=1,
            max_fields=200,
        )
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise BadRequest(f"the multipart form cannot be read: {exc.message}") from None
        data: dict[str, Any] = {}
        upload: Upload | None = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "upload":
                    raise ValidationFailed.one(key, "send files in the field 'upload'")
                upload = Upload(value.filename or "upload", value.file)
            else:
                data[key] = value
        return data, upload
    chunks = [chunk async for chunk in _limited(request, limits.max_body_bytes, "body")]
    raw = b"".join(chunks)
    if content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qsl

        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        # CKAN's old clients post the JSON document as the form's only key.
        if len(pairs) == 1 and pairs[0][1] in ("", "1") and pairs[0][0].lstrip().startswith("{"):
            raw = pairs[0][0].encode()
        else:
            return dict(pairs), None
    if not raw.strip():
        return {}, None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"JSON Error: the body is not valid JSON (UTF-8): {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(
            f"Bad request data: Request data JSON decoded to {type(body).__name__} but it "
            "needs to be a dictionary (a JSON object)"
        )
    if not _depth_ok(body, MAX_DEPTH):
        raise BadRequest(f"JSON Error: the body nests deeper than {MAX_DEPTH} levels")
    return body, None
