"""DCAT-AP 3 over HTTP: ``/catalog.{ttl,rdf,jsonld}`` (paged with Hydra, ``modified_since``),
``/dataset/{name}.{ttl,rdf,jsonld}``, and content negotiation on ``/catalog`` and
``/dataset/{name}`` (``Accept: text/turtle``, ``application/rdf+xml``,
``application/ld+json``).

``/dataset/{name}`` is also the dataset's address for people (DCAT's landing page): a client
that prefers HTML (a browser) is sent (303) to the page in its language, ``/{en,tc,sc}/dataset/
{name}`` (opendata/site); likewise ``/catalog`` to the search page. A client that accepts none
of the RDF types nor HTML gets 406 (in CKAN's envelope, as every error on these paths) naming
the types it may ask for; ``*/*`` gets Turtle.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.ckan import envelope
from smartcity.opendata.ckan.endpoints import authenticate, opendata
from smartcity.opendata.dcat.service import (
    FORMATS,
    MEDIA_TYPES,
    CatalogueRequest,
    DcatService,
    serialise,
)
from smartcity.opendata.errors import NotAcceptable, NotFound, OpenDataError
from smartcity.web import i18n

router = APIRouter(tags=["Open data (DCAT-AP 3)"])
DEFAULT_FORMAT = "ttl"
EXTENSIONS = ("ttl", "rdf", "jsonld")


def negotiate(accept: str | None) -> str | None:
    """The format for an ``Accept`` header (RFC 9110 quality values; the first listed wins a
    tie), Turtle for none or ``*/*``; None when the client accepts none of them."""
    if not accept or not accept.strip():
        return DEFAULT_FORMAT
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if quality <= 0:
            continue
        if media in MEDIA_TYPES:
            fmt = MEDIA_TYPES[media]
        elif media in ("*/*", "text/*", "application/*"):
            fmt = DEFAULT_FORMAT
        else:
            continue
        # Exact types beat wildcards at equal quality.
        rank = (quality, -position if media not in ("*/*", "text/*", "application/*") else -999)
        if best is None or rank > best[:2]:
            best = (rank[0], rank[1], fmt)
    return best[2] if best else None


def _split(key: str) -> tuple[str, str | None]:
    stem, dot, ext = key.rpartition(".")
    if dot and ext in EXTENSIONS:
        return stem, ext
    return key, None


HTML_TYPES = ("text/html", "application/xhtml+xml")


def prefers_html(accept: str | None) -> bool:
    """Whether the client ranks HTML above every RDF type it names (browsers do: they send
    ``text/html,...,*/*;q=0.8``); wildcards alone never mean HTML."""
    best_html, best_rdf = 0.0, 0.0
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in HTML_TYPES:
            best_html = max(best_html, quality)
        elif media in MEDIA_TYPES:
            best_rdf = max(best_rdf, quality)
    return best_html > 0 and best_html > best_rdf


def _to_page(request: Request, path: str) -> Response:
    lang = i18n.negotiate(request.headers.get("accept-language"))
    return RedirectResponse(
        f"/{lang.prefix}{path}", status_code=303, headers={"Vary": "Accept, Accept-Language"}
    )


def _rdf(body: bytes, media_type: str, *, public: bool) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Vary": "Accept, Authorization",
            "Cache-Control": "public, max-age=60" if public else "private, no-cache",
        },
    )


def _not_acceptable() -> Response:
    offered = ", ".join(MEDIA_TYPES)
    response = envelope.failed(
        "",
        NotAcceptable(
            f"ask for one of {offered} in Accept, or add .ttl, .rdf or .jsonld to the path"
        ),
    )
    response.headers["Vary"] = "Accept"
    return response


def _service(request: Request) -> DcatService:
    return DcatService(opendata(request).catalogue)


@router.get("/catalog", summary="The DCAT-AP 3 catalogue (content negotiation)")
@router.get("/catalog.{ext}", summary="The DCAT-AP 3 catalogue as Turtle, RDF/XML or JSON-LD")
async def catalogue(request: Request, ext: str | None = None) -> Response:
    """Public, active datasets, newest change first; ``page`` (from 1), ``page_size`` (100,
    at most 1000) and ``modified_since`` (ISO 8601). Hydra links name the other pages."""
    if ext is None and prefers_html(request.headers.get("accept")):
        return _to_page(request, "/dataset")
    fmt = ext if ext is not None else negotiate(request.headers.get("accept"))
    if fmt is None:
        return _not_acceptable()
    if fmt not in FORMATS or fmt == "xml":
        return envelope.failed(
            "", NotFound("no such format: use /catalog.ttl, /catalog.rdf or /catalog.jsonld")
        )
    base_url = str(request.base_url).rstrip("/")
    try:
        wanted = CatalogueRequest.parse(dict(request.query_params))
    except OpenDataError as exc:
        return envelope.failed("", exc)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    page_url = f"{base_url}/catalog.{fmt}"
    if kept:
        from urllib.parse import urlencode

        page_url += "?" + urlencode(kept)
    graph = await run_in_threadpool(_service(request).catalogue_page, base_url, page_url, wanted)
    body, media_type = await run_in_threadpool(serialise, graph, fmt)
    return _rdf(body, media_type, public=True)


@router.get(
    "/dataset/{key}", summary="A dataset as DCAT-AP 3 (content negotiation, or .ttl/.rdf/.jsonld)"
)
async def dataset(request: Request, key: str) -> Response:
    name, ext = _split(key)
    if ext is None and prefers_html(request.headers.get("accept")):
        return _to_page(request, f"/dataset/{quote(name, safe='')}")
    fmt = ext or negotiate(request.headers.get("accept"))
    if fmt is None:
        return _not_acceptable()
    try:
        principal = await run_in_threadpool(authenticate, request)
        base_url = str(request.base_url).rstrip("/")
        graph = await run_in_threadpool(_service(request).dataset, principal, base_url, name)
    except OpenDataError as exc:
        return envelope.failed("", exc)
    body, media_type = await run_in_threadpool(serialise, graph, fmt)
    return _rdf(body, media_type, public=principal.anonymous)
