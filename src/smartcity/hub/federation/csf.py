"""``csf``, the context source filter (clause 4.9 applied to registrations): which of the
registrations that match a distributed query the query is forwarded to.

The filter is written in the query language of ``q`` and evaluated on the registration's own
members, each taken as a Property of that name: ``csf=mode=="inclusive"``,
``csf=registrationName=="TD";tenant=="td"``, ``csf=endpoint~="td-broker"``,
``csf=management[timeout]<1000`` (a member of an object member, as q reads a JSON value).
Members are named as the specification spells them, so no @context is involved.
"""

from __future__ import annotations

from typing import Any

from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation.model import DEFAULT_MODE
from smartcity.hub.query.qeval import matches
from smartcity.hub.query.qlang import QNode, parse_q

Doc = dict[str, Any]
# Members that are not the registration's own properties: the claim (matched by the query's
# selectors already) and the server's bookkeeping.
_NOT_PROPERTIES = frozenset({"information", "context", "@context"})


def parse_csf(text: str | None, *, max_length: int = 4096) -> QNode | None:
    """The parsed filter; a 400 that says where ``csf`` is wrong (as for ``q``)."""
    if text is None:
        return None
    try:
        return parse_q(text, max_length=max_length)
    except BadRequestData as exc:
        raise BadRequestData("csf" + exc.detail.removeprefix("q")) from None


def _as_entity(registration: Doc) -> Doc:
    """The registration in the stored-entity layout q is evaluated on."""
    members = {"mode": DEFAULT_MODE, **registration}  # the default is what the source is
    attrs = {
        key: [{"type": "Property", "value": value}]
        for key, value in members.items()
        if key not in _NOT_PROPERTIES and not key.startswith("_")
    }
    return {"id": registration.get("id"), "attrs": attrs}


def _same(name: str) -> str:
    return name


def csf_matches(node: QNode, registration: Doc) -> bool:
    return matches(node, _as_entity(registration), _same)
