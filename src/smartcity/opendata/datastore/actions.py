"""CKAN's ``datastore_*`` actions (registered with the Action API's ``@action``)."""

from __future__ import annotations

from typing import Any

import orjson

from smartcity.opendata.ckan import params
from smartcity.opendata.ckan.actions import Call, action
from smartcity.opendata.datastore import search as s
from smartcity.opendata.datastore import sql
from smartcity.opendata.datastore.store import name_list, parse_fields
from smartcity.opendata.errors import BadRequest, ValidationFailed
from smartcity.storage.engine import QueryTimeout


def _json_param(data: dict[str, Any], name: str) -> Any:
    """A structured parameter: JSON in a POST body, or JSON text in a query string."""
    value = data.get(name)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValidationFailed.one(name, "is not valid JSON") from None
    return value


def _records(data: dict[str, Any]) -> list[Any]:
    records = _json_param(data, "records")
    if records is None:
        return []
    if not isinstance(records, list):
        raise ValidationFailed.one("records", "must be a list of objects")
    return records


def _resource_id(call: Call, data: dict[str, Any]) -> str:
    resource = _json_param(data, "resource")
    if isinstance(resource, dict) and not data.get("resource_id"):
        created = call.od.catalogue.resource_create(
            call.principal, call.lang, call.base_url, {"url": "", **resource}, None
        )
        return str(created["id"])
    return params.required(data, "resource_id", "id")


@action(read_only=False)
def datastore_create(call: Call, data: dict[str, Any]) -> Any:
    """Create a resource's DataStore table, or add fields to it, and insert records.

    :param resource_id: the resource (or ``resource``: a new resource's dict, with package_id)
    :param fields: ``[{"id": "district", "type": "text", "info": {...}}, ...]``; types text,
        int, float (numeric), bool, date, timestamp, json; guessed from records if absent
    :param primary_key: a field id or a list of them (upsert and update find rows by it)
    :param indexes: field ids to index
    :param records: ``[{"district": "Central", ...}, ...]`` to insert
    """
    resource_id = _resource_id(call, data)
    pk = _json_param(data, "primary_key")
    ix = _json_param(data, "indexes")
    return call.od.datastore.create(
        call.principal,
        resource_id,
        parse_fields(_json_param(data, "fields")),
        name_list(pk, "primary_key") if pk is not None else None,
        name_list(ix, "indexes") if ix is not None else None,
        _records(data),
    )


@action(read_only=False)
def datastore_upsert(call: Call, data: dict[str, Any]) -> Any:
    """Write records into a resource's table.

    :param resource_id: the resource
    :param records: the records
    :param method: ``upsert`` (default: insert, or update the row with the same primary
        key), ``insert``, or ``update`` (every record's key must exist)
    :param dry_run: check and roll back
    """
    return call.od.datastore.upsert(
        call.principal,
        params.required(data, "resource_id", "id"),
        _records(data),
        params.text(data, "method") or "upsert",
        dry_run=params.boolean(data, "dry_run"),
    )


@action(read_only=False)
def datastore_delete(call: Call, data: dict[str, Any]) -> Any:
    """Delete rows matching ``filters`` from a resource's table, or without ``filters`` the
    whole table. ``filters`` as datastore_search's (``{}`` deletes every row)."""
    filters = _json_param(data, "filters")
    if filters is not None and not isinstance(filters, dict):
        raise ValidationFailed.one("filters", 'must be an object: {"field": value}')
    return call.od.datastore.delete(
        call.principal, params.required(data, "resource_id", "id"), filters
    )


@action(read_only=True)
def datastore_info(call: Call, data: dict[str, Any]) -> Any:
    """A resource's table: its fields, primary key, indexes, row count, and its last file
    load (state, encoding, rows loaded, bad rows by line number)."""
    return call.od.datastore.info(call.principal, params.required(data, "id", "resource_id"))


@action(read_only=True)
def datastore_search(call: Call, data: dict[str, Any]) -> Any:
    """Search a resource's table.

    :param resource_id: the resource
    :param filters: ``{"field": value}``, ``{"field": [a, b]}``, ``{"field": {"gte": 1, "lt": 9}}``
        (operators eq, ne, lt, lte, gt, gte)
    :param q: words that must all appear (as substrings, any case) in some column, or
        ``{"field": "words"}``; ``full_text``: words anywhere in the row
    :param distinct: distinct rows of ``fields``; ``fields``: field ids to return
    :param sort: ``"field desc, other asc"``; ``limit`` (100, at most 32000); ``offset``
    :param cursor: continue after the page that gave it (``_links.next`` has it): keyset
        paging, as fast on page 10,000 as on page 1
    :param include_total: count the matches (default true)
    :param records_format: objects (default), lists, csv or tsv
    """
    resource_id = params.required(data, "resource_id", "id")
    found = call.od.datastore.readable(call.principal, resource_id)
    q = _json_param(data, "q")
    if q is not None and not isinstance(q, str | dict):
        raise ValidationFailed.one("q", 'must be words or {"field": "words"}')
    filters = _json_param(data, "filters") or {}
    fields = _json_param(data, "fields")
    records_format = params.text(data, "records_format") or "objects"
    if records_format not in s.RECORDS_FORMATS:
        raise ValidationFailed.one(
            "records_format", f"must be one of {', '.join(s.RECORDS_FORMATS)}"
        )
    search = s.SearchParams(
        filters=filters,
        q=q or None,
        full_text=params.text(data, "full_text") or None,
        distinct=params.boolean(data, "distinct"),
        fields=name_list(fields, "fields") or None,
        sort=s.parse_sort(found, _json_param(data, "sort")),
        limit=params.integer(data, "limit", s.DEFAULT_LIMIT, low=0, high=s.MAX_LIMIT) or 0,
        offset=params.integer(data, "offset", 0) or 0,
        cursor=params.text(data, "cursor") or None,
        include_total=params.boolean(data, "include_total", True),
        records_format=records_format,
    )
    budget = call.od.settings.datastore_search_timeout_s
    try:
        with call.od.datastore.db.snapshot(budget=budget) as conn:
            page = s.search(conn, found, search)
    except QueryTimeout:
        raise ValidationFailed.one(
            "query",
            f"the search ran longer than {budget:g} s and was stopped: narrow it with filters "
            "on indexed fields, or fewer words in q",
        ) from None
    out: dict[str, Any] = {
        "resource_id": resource_id,
        "fields": page.fields,
        "records": page.records,
        "records_format": records_format,
        "limit": search.limit,
        "offset": search.offset,
        "filters": search.filters,
        "include_total": search.include_total,
        "_links": s.links("/api/3/action/datastore_search", resource_id, search, page),
    }
    if search.q:
        out["q"] = search.q
    if search.sort:
        out["sort"] = ", ".join(f"{n} {'desc' if d else 'asc'}" for n, d in search.sort)
    if page.total is not None:
        out["total"] = page.total
        out["total_was_estimated"] = False
    return out


@action(read_only=True)
def datastore_search_sql(call: Call, data: dict[str, Any]) -> Any:
    """Run one read-only SELECT over DataStore tables, named by resource id:
    ``SELECT district, sum(spaces) FROM "RESOURCE-ID" GROUP BY district``. Off unless the
    site enables it (SMARTCITY_OPENDATA_DATASTORE_SQL=1); stops after the site's time limit
    and answers at most its row cap (``records_truncated`` says so)."""
    settings = call.od.settings
    if not settings.datastore_sql:
        raise BadRequest("datastore_search_sql is not enabled on this site: use datastore_search")
    return sql.run(
        call.od.datastore,
        call.principal,
        params.required(data, "sql"),
        timeout=settings.datastore_sql_timeout_s,
        row_cap=settings.datastore_sql_row_cap,
    )
