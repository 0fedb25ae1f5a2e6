"""Actions that publish live city datasets (this platform's own, beside CKAN's): what
``smartcity opendata publish-type`` and ``publish-portal`` do, for clients of the Action API."""

from __future__ import annotations

from typing import Any

from smartcity.opendata.ckan.actions import Call, action
from smartcity.opendata.ckan.params import boolean, required, text


@action(read_only=False)
def live_dataset_publish(call: Call, data: dict[str, Any]) -> Any:
    """Publish a hub entity type as a live dataset (or refresh it): an NGSI-LD query link, CSV
    and GeoJSON of the current state, the temporal API link and daily history CSV files, all
    generated on request. Needs the editor role in the organization.

    :param type: the entity type (a name of the city @context, e.g. ``OffStreetParking``, or
        an IRI)
    :param owner_org: the publishing organization (default: the department of the Hong Kong
        feed that fills the type, if any)
    :param name: the dataset's name (default ``live-<type>``)
    :param private: keep it private to the organization (default false)
    """
    return call.od.city.publish_type(
        call.principal,
        call.base_url,
        required(data, "type"),
        org=text(data, "owner_org") or None,
        name=text(data, "name") or None,
        private=boolean(data, "private"),
    )


@action(read_only=False)
def portal_dataset_publish(call: Call, data: dict[str, Any]) -> Any:
    """Publish one of the portal's exports as a live dataset (or refresh it): ``measures``
    (the blueprint's measures with their progress), ``kpis`` or ``comments`` (the moderated
    public comments, without personal data).

    :param dataset: measures, kpis or comments
    :param owner_org: the publishing organization
    """
    return call.od.city.publish_portal(
        call.principal,
        call.base_url,
        required(data, "dataset"),
        org=required(data, "owner_org"),
    )
