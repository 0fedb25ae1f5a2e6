"""Entity subscriptions on data that registered sources provide (clause 4.3.6 with the
subscription operations of 4.20: ``createSubscription``, ``updateSubscription``,
``deleteSubscription``, all in ``federationOps``, the default).

A subscription whose entities or watched attributes a registration could provide is also
created on that registration's source, under the same subscription id and with the same
notification endpoint: the source notifies the subscriber directly, so notifications about
the source's entities carry the subscription id the subscriber knows. A PATCH and a DELETE of
the subscription are forwarded to the sources its stored form matches (a source that never
got it answers 404, which is not reported).

Forwarded requests carry ``local=true``, Via, the registration's tenant and
contextSourceInfo, and go through the SSRF guard with the registration's timeout. The
subscription on the hub is created, changed or deleted whatever the sources do; a source that
failed is named in an ``NGSILD-Warning`` header of the answer.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from smartcity.hub.federation.forwarding import Forwarder, warning_of
from smartcity.hub.federation.matching import Wanted, registration_matches
from smartcity.hub.federation.writes import plan

Doc = dict[str, Any]
PATH = "/subscriptions"


def wanted_of(subscription: Doc) -> list[Wanted]:
    """What a stored subscription is about, as registration selectors (one per entity
    selector; watched attributes narrow each)."""
    attrs = subscription.get("watchedAttributes") or None
    selectors = subscription.get("entities")
    if not selectors:
        return [Wanted(attrs=attrs)]
    out = []
    for selector in selectors:
        types = [frozenset(alternative) for alternative in selector["type"]]
        ids = [selector["id"]] if "id" in selector else None
        out.append(Wanted(types, ids, selector.get("idPattern"), attrs))
    return out


async def forward(
    request: Request,
    forwarder: Forwarder,
    tenant: str,
    operation: str,
    subscription: Doc,
    method: str,
    path: str,
    body: Any,
) -> list[str]:
    """Send the subscription request to the matching sources; the warnings for failures."""
    writes = await plan(request, forwarder, tenant, operation, include_auxiliary=True)
    if writes is None:
        return []
    wanted = wanted_of(subscription)
    targets = [d for d in writes.docs if any(registration_matches(d, w) for w in wanted)]
    if not targets:
        return []
    sent = await writes.send_all([(reg, method, path, body) for reg in targets])
    warnings = writes.warnings(sent)
    for s in sent:
        if s.status is not None and s.status >= 400 and not (method != "POST" and s.status == 404):
            detail = s.problem().get("detail") or f"HTTP {s.status}"
            warnings.append(warning_of(writes.alias, s.registration, f"refused: {detail}"))
    return warnings
