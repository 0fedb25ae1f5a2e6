"""CKAN's read actions (``side_effect_free``: GET or POST). Unknown parameters are ignored,
as CKAN ignores them; each docstring is what ``help_show`` answers."""

from __future__ import annotations

from typing import Any

from smartcity import __version__
from smartcity.opendata.catalogue.organisations import GROUP, ORGANIZATION
from smartcity.opendata.ckan import params
from smartcity.opendata.ckan.actions import ACTIONS, Call, action
from smartcity.opendata.errors import NotFound, ValidationFailed
from smartcity.opendata.search.engine import SearchRequest

MAX_ROWS = 10_000  # one page of package_search; ``start`` has no limit
MAX_START = 1_000_000_000
CKAN_API_VERSION = "2.11.0"  # the CKAN release whose Action API this one follows


@action(read_only=True)
def status_show(call: Call, data: dict[str, Any]) -> Any:
    """Return the site's name, the CKAN API version it speaks and its extensions."""
    return {
        "site_title": call.od.settings.site_title,
        "site_description": "Open data of the smart city platform, as DATA.GOV.HK publishes it",
        "site_url": call.base_url,
        "ckan_version": CKAN_API_VERSION,
        "smartcity_version": __version__,
        "locale_default": {"en": "en", "zh-Hant": "zh_Hant_HK", "zh-Hans": "zh_Hans_CN"}[call.lang],
        "error_emails_to": None,
        "extensions": ["smartcity-opendata", "multilingual", "cjk-search"],
    }


@action(read_only=True)
def site_read(call: Call, data: dict[str, Any]) -> Any:
    """Return true: the site may be read."""
    return True


@action(read_only=True)
def package_list(call: Call, data: dict[str, Any]) -> Any:
    """Return the names of the site's public active datasets, by name.

    :param limit: at most this many (optional)
    :param offset: skip this many (optional)
    :param include_private: also the private datasets the caller's organizations own
    :param include_drafts: also the drafts the caller may edit
    """
    return call.od.catalogue.package_list(
        call.principal,
        limit=params.integer(data, "limit", None, low=0, high=MAX_ROWS),
        offset=params.integer(data, "offset", 0, high=MAX_START) or 0,
        include_private=params.boolean(data, "include_private"),
        include_drafts=params.boolean(data, "include_drafts"),
    )


@action(read_only=True)
def current_package_list_with_resources(call: Call, data: dict[str, Any]) -> Any:
    """Return datasets with their resources, most recently modified first.

    :param limit: how many (default 10)
    :param offset: skip this many (or ``page``, counted from 1)
    """
    limit = params.integer(data, "limit", 10, low=0, high=MAX_ROWS) or 0
    offset = params.integer(data, "offset", 0, high=MAX_START) or 0
    page = params.integer(data, "page", None, low=1, high=MAX_START)
    if page is not None:
        offset = (page - 1) * limit
    return call.od.catalogue.current_with_resources(
        call.principal, call.lang, call.base_url, limit=limit, offset=offset
    )


@action(read_only=True)
def package_show(call: Call, data: dict[str, Any]) -> Any:
    """Return a dataset (by id or name) with its resources, in the request's language.

    :param id: the dataset's id or name
    """
    return call.od.catalogue.package_show(
        call.principal, call.lang, call.base_url, params.required(data, "id", "name")
    )


@action(read_only=True)
def package_search(call: Call, data: dict[str, Any]) -> Any:
    """Search datasets, in English and Chinese (either script).

    :param q: words, "phrases", field:value, AND / OR / NOT, -term, (groups), prefix*
    :param fq: a filter in the same language (also ``fq_list``: several)
    :param sort: e.g. ``score desc, metadata_modified desc`` (the default with words),
        ``metadata_modified desc``, ``name asc``, ``title_string asc``
    :param rows: results per page (default 10, at most 10000); ``start``: skip this many
    :param facet.field: a JSON list of fields to count: organization, groups, tags,
        res_format, license_id (and frequency, capacity ...)
    :param facet.limit: values per field (default 50, -1 for all); ``facet.mincount``
    :param include_private: the caller's organizations' private datasets too
    :param include_drafts: the caller's organizations' draft datasets too
    """
    fq = [f for f in (params.text(data, "fq"),) if f]
    fq += params.string_list(data, "fq_list")
    facet_wanted = params.boolean(data, "facet", True)
    request = SearchRequest(
        q=params.text(data, "q"),
        fq=fq,
        sort=params.text(data, "sort"),
        rows=params.integer(data, "rows", 10, high=MAX_ROWS) or 0,
        start=params.integer(data, "start", 0, high=MAX_START) or 0,
        facet_fields=params.string_list(data, "facet.field") if facet_wanted else [],
        facet_limit=params.integer(data, "facet.limit", 50, low=-1) or 0,
        facet_mincount=params.integer(data, "facet.mincount", 1) or 1,
        include_private=params.boolean(data, "include_private"),
        include_drafts=params.boolean(data, "include_drafts"),
        lang=call.lang,
    )
    return call.od.catalogue.package_search(call.principal, call.base_url, request)


@action(read_only=True)
def package_activity_list(call: Call, data: dict[str, Any]) -> Any:
    """Return a dataset's audit trail, newest first: each change's action, time, object and
    the object as it was afterwards (who made it: to the organization's members).

    :param id: the dataset's id or name; ``offset``, ``limit`` (default 31, at most 1000)
    """
    return call.od.catalogue.activity(
        call.principal,
        params.required(data, "id", "name"),
        offset=params.integer(data, "offset", 0, high=MAX_START) or 0,
        limit=params.integer(data, "limit", 31, low=1, high=1000) or 31,
    )


@action(read_only=True)
def resource_show(call: Call, data: dict[str, Any]) -> Any:
    """Return a resource.

    :param id: the resource's id
    """
    return call.od.catalogue.resource_show(
        call.principal, call.lang, call.base_url, params.required(data, "id")
    )


@action(read_only=True)
def resource_search(call: Call, data: dict[str, Any]) -> Any:
    """Search resources: every ``field:term`` must match (a case-insensitive substring).

    :param query: ``"format:csv"`` or a list of them; fields: name, description, format,
        url, mimetype, hash, kind, id, package_id
    :param order_by: one of those fields; ``offset``, ``limit`` (default 100)
    """
    terms: dict[str, list[str]] = {}
    for item in params.string_list(data, "query"):
        field, sep, term = item.partition(":")
        if not sep:
            raise ValidationFailed.one("query", f"{item!r} must read field:term")
        terms.setdefault(field.strip(), []).append(term.strip())
    fields = data.get("fields")
    if isinstance(fields, dict):  # CKAN's older spelling
        for field, term in fields.items():
            terms.setdefault(str(field), []).append(str(term))
    return call.od.catalogue.resource_search(
        call.principal,
        call.lang,
        call.base_url,
        terms=terms,
        order_by=params.text(data, "order_by"),
        offset=params.integer(data, "offset", 0, high=MAX_START) or 0,
        limit=params.integer(data, "limit", 100, high=MAX_ROWS) or 0,
    )


def _list(call: Call, data: dict[str, Any], kind: Any) -> Any:
    names = params.string_list(data, "organizations" if kind is ORGANIZATION else "groups")
    return call.od.organisations.listing(
        kind,
        call.principal,
        call.lang,
        call.base_url,
        all_fields=params.boolean(data, "all_fields"),
        sort=params.text(data, "sort") or params.text(data, "order_by"),
        limit=params.integer(data, "limit", None, high=MAX_ROWS),
        offset=params.integer(data, "offset", 0, high=MAX_START) or 0,
        names=names or None,
    )


def _show(call: Call, data: dict[str, Any], kind: Any) -> Any:
    return call.od.organisations.show(
        kind,
        call.principal,
        call.lang,
        call.base_url,
        params.required(data, "id", "name"),
        include_datasets=params.boolean(data, "include_datasets"),
        include_users=params.boolean(data, "include_users", True),
    )


@action(read_only=True)
def organization_list(call: Call, data: dict[str, Any]) -> Any:
    """Return the organizations' names (or, with ``all_fields``, their dicts).

    :param sort: ``name asc`` (default), ``title``, ``package_count desc``
    :param limit: / ``offset``; ``organizations``: only these names
    """
    return _list(call, data, ORGANIZATION)


@action(read_only=True)
def organization_show(call: Call, data: dict[str, Any]) -> Any:
    """Return an organization (by id or name).

    :param include_datasets: its datasets too (at most 1000; use package_search to page)
    :param include_users: its members and their roles (to its own members only)
    """
    return _show(call, data, ORGANIZATION)


@action(read_only=True)
def organization_list_for_user(call: Call, data: dict[str, Any]) -> Any:
    """Return the organizations where the caller may do ``permission`` (default
    ``manage_group``: admin; ``create_dataset``: editor; ``read``: member)."""
    return call.od.organisations.list_for_user(
        call.principal, call.lang, call.base_url, params.text(data, "permission") or "manage_group"
    )


@action(read_only=True)
def group_list(call: Call, data: dict[str, Any]) -> Any:
    """Return the groups' names (DATA.GOV.HK's categories), or their dicts with
    ``all_fields``; ``sort``, ``limit``, ``offset`` as organization_list."""
    return _list(call, data, GROUP)


@action(read_only=True)
def group_show(call: Call, data: dict[str, Any]) -> Any:
    """Return a group (by id or name); ``include_datasets`` adds its datasets."""
    return _show(call, data, GROUP)


@action(read_only=True)
def tag_list(call: Call, data: dict[str, Any]) -> Any:
    """Return the tags of public datasets.

    :param query: only tags containing this; ``all_fields``: dicts, not names
    """
    return call.od.catalogue.tag_list(
        call.principal,
        query=params.text(data, "query") or params.text(data, "q"),
        all_fields=params.boolean(data, "all_fields"),
    )


@action(read_only=True)
def tag_show(call: Call, data: dict[str, Any]) -> Any:
    """Return a tag (by id or name); ``include_datasets`` adds its datasets."""
    return call.od.catalogue.tag_show(
        call.principal,
        call.lang,
        call.base_url,
        params.required(data, "id", "name"),
        include_datasets=params.boolean(data, "include_datasets"),
    )


@action(read_only=True)
def license_list(call: Call, data: dict[str, Any]) -> Any:
    """Return the licences datasets may carry (``license_id``)."""
    return call.od.catalogue.license_list(call.lang)


@action(read_only=True)
def help_show(call: Call, data: dict[str, Any]) -> Any:
    """Return an action's help text.

    :param name: the action's name
    """
    name = params.required(data, "name")
    found = ACTIONS.get(name)
    if found is None:
        raise NotFound(f"there is no action {name!r}")
    return found.help
