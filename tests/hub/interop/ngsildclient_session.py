"""One session of the ngsildclient library against a running hub, run by
tests/hub/test_client_interop.py in the library's own virtualenv (its pinned dependencies
cannot live beside the project's). Only the library's public API is used, unchanged.

Usage: python ngsildclient_session.py PORT RECEIVER_URL RUN_ID
Prints one JSON object with what each step returned; the test asserts on it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ngsildclient import Client, Entity
from ngsildclient.model.constants import CORE_CONTEXT


def main() -> None:
    port, receiver, run = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    out: dict[str, Any] = {}
    with Client(hostname="127.0.0.1", port=port, verbose=False) as client:
        # A subscription first, so that the writes below notify the receiver.
        out["subscription"] = client.subscriptions.create(
            {
                "type": "Subscription",
                "entities": [{"type": "AirQualityObserved"}],
                "watchedAttributes": ["NO2"],
                "notification": {
                    "format": "keyValues",
                    "endpoint": {"uri": receiver, "accept": "application/json"},
                },
                # The library sends subscriptions as application/ld+json as given: the body
                # must carry its @context (clause 6.3.5).
                "@context": [CORE_CONTEXT],
            }
        )
        out["subscription_read"] = client.subscriptions.get(out["subscription"])

        station = Entity("AirQualityObserved", f"HK:Central:{run}")
        station.prop("NO2", 22, unitcode="GP").prop("PM25", 12.5)
        station.loc(22.2819, 114.1582)
        out["created"] = client.create(station)
        out["retrieved"] = client.get(station.id, asdict=True)

        others = []
        for n in range(2):
            other = Entity("AirQualityObserved", f"HK:Station{n}:{run}")
            other.prop("NO2", 30 + n)
            others.append(other)
        # Batch upsert: two new entities and a new value for an existing one.
        upserted = client.upsert(
            [*others, Entity("AirQualityObserved", f"HK:Central:{run}").prop("NO2", 40)]
        )
        out["upserted"] = {"ok": upserted.n_ok, "total": upserted.n_tot}
        out["queried"] = sorted(e.id for e in client.query(type="AirQualityObserved", q="NO2>25"))
        out["after_upsert"] = client.get(station.id, asdict=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
