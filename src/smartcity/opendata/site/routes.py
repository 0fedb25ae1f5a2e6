"""``/{en,tc,sc}/dataset`` (search), ``/dataset/{name}``, ``/dataset/{name}/resource/{id}``,
``/organization[/{name}]`` and ``/group[/{name}]``: CKAN's page paths, under the site's
language prefixes. Every page shows what an anonymous visitor may see (private and draft
datasets never appear, whoever asks), except that a private or draft dataset's own page is
shown, labelled, to the editors who may edit it; a signed-in editor also gets links to the
editor pages (``dataset_pages``: "Publish data", "Edit this dataset")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from smartcity import __version__
from smartcity.opendata.catalogue.access import ANONYMOUS
from smartcity.opendata.catalogue.organisations import GROUP, ORGANIZATION, Kind
from smartcity.opendata.citydata.exports import HKT
from smartcity.opendata.dcat.schemaorg import schema_org_dataset
from smartcity.opendata.errors import NotFound, OpenDataError
from smartcity.opendata.languages import Lang as DataLang
from smartcity.opendata.runtime import OpenData
from smartcity.opendata.search.engine import SearchRequest
from smartcity.opendata.site import editors, figures, preview, visuals
from smartcity.web import nav
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb, Pages
from smartcity.web.paging import Pager, page_number
from smartcity.web.routing import LangDep, page

HERE = Path(__file__).parent
ASSETS = "/opendata-assets"  # the previews' script and style (static/)
router = APIRouter()
pages = Pages(HERE / "templates", locale_dirs=[HERE / "locale"])
nav.register(nav.NavItem("data", "/dataset", nav.N_("Open data"), 50))

PER_PAGE = 20
MAX_QUERY = 200  # characters of a search; longer ones are cut, not refused
# The facets a visitor narrows by, in the order the page lists them (CKAN's field names).
FACETS = (
    ("organization", nav.N_("Organisations")),
    ("groups", nav.N_("Categories")),
    ("tags", nav.N_("Tags")),
    ("res_format", nav.N_("Formats")),
    ("license_id", nav.N_("Licences")),
)
SORTS = (
    ("score desc, metadata_modified desc", nav.N_("Relevance")),
    ("metadata_modified desc", nav.N_("Last modified")),
    ("title_string asc", nav.N_("Name (A to Z)")),
    ("metadata_created desc", nav.N_("Newest")),
)


def asset(path: str) -> str:
    return f"{ASSETS}/{path}?v={__version__}"


# The account bar of these pages (templates/account_bar.html): who is signed in, and a link
# to the editor pages for those who may publish.
pages.extra_globals.update(data_asset=asset, od_account=editors.account_bar)


def account_link(request: Request, lang: Lang) -> tuple[str, str] | None:
    """ "Publish data" in the portal's account bar, for a signed-in user who may publish."""
    editor = editors.signed_in(request, opendata(request))
    if editor is None or not editor.may_publish:
        return None
    return tr(lang, "Publish data"), f"/{lang.prefix}/publish"


def install(app: FastAPI, include: Callable[[FastAPI, APIRouter], None] | None = None) -> None:
    """Serve the pages and their assets; ``include`` adds the router to the app (the app
    passes the site's session layer, so the pages know who is signed in)."""
    if include is None:
        app.include_router(router)
    else:
        include(app, router)
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="opendata-assets")


def opendata(request: Request) -> OpenData:
    found: OpenData = request.app.state.opendata
    return found


OpenDataDep = Annotated[OpenData, Depends(opendata)]


def data_lang(lang: Lang) -> DataLang:
    """The catalogue's key for the page's language (the same three: en, zh-Hant, zh-Hans)."""
    return cast(DataLang, lang.text)


def tr(lang: Lang, message: str) -> str:
    return pages.gettext(lang, message)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def crumbs(lang: Lang, *more: Crumb) -> list[Crumb]:
    return [
        Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
        Crumb(tr(lang, "Open data"), f"/{lang.prefix}/dataset" if more else None),
        *more,
    ]


def _search(
    od: OpenData, request: Request, lang: Lang, fixed: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A page of search results with facets, from the query string (``q``, a value per
    facet, ``sort``, ``page``); ``fixed``: a facet the page itself is about (an
    organisation's page)."""
    params = request.query_params
    q = " ".join((params.get("q") or "").split())[:MAX_QUERY]
    chosen = [(f, v) for f, _label in FACETS for v in params.getlist(f) if v][:20]
    sort = params.get("sort") or ""
    if sort not in dict(SORTS):
        sort = SORTS[0][0] if q else SORTS[1][0]
    number = page_number(params.get("page"))
    conditions = [(f, v) for f, v in ([fixed] if fixed else []) + chosen]
    fq = [f'{f}:"{v.replace(chr(34), "")}"' for f, v in conditions]
    search = SearchRequest(
        q=q or None,
        fq=fq,
        sort=sort,
        rows=PER_PAGE,
        start=(number - 1) * PER_PAGE,
        facet_fields=[f for f, _ in FACETS],
        facet_limit=10,
        lang=data_lang(lang),
    )
    try:
        found = od.catalogue.package_search(ANONYMOUS, base_url(request), search)
        error = None
    except OpenDataError as exc:  # a query the parser refuses: say so, show nothing
        found, error = {"count": 0, "results": [], "search_facets": {}}, exc.message
    keep = [("q", q), *chosen, ("sort", sort if params.get("sort") else "")]
    path = request.url.path
    pager = Pager(number, PER_PAGE, found["count"], path, tuple(keep))

    def link(*, add: tuple[str, str] | None = None, drop: tuple[str, str] | None = None) -> str:
        pairs = [(k, v) for k, v in keep if v and (k, v) != drop and k != "page"]
        if add:
            pairs.append(add)
        return f"{path}?{urlencode(pairs)}" if pairs else path

    facets = []
    for f, label in FACETS:
        if fixed and f == fixed[0]:
            continue
        items = found["search_facets"].get(f, {}).get("items", [])
        facets.append(
            {
                "field": f,
                "label": tr(lang, label),
                "items": [
                    {
                        **item,
                        "chosen": (f, item["name"]) in chosen,
                        "href": link(drop=(f, item["name"]))
                        if (f, item["name"]) in chosen
                        else link(add=(f, item["name"])),
                    }
                    for item in items
                ],
            }
        )
    return {
        "q": q,
        "sort": sort,
        "sorts": [(value, tr(lang, label)) for value, label in SORTS],
        "chosen": [{"field": f, "value": v, "href": link(drop=(f, v))} for f, v in chosen],
        "facets": facets,
        "results": found["results"],
        "pager": pager,
        "error": error,
        "hidden": [(k, v) for k, v in chosen],
    }


@page(router, "/dataset")
def dataset_search(request: Request, lang: LangDep, od: OpenDataDep) -> Response:
    found = _search(od, request, lang)
    return pages.render(
        request,
        "data_search.html",
        {**found, "nav_key": "data", "breadcrumbs": crumbs(lang)},
    )


@page(router, "/dataset/{name}")
def dataset_page(request: Request, name: str, lang: LangDep, od: OpenDataDep) -> Response:
    editor = editors.signed_in(request, od)
    package, restricted = _package_for_page(od, request, lang, name, editor)
    schema = orjson.dumps(schema_org_dataset(package, base_url(request), data_lang(lang)))
    created, modified = (_moment(package.get(k)) for k in ("metadata_created", "metadata_modified"))
    may_edit = editor is not None and editor.may_edit(package["owner_org"])
    # A private or draft dataset's page is its editors' alone: never kept by a cache, never
    # indexed, and without the public links (its resource pages, DCAT and schema.org are
    # an anonymous visitor's, so they stay hidden).
    headers = {"Cache-Control": "no-store"} if restricted else None
    return pages.render(
        request,
        "dataset.html",
        {
            "package": package,
            "restricted": restricted,
            # Which resources show a map or a chart without reading their table (visuals.py);
            # a DataStore table's figures are on its page beside the table.
            "figures": {
                r["id"]: visuals.plan(r, None, live=figures.live_type(package) is not None)
                for r in package["resources"]
            },
            # A data block, never run (the CSP allows no inline script); "</" cannot end it.
            "schema_org": schema.decode().replace("</", "<\\/"),
            "api_base": base_url(request),
            "edit_url": f"/{lang.prefix}/publish/dataset/{package['name']}" if may_edit else None,
            "created": created,
            "modified": modified,
            "nav_key": "data",
            "breadcrumbs": crumbs(lang, Crumb(package["title"] or package["name"])),
        },
        headers=headers,
    )


@page(router, "/dataset/{name}/resource/{resource_id}")
def resource_page(
    request: Request, name: str, resource_id: str, lang: LangDep, od: OpenDataDep
) -> Response:
    package = _package(od, request, lang, name)
    resource = next((r for r in package["resources"] if r["id"] == resource_id), None)
    if resource is None:
        raise HTTPException(404)
    table = (
        preview.table(od, resource_id, request.query_params, request.url.path)
        if resource["datastore_active"]
        else None
    )
    shown = _figures(od, package, resource, data_lang(lang))
    return pages.render(
        request,
        "resource.html",
        {
            "package": package,
            "resource": resource,
            "table": table,
            "map": shown[0],
            "chart": shown[1],
            "api_base": base_url(request),
            "nav_key": "data",
            "breadcrumbs": crumbs(
                lang,
                Crumb(package["title"] or package["name"], f"/{lang.prefix}/dataset/{name}"),
                Crumb(resource["name"] or resource["id"]),
            ),
        },
    )


def _figures(
    od: OpenData, package: dict[str, Any], resource: dict[str, Any], lang: str
) -> tuple[figures.MapPreview | None, figures.ChartPreview | None]:
    """The resource's map and chart, when it holds places or a time series (visuals.py)."""
    found = None
    if resource["datastore_active"]:
        try:
            found = od.datastore.readable(ANONYMOUS, resource["id"])
        except OpenDataError:
            found = None
    live = figures.live_type(package) is not None
    plan = visuals.plan(resource, figures.fields_of(found) if found else None, live=live)
    shown_map: figures.MapPreview | None = None
    chart: figures.ChartPreview | None = None
    if plan.map == "datastore" and found is not None:
        shown_map = figures.datastore_map(od, found, plan)
    elif plan.map == "geojson":
        shown_map = figures.upload_map(od, package, resource["id"], lang)
    elif plan.map == "live-geojson":
        shown_map = figures.live_map(od, package, lang)
    if plan.chart == "datastore" and found is not None:
        chart = figures.datastore_chart(od, found, plan)
    elif plan.chart == "live-history":
        chart = figures.live_chart(od, package, dt.datetime.now(HKT).date())
    return shown_map, chart


def _moment(value: Any) -> dt.datetime | None:
    """CKAN's timestamps (ISO, UTC without an offset) as aware datetimes, for Hong Kong time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _package_for_page(
    od: OpenData, request: Request, lang: Lang, name: str, editor: editors.Editor | None
) -> tuple[dict[str, Any], str | None]:
    """The dataset as an anonymous visitor sees it, or — for a private or draft dataset —
    as its editors do, with the label that says why nobody else sees it (404 for the rest:
    the editor pages' rule, ``Editor.may_edit``)."""
    try:
        return _package(od, request, lang, name), None
    except HTTPException:
        if editor is None or not editor.may_publish:
            raise
    try:
        package = od.catalogue.package_show(editor.principal, lang.text, base_url(request), name)
    except NotFound:
        raise HTTPException(404) from None
    if not editor.may_edit(package["owner_org"]):
        raise HTTPException(404)
    if package.get("state") == "draft":
        return package, tr(
            lang, "Draft: only its organisation's editors see it until it is published."
        )
    return package, tr(lang, "Private: only its organisation's editors see it.")


def _package(od: OpenData, request: Request, lang: Lang, name: str) -> dict[str, Any]:
    try:
        return od.catalogue.package_show(ANONYMOUS, lang.text, base_url(request), name)
    except NotFound:
        raise HTTPException(404) from None


def _publishers(kind: Kind, request: Request, lang: Lang, od: OpenData) -> Response:
    listed = od.organisations.listing(
        kind,
        ANONYMOUS,
        lang.text,
        base_url(request),
        all_fields=True,
        sort="title asc",
        limit=None,
        offset=0,
        names=None,
    )
    title = "Organisations" if kind.is_organization else "Categories"
    return pages.render(
        request,
        "publishers.html",
        {
            "kind": kind.noun,
            "heading": tr(lang, title),
            "items": listed,
            "nav_key": "data",
            "breadcrumbs": crumbs(lang, Crumb(tr(lang, title))),
        },
    )


def _publisher(kind: Kind, request: Request, lang: Lang, od: OpenData, name: str) -> Response:
    try:
        shown = od.organisations.show(
            kind,
            ANONYMOUS,
            lang.text,
            base_url(request),
            name,
            include_datasets=False,
            include_users=False,
        )
    except NotFound:
        raise HTTPException(404) from None
    found = _search(od, request, lang, fixed=(kind.facet, shown["name"]))
    title = "Organisations" if kind.is_organization else "Categories"
    return pages.render(
        request,
        "publisher.html",
        {
            **found,
            "kind": kind.noun,
            "publisher": shown,
            "nav_key": "data",
            "breadcrumbs": crumbs(
                lang,
                Crumb(tr(lang, title), f"/{lang.prefix}/{kind.noun}"),
                Crumb(shown["title"] or shown["name"]),
            ),
        },
    )


@page(router, "/organization")
def organisations(request: Request, lang: LangDep, od: OpenDataDep) -> Response:
    return _publishers(ORGANIZATION, request, lang, od)


@page(router, "/organization/{name}")
def organisation(request: Request, name: str, lang: LangDep, od: OpenDataDep) -> Response:
    return _publisher(ORGANIZATION, request, lang, od, name)


@page(router, "/group")
def groups(request: Request, lang: LangDep, od: OpenDataDep) -> Response:
    return _publishers(GROUP, request, lang, od)


@page(router, "/group/{name}")
def group(request: Request, name: str, lang: LangDep, od: OpenDataDep) -> Response:
    return _publisher(GROUP, request, lang, od, name)
