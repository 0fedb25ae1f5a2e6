"""Which tenant the served analytics read (``SMARTCITY_ANALYTICS_TENANT``, default the
default tenant), and the rule that a private tenant's figures are never served publicly."""

from __future__ import annotations

import os

from fastapi import HTTPException

from smartcity.hub.runtime import Hub

SETTING = "SMARTCITY_ANALYTICS_TENANT"


def analytics_tenant(hub: Hub) -> tuple[str, bool]:
    """The tenant, and whether its data is private (then the API shows nothing)."""
    tenant = os.environ.get(SETTING, "")
    return tenant, bool({"*", tenant} & set(hub.settings.private_read_tenants))


def refuse_if_private(private: bool) -> None:
    if private:
        raise HTTPException(403, f"the analytics tenant is private ({SETTING}): nothing is shown")
