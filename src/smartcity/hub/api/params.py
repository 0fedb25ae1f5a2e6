"""Query parameters shared by entity and temporal queries, parsed into an EntityQuery."""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.config import Limits
from smartcity.hub.api.query_body import QueryParams
from smartcity.hub.entity import check_name, check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import EntityQuery
from smartcity.hub.repository import check_regex
from smartcity.hub.types_expr import parse_type_selection


@dataclass
class Selection:
    """What the client wants back: which attributes, and for pick/omit which members."""

    attrs: list[str] | None = None
    pick: set[str] | None = None
    omit: set[str] | None = None
    # datasetIds of the attribute instances wanted (None stands for the default instance)
    datasets: set[str | None] | None = None


def parse_datasets(value: str | None) -> set[str | None] | None:
    """The ``datasetId`` parameter: datasetIds (URIs), ``@none`` for the default instance."""
    if value is None:
        return None
    names = split_list(value)
    if not names:
        raise BadRequestData("datasetId must list at least one datasetId (or @none)")
    return {None if n == "@none" else check_uri(n, "datasetId") for n in names}


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def name_list(value: str, what: str) -> list[str]:
    """A comma-separated list of names; an empty one (``a,,b``, ``a,``) is a 400, as for the
    projection language of pick/omit (clause 4.21), rather than silently skipped."""
    names = [v.strip() for v in value.split(",")]
    if not any(names):
        raise BadRequestData(f"{what} must list at least one name")
    if not all(names):
        raise BadRequestData(
            f"{what}: a name is missing in {value!r} (write names separated by single commas)"
        )
    return names


def member_names(value: str | None, ctx: ActiveContext, what: str) -> set[str] | None:
    if value is None:
        return None
    names = name_list(value, what)
    return {n if n in ("id", "type", "scope") else ctx.expand(check_name(n)) for n in names}


def parse_selection(
    ctx: ActiveContext, attrs: str | None, pick: str | None, omit: str | None
) -> Selection:
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    if attrs is not None and (pick is not None or omit is not None):
        # pick/omit supersede attrs (clause 4.21); both at once is ambiguous.
        raise BadRequestData("attrs cannot be combined with pick or omit; use pick alone")
    attr_list = None
    if attrs:  # an empty attrs= is an absent one, as for the other parameters
        attr_list = [ctx.expand(check_name(a)) for a in name_list(attrs, "attrs")]
    return Selection(
        attrs=attr_list,
        pick=member_names(pick, ctx, "pick"),
        omit=member_names(omit, ctx, "omit"),
    )


def parse_entity_query(
    ctx: ActiveContext,
    limits: Limits,
    *,
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,
    attrs: list[str] | None = None,
    q: str | None = None,
    scopeQ: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
) -> EntityQuery:
    query = EntityQuery(expand=ctx.expand)
    if type is not None:
        if not type.strip():
            raise BadRequestData("type must not be empty")
        query.types = parse_type_selection(type, ctx.expand)
    if id is not None:
        query.ids = [check_uri(i, "id") for i in split_list(id)]
        if not query.ids:
            raise BadRequestData("id must list at least one entity id")
    if idPattern is not None:
        check_regex(idPattern)
        query.id_pattern = idPattern
    if attrs:
        query.attrs = attrs
    if q is not None:
        from smartcity.hub.query.qlang import parse_q

        query.q = parse_q(q, max_length=limits.max_q_length)
    if scopeQ is not None:
        from smartcity.hub.query.scope import parse_scope_q

        query.scope_q = parse_scope_q(scopeQ)
    if georel is not None or geometry is not None or coordinates is not None:
        from smartcity.hub.query.geo import parse_geo_query

        query.geo = parse_geo_query(
            georel, geometry, coordinates, geoproperty, max_points=limits.max_geometry_points
        )
        query.geoproperty = ctx.expand(check_name(geoproperty or "location"))
    return query


def require_selector(query: EntityQuery) -> None:
    """Clause 5.7.2.4: a query must select by id, idPattern, type, attrs, q, geo-query or
    scopeQ; one without any is too wide (BadRequestData), not "everything"."""
    if query.is_empty():
        raise BadRequestData(
            "a query needs at least one of type, id, idPattern, attrs, q, scopeQ or a "
            "geo-query (georel, geometry, coordinates); e.g. ?type=Building"
        )


def query_from_params(
    ctx: ActiveContext, limits: Limits, p: QueryParams
) -> tuple[Selection, EntityQuery]:
    """The selection and entity query of a request's parameters (GET) or Query body (POST)."""
    selection = parse_selection(ctx, p.attrs, p.pick, p.omit)
    selection.datasets = parse_datasets(p.datasetId)
    query = parse_entity_query(
        ctx,
        limits,
        id=p.id,
        type=p.type,
        idPattern=p.idPattern,
        attrs=selection.attrs,
        q=p.q,
        scopeQ=p.scopeQ,
        georel=p.georel,
        geometry=p.geometry,
        coordinates=p.coordinates,
        geoproperty=p.geoproperty,
    )
    if p.orderBy is not None:
        from smartcity.hub.query.order import expand_keys, parse_order_by

        query.order_by = expand_keys(parse_order_by(p.orderBy), ctx.expand)
    return selection, query
