"""Request decoding and response encoding shared by every NGSI-LD endpoint.

Handles what the specification makes every endpoint do the same way: the tenant header, the
@context (``Link`` header for application/json, body member for application/ld+json), content
negotiation, body size and JSON depth limits, and ProblemDetails for anything malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.config import Limits
from smartcity.hub.context_fetch import check_context_url
from smartcity.hub.contexts import CORE_CONTEXT_URL, ContextStore
from smartcity.hub.errors import (
    BadRequestData,
    InvalidRequest,
    NgsiError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.text import may_hold_nul, refuse_nul

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_URI_CHARS = re.compile(r"^[\x21-\x7e]+$")
# A tenant name (NGSILD-Tenant); "" is the default tenant. Other APIs that take a tenant
# validate it with TENANT_PATTERN too.
TENANT_PATTERN = r"^[A-Za-z0-9_\-.:]{0,64}$"
_TENANT_RE = re.compile(TENANT_PATTERN)


def tenant_of(request: Request) -> str:
    raw = request.headers.get("ngsild-tenant") or request.headers.get("fiware-service") or ""
    tenant = raw.strip()
    if tenant and not _TENANT_RE.match(tenant):
        raise BadRequestData(
            "NGSILD-Tenant must be 1-64 characters of letters, digits, '_', '-', '.' or ':'"
        )
    return tenant


def link_context(request: Request) -> str | None:
    header = request.headers.get("link")
    if not header:
        return None
    found: list[str] = []
    for match in _LINK_RE.finditer(header):
        url, params = match.group(1), match.group(2)
        if CONTEXT_REL in params:
            found.append(url.strip())
    if len(found) > 1:
        raise BadRequestData("only one JSON-LD context Link header is allowed")
    if not found:
        return None
    url = found[0]
    if not re.match(r"^https?://", url):
        raise BadRequestData(f"the @context Link header must hold an http(s) URL, got {url!r}")
    if not _URI_CHARS.match(url):
        # A URI is printable ASCII (RFC 3986); other bytes (e.g. 0xff, read as Latin-1) would
        # otherwise reach the HTTP client and fail there as an unavailable context.
        raise BadRequestData(
            f"the @context Link header URL {url!r} holds characters a URL cannot hold; "
            "percent-encode them"
        )
    check_context_url(url)
    return url


@dataclass
class Decoded:
    body: Any
    context: Any  # the user @context (URL, object or list), None = core only
    active: ActiveContext


def _check_depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise BadRequestData(f"the JSON body nests deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


async def read_json(
    request: Request, limits: Limits, *, max_arrays: int | None = None, per_item: bool = False
) -> Any:
    """The JSON body, within the limits (the app's edge guard, hub/api/edge.py, has already
    bounded its size). ``max_arrays`` bounds the ``[`` characters of the raw body (an upper
    bound of its JSON arrays), checked before parsing: for bodies whose arrays are bounded by a
    limit (a Query's geometry), so that an oversized one costs no parse. A string holding
    U+0000 refuses the request (hub/text.py), unless ``per_item``: a batch then refuses only
    the items that hold one."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise PayloadTooLarge(f"the request body is larger than {limits.max_body_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise PayloadTooLarge(f"the request body is larger than {limits.max_body_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if max_arrays is not None and (arrays := raw.count(b"[")) > max_arrays:
        raise BadRequestData(
            f"the body holds {arrays} '[' characters, more than the {max_arrays} such a body "
            f"can need; a geometry (a geo-query, a subscription's geoQ, a registration's "
            f"location) may have at most {limits.max_geometry_points} positions (each one an "
            "array): simplify the geometry"
        )
    if not raw.strip():
        # An empty body is well-formed HTTP with no data in it (BadRequestData); a body that is
        # not JSON is a malformed request (InvalidRequest, clause 6.3.4).
        raise BadRequestData("the request has no body; send a JSON document")
    if len(raw) <= _PARSE_ON_LOOP:
        return _parse(raw, limits.max_json_depth, per_item)
    # Parsing and walking a large body takes a good part of a second (8 MiB: ~0.1 s to parse,
    # more to check its depth): work for a thread, not for the loop every request shares.
    return await run_in_threadpool(_parse, raw, limits.max_json_depth, per_item)


# Bodies up to this size (nearly every request) parse on the event loop: a few milliseconds
# at most, not worth a hop to a thread on every write.
_PARSE_ON_LOOP = 64 * 1024


def _parse(raw: bytes, max_depth: int, per_item: bool) -> Any:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON (UTF-8): {exc}") from None
    _check_depth(body, max_depth)
    if not per_item and may_hold_nul(raw):
        refuse_nul(body)
    return body


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def decode(
    request: Request,
    store: ContextStore,
    limits: Limits,
    *,
    allow_merge_patch: bool = False,
    body_is_list: bool = False,
    max_arrays: int | None = None,
) -> Decoded:
    """Read the body and work out its @context, as clause 6.3.5 prescribes (``max_arrays``:
    see ``read_json``)."""
    ctype = media_type(request)
    allowed = {JSON, JSONLD} | ({MERGE_PATCH} if allow_merge_patch else set())
    if ctype not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {ctype or '(none)'!r} is not supported here; use "
            + " or ".join(sorted(allowed))
        )
    body = await read_json(request, limits, max_arrays=max_arrays, per_item=body_is_list)
    context: Any = None
    if ctype == JSONLD:
        if request.headers.get("link") and link_context(request):
            raise BadRequestData(
                "with Content-Type application/ld+json the @context goes in the body, "
                "not in a Link header"
            )
        if body_is_list:
            # Each entity of a batch carries its own @context; a missing one is reported for
            # that entity (207), never for the whole batch.
            if not isinstance(body, list):
                raise BadRequestData("the body must be a JSON array")
        else:
            if not isinstance(body, dict) or "@context" not in body:
                raise BadRequestData(
                    "with Content-Type application/ld+json the body must have an @context member"
                )
            context = body["@context"]
    else:
        context = link_context(request)
        if not body_is_list and isinstance(body, dict) and "@context" in body:
            raise BadRequestData(
                "with Content-Type application/json the body must not contain @context; "
                "send it in a Link header or use application/ld+json"
            )
    return Decoded(body=body, context=context, active=await store.active_async(context))


async def request_context(request: Request, store: ContextStore) -> tuple[Any, ActiveContext]:
    """The @context of a GET/DELETE request: the Link header, or core only (a remote one is
    fetched without blocking the event loop)."""
    context = link_context(request)
    return context, await store.active_async(context)


def choose_accept(request: Request, *, geo: bool = False) -> str:
    header = request.headers.get("accept", "")
    if not header.strip():
        return JSON
    offered = [JSON, JSONLD] + ([GEOJSON] if geo else [])
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        mtype, quality = pieces[0].lower(), 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        candidates = offered if mtype in ("*/*", "application/*") else [mtype]
        for candidate in candidates:
            if candidate in offered:
                key = (quality, -index, candidate)
                if best is None or key[:2] > best[:2]:
                    best = key
                break
    if best is None:
        raise NotAcceptable(f"cannot produce any of {header!r}; accepted: {', '.join(offered)}")
    return best[2]


def context_url(context: Any) -> str:
    return context if isinstance(context, str) else CORE_CONTEXT_URL


def ngsi_response(
    content: Any,
    *,
    accept: str,
    context: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serialise a compacted payload with its @context, by media type (clause 6.3.6)."""
    out_headers = dict(headers or {})
    if accept == JSONLD:
        ld_context = context if context is not None else CORE_CONTEXT_URL
        if isinstance(content, list):
            content = [{**item, "@context": ld_context} for item in content]
        elif isinstance(content, dict):
            content = {**content, "@context": ld_context}
    else:
        out_headers["Link"] = (
            f'<{context_url(context)}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        )
    return Response(
        orjson.dumps(content), status_code=status, media_type=accept, headers=out_headers
    )


def geojson_response(
    content: dict[str, Any],
    request: Request,
    *,
    context: Any,
    headers: dict[str, str] | None = None,
) -> Response:
    """A GeoJSON Feature or FeatureCollection (clause 6.3.6): the @context goes in the body
    (top level only), unless the client sent ``Prefer: body=json``, then in a Link header."""
    prefer = request.headers.get("prefer", "").replace(" ", "").lower()
    if "body=json" in prefer.split(","):
        return ngsi_response(content, accept=GEOJSON, context=context, headers=headers)
    body = {**content, "@context": context if context is not None else CORE_CONTEXT_URL}
    return Response(
        orjson.dumps(body), status_code=200, media_type=GEOJSON, headers=dict(headers or {})
    )


# OpenAPI request body of the endpoints that take one JSON(-LD) object (FastAPI cannot infer
# it: the endpoints read the raw body to do NGSI-LD's own validation).
OBJECT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/ld+json": {"schema": {"type": "object"}},
        },
        "required": True,
    }
}


def location(path: str) -> str:
    """A Location header for a path that ends in an id: the id percent-encoded (an IRI with
    non-ASCII characters becomes the URI that names it; '%', '?', '#' are escaped so the path
    addresses the same id), so any stored id can be carried in the header."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def error_response(exc: NgsiError) -> Response:
    """The ProblemDetails answer to an NgsiError (the app's handler and the lean path)."""
    return Response(
        orjson.dumps(exc.problem()),
        status_code=exc.status,
        media_type="application/json",
        headers=_error_headers(exc),
    )


def _error_headers(exc: NgsiError) -> dict[str, str] | None:
    if exc.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        return {"Retry-After": str(retry_after)}
    return None
