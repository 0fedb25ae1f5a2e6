"""The platform's city @context in a Link header, as API clients send it to use short names
(``OffStreetParking``) for the Smart Data Models types the platform writes (docs/hub.md)."""

from __future__ import annotations

from smartcity.hub.contexts import CITY_CONTEXT_PATH, CITY_CONTEXT_URL

REL = "http://www.w3.org/ns/json-ld#context"


def city_link(base: str | None = None) -> dict[str, str]:
    """The Link header naming the city context on the hub at ``base`` (any host will do)."""
    url = base.rstrip("/") + CITY_CONTEXT_PATH if base else CITY_CONTEXT_URL
    return {"Link": f'<{url}>; rel="{REL}"; type="application/ld+json"'}
