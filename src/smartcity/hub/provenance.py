"""Where an entity's data comes from, as the features that show it need to say.

NGSI-LD's ``dataProvider`` property names the source of an entity's data. The platform's own
simulator writes "smartcity simulator (simulated data)" there, and every page that shows a
figure (the dashboard's tiles, the portal's live figures) labels figures from such entities as
simulated, so nobody mistakes the demo's city for the real one.
"""

from __future__ import annotations

from typing import Any

from smartcity.hub.contexts import city_context

SIMULATED = "simulated data"  # in the dataProvider of every simulated entity
SIMULATOR_PROVIDER = f"smartcity simulator ({SIMULATED})"


def is_simulated_provider(provider: Any) -> bool:
    return isinstance(provider, str) and SIMULATED in provider


def is_simulated(doc: dict[str, Any]) -> bool:
    """True when a stored entity (the hub's expanded document) says its data is simulated."""
    for instance in doc.get("attrs", {}).get(city_context().expand("dataProvider"), []):
        if is_simulated_provider(instance.get("value")):
            return True
    return False
