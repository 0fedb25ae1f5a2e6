"""CKAN's write actions (POST only), each checked against the caller's role: an editor or
admin of the dataset's organization for datasets and resources, an organization's admin
for it and its members, a sysadmin for groups and for creating organizations."""

from __future__ import annotations

from typing import Any

from smartcity.opendata.catalogue.organisations import GROUP, ORGANIZATION
from smartcity.opendata.ckan import params
from smartcity.opendata.ckan.actions import Call, action


@action(read_only=False)
def package_create(call: Call, data: dict[str, Any]) -> Any:
    """Create a dataset; returns it as package_show does.

    :param name: its URL name (2-100 of a-z, 0-9, - and _); required
    :param owner_org: the organization (id or name); you need editor or admin there
    :param title: / ``notes``: in the request's language; ``title_translated`` and
        ``notes_translated``: ``{"en": ..., "zh-Hant": ..., "zh-Hans": ...}``
    :param tags: ``[{"name": ...}]`` (or ``tag_string``: comma-separated)
    :param groups: ``[{"name": ...}]``; ``license_id``; ``private``; ``state`` (draft)
    :param frequency: daily, weekly, monthly ... ; ``temporal_start``, ``temporal_end``
    :param spatial: a GeoJSON geometry; ``data_dictionary``: ``[{"name", "type", "unit",
        "description_translated"}]``; ``version``, ``maintainer``, ``maintainer_email``
    :param resources: a list of resources (see resource_create)
    """
    return call.od.catalogue.package_create(call.principal, call.lang, call.base_url, data)


@action(read_only=False)
def package_update(call: Call, data: dict[str, Any]) -> Any:
    """Replace a dataset (``id`` or ``name``) with the dict sent. Resources, groups and tags
    are kept when their keys are absent; texts in other languages are kept unless
    ``*_translated`` is sent; ``private`` is kept unless sent."""
    return call.od.catalogue.package_update(call.principal, call.lang, call.base_url, data)


@action(read_only=False)
def package_patch(call: Call, data: dict[str, Any]) -> Any:
    """Change only the fields sent of a dataset (``id`` or ``name``)."""
    return call.od.catalogue.package_patch(call.principal, call.lang, call.base_url, data)


@action(read_only=False)
def package_delete(call: Call, data: dict[str, Any]) -> Any:
    """Delete a dataset (``id``): it disappears from search and show, and its name stays
    taken; package_update by a sysadmin restores it."""
    call.od.catalogue.package_delete(call.principal, params.required(data, "id", "name"))
    return None


@action(read_only=False)
def dataset_purge(call: Call, data: dict[str, Any]) -> Any:
    """Remove a dataset (``id``) and its files for good (sysadmins only)."""
    call.od.catalogue.dataset_purge(call.principal, params.required(data, "id", "name"))
    return None


@action(read_only=False)
def resource_create(call: Call, data: dict[str, Any]) -> Any:
    """Add a resource to a dataset (``package_id``).

    :param url: a link, or with ``kind`` ``hub-query`` a path under /ngsi-ld/v1/
    :param upload: a file (multipart/form-data), kept here and served from ``url``
    :param kind: upload, link, api, hub-query or live (a path on this site generated on
        request; default: upload with a file, else link)
    :param name: / ``description`` (or ``*_translated``), ``format``, ``mimetype``
    """
    return call.od.catalogue.resource_create(
        call.principal, call.lang, call.base_url, data, call.upload
    )


@action(read_only=False)
def resource_update(call: Call, data: dict[str, Any]) -> Any:
    """Update a resource (``id``); a new ``upload`` replaces its file. Fields not sent are
    kept."""
    return call.od.catalogue.resource_update(
        call.principal, call.lang, call.base_url, data, call.upload
    )


@action(read_only=False)
def resource_patch(call: Call, data: dict[str, Any]) -> Any:
    """Change only the fields sent of a resource (``id``); ``upload`` replaces its file."""
    return call.od.catalogue.resource_update(
        call.principal, call.lang, call.base_url, data, call.upload, patch=True
    )


@action(read_only=False)
def resource_delete(call: Call, data: dict[str, Any]) -> Any:
    """Delete a resource (``id``) and its file."""
    call.od.catalogue.resource_delete(call.principal, params.required(data, "id"))
    return None


@action(read_only=False)
def organization_create(call: Call, data: dict[str, Any]) -> Any:
    """Create an organization (sysadmins): ``name``, ``title`` / ``title_translated``,
    ``description``, ``image_url``, ``users``: ``[{"name", "capacity"}]``."""
    return call.od.organisations.create(
        ORGANIZATION, call.principal, call.lang, call.base_url, data
    )


@action(read_only=False)
def organization_update(call: Call, data: dict[str, Any]) -> Any:
    """Update an organization (``id``); its admins may."""
    return call.od.organisations.update(
        ORGANIZATION, call.principal, call.lang, call.base_url, data
    )


@action(read_only=False)
def organization_patch(call: Call, data: dict[str, Any]) -> Any:
    """Change only the fields sent of an organization (``id``)."""
    return call.od.organisations.update(
        ORGANIZATION, call.principal, call.lang, call.base_url, data, patch=True
    )


@action(read_only=False)
def organization_delete(call: Call, data: dict[str, Any]) -> Any:
    """Delete an organization (``id``) that has no datasets left."""
    call.od.organisations.delete(ORGANIZATION, call.principal, params.required(data, "id"))
    return None


@action(read_only=False)
def organization_member_create(call: Call, data: dict[str, Any]) -> Any:
    """Give a user (an API key's name) a role in an organization; its admins may.

    :param id: the organization; ``username``: the user; ``role``: admin, editor or member
    """
    return call.od.organisations.member_create(
        call.principal,
        params.required(data, "id"),
        params.required(data, "username"),
        params.text(data, "role") or "member",
    )


@action(read_only=False)
def organization_member_delete(call: Call, data: dict[str, Any]) -> Any:
    """Take a user's role in an organization away (``id``, ``username``)."""
    call.od.organisations.member_delete(
        call.principal, params.required(data, "id"), params.required(data, "username")
    )
    return None


@action(read_only=False)
def group_create(call: Call, data: dict[str, Any]) -> Any:
    """Create a group (sysadmins): fields as organization_create."""
    return call.od.organisations.create(GROUP, call.principal, call.lang, call.base_url, data)


@action(read_only=False)
def group_update(call: Call, data: dict[str, Any]) -> Any:
    """Update a group (``id``; sysadmins)."""
    return call.od.organisations.update(GROUP, call.principal, call.lang, call.base_url, data)


@action(read_only=False)
def group_patch(call: Call, data: dict[str, Any]) -> Any:
    """Change only the fields sent of a group (``id``; sysadmins)."""
    return call.od.organisations.update(
        GROUP, call.principal, call.lang, call.base_url, data, patch=True
    )


@action(read_only=False)
def group_delete(call: Call, data: dict[str, Any]) -> Any:
    """Delete a group (``id``; sysadmins); its datasets leave it."""
    call.od.organisations.delete(GROUP, call.principal, params.required(data, "id"))
    return None
