"""The public portal's pages: home, areas, measures, search, new measures, key figures, about.

Every page exists under /en, /tc and /sc (see ``smartcity.web.routing.page``) and is plain
server-rendered HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from smartcity.hub.api.deps import hub
from smartcity.portal.site import live, sections, timeline
from smartcity.portal.site.content import SiteData
from smartcity.storage.engine import Database
from smartcity.web.accounts import account_links
from smartcity.web.i18n import Formatter, Lang
from smartcity.web.pages import Crumb, Pages
from smartcity.web.paging import Pager, page_number
from smartcity.web.routing import LangDep, page

router = APIRouter()
pages = Pages(Path(__file__).parent / "templates", locale_dirs=[Path(__file__).parent / "locale"])
PER_PAGE = 20
MAX_QUERY = 200  # characters of a search; longer ones are cut, not refused


def site_data(request: Request) -> SiteData:
    db: Database | None = getattr(request.app.state, "db", None)
    return SiteData(db or hub(request).db)


DataDep = Annotated[SiteData, Depends(site_data)]


def tr(lang: Lang, message: str) -> str:
    return pages.gettext(lang, message)


def home_crumb(lang: Lang) -> Crumb:
    return Crumb(tr(lang, "Home"), f"/{lang.prefix}/")


def status_labels(data: SiteData, lang: Lang) -> dict[str, str]:
    return {s.code: s.label.get(lang.text) for s in data.statuses()}


def common(data: SiteData, lang: Lang) -> dict[str, Any]:
    return {"status_labels": status_labels(data, lang), "statuses": data.statuses()}


@page(router, "/")
def home(request: Request, lang: LangDep, data: DataDep) -> Response:
    summaries = data.area_summaries()
    kpis = data.kpis()
    headline = []  # the first figure of each area
    for area in summaries:
        first = next((k for k in kpis if k.area == area.id), None)
        if first is not None:
            headline.append(first)
    return pages.render(
        request,
        "home.html",
        {
            "blueprint": data.blueprint,
            "areas": summaries,
            "overview": data.overview(),
            "headline_kpis": headline,
            "nav_key": "home",
            **common(data, lang),
        },
    )


@page(router, "/areas")
def areas(request: Request, lang: LangDep, data: DataDep) -> Response:
    return pages.render(
        request,
        "areas.html",
        {
            "areas": data.area_summaries(),
            "nav_key": "areas",
            "breadcrumbs": [home_crumb(lang), Crumb(tr(lang, "Areas"))],
            **common(data, lang),
        },
    )


@page(router, "/areas/{area_id}")
def area(request: Request, area_id: str, lang: LangDep, data: DataDep) -> Response:
    content = data.area(area_id)
    if content is None:
        raise HTTPException(404)
    summary = next(s for s in data.area_summaries() if s.id == area_id)
    measures = data.measures(area=area_id)
    by_strategy = [(s, [m for m in measures if m.strategy == s.id]) for s in content.strategies]
    return pages.render(
        request,
        "area.html",
        {
            "area": content,
            "summary": summary,
            "by_strategy": by_strategy,
            "kpis": data.kpis(area_id),
            "all_areas": data.blueprint.areas,
            "extra_sections": sections.render("area", request, area_id, lang),
            "nav_key": "areas",
            "breadcrumbs": [
                home_crumb(lang),
                Crumb(tr(lang, "Areas"), f"/{lang.prefix}/areas"),
                Crumb(content.name.get(lang.text)),
            ],
            **common(data, lang),
        },
    )


@page(router, "/measures/{measure_id}")
def measure(request: Request, measure_id: str, lang: LangDep, data: DataDep) -> Response:
    found = data.measure(measure_id)
    if found is None:
        raise HTTPException(404)
    content = data.area(found.area)
    organisations = {o.code: o.name for o in data.blueprint.organisations}
    labels = status_labels(data, lang)
    events = timeline.events(
        data.timeline(measure_id), lambda m: tr(lang, m), Formatter(lang), labels
    )
    hub = getattr(request.app.state, "hub", None)
    figures = live.figures(hub.entities if hub else None, list(found.live))
    area_name = content.name.get(lang.text) if content else found.area
    return pages.render(
        request,
        "measure.html",
        {
            "m": found,
            "area": content,
            "owners": [
                organisations[code].get(lang.text) if code in organisations else code
                for code in found.owners
            ],
            "events": events,
            "figures": figures,
            "extra_sections": sections.render("measure", request, measure_id, lang),
            "nav_key": "areas",
            "breadcrumbs": [
                home_crumb(lang),
                Crumb(tr(lang, "Areas"), f"/{lang.prefix}/areas"),
                Crumb(area_name, f"/{lang.prefix}/areas/{found.area}"),
                Crumb(found.title.get(lang.text)),
            ],
            "status_labels": labels,
            # An editor's confirmation, shown next to what changed (site/editor.py).
            "status_messages": auth.take_flash(request, "status"),
            "milestone_messages": auth.take_flash(request, "milestones"),
        },
    )


@page(router, "/search")
def search(request: Request, lang: LangDep, data: DataDep) -> Response:
    params = request.query_params
    q = " ".join((params.get("q") or "").split())[:MAX_QUERY]
    area_ids = {a.id for a in data.blueprint.areas}
    area_id = params.get("area") if params.get("area") in area_ids else None
    codes = {s.code for s in data.statuses()}
    status = params.get("status") if params.get("status") in codes else None
    results = data.measures(area=area_id, status=status, q=q or None)
    pager = Pager(
        page=page_number(params.get("page")),
        per_page=PER_PAGE,
        total=len(results),
        base=f"/{lang.prefix}/search",
        params=(("q", q), ("area", area_id or ""), ("status", status or "")),
    )
    return pages.render(
        request,
        "search.html",
        {
            "q": q,
            "area_id": area_id,
            "status": status,
            "results": results[pager.offset : pager.offset + PER_PAGE],
            "pager": pager,
            "searched": bool(q or area_id or status),
            "area_names": {a.id: a.name for a in data.blueprint.areas},
            "nav_key": "search",
            "breadcrumbs": [home_crumb(lang), Crumb(tr(lang, "Search"))],
            **common(data, lang),
        },
    )


@page(router, "/new")
def new_measures(request: Request, lang: LangDep, data: DataDep) -> Response:
    measures = data.measures(is_new=True)
    groups = [(a, [m for m in measures if m.area == a.id]) for a in data.blueprint.areas]
    return pages.render(
        request,
        "new.html",
        {
            "groups": [(a, ms) for a, ms in groups if ms],
            "total": len(measures),
            "nav_key": "new",
            "breadcrumbs": [home_crumb(lang), Crumb(tr(lang, "New measures"))],
            **common(data, lang),
        },
    )


@page(router, "/kpis")
def kpis(request: Request, lang: LangDep, data: DataDep) -> Response:
    figures = data.kpis()
    groups = [(a, [k for k in figures if k.area == a.id]) for a in data.blueprint.areas]
    return pages.render(
        request,
        "kpis.html",
        {
            "groups": [(a, ks) for a, ks in groups if ks],
            "nav_key": "kpis",
            "breadcrumbs": [home_crumb(lang), Crumb(tr(lang, "Key figures"))],
        },
    )


@page(router, "/about")
def about(request: Request, lang: LangDep, data: DataDep) -> Response:
    return pages.render(
        request,
        "about.html",
        {
            "blueprint": data.blueprint,
            "nav_key": "about",
            "breadcrumbs": [home_crumb(lang), Crumb(tr(lang, "About and privacy"))],
        },
    )


# The interactive parts (sign-in, editing, public feedback, moderation) use this module's
# pages and page functions, so they are imported last; each registers its sections on import.
from smartcity.portal.site import (  # noqa: E402
    auth,
    bulk,
    editor,
    feedback_pages,
    moderation,
    official,
    report_pages,
    vote_pages,
)

# The account bar on every page (signed in: name and sign-out; else the sign-in link).
pages.extra_globals["account_of"] = auth.account_context
# Other features' links for the signed-in user (the app wires them: web/accounts.py).
pages.extra_globals["account_links"] = account_links

for _forms in (auth, editor, bulk, official, feedback_pages, moderation, report_pages, vote_pages):
    router.include_router(_forms.router)
