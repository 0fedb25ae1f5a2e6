"""Property tests of how a distributed write is shared out (federation.writes.Writes.split)
over random registrations: whatever the modes and attribute names, no attribute is lost, an
exclusive or redirect source's attributes never stay local, and auxiliary sources and
registrations without the operation never receive a write."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from smartcity.hub.federation.forwarding import Forwarder
from smartcity.hub.federation.writes import Writes

ENTITY = "urn:ngsi-ld:Road:1"
NAMES = ["a", "b", "c", "d"]


def _request() -> Request:
    return Request({"type": "http", "method": "PATCH", "path": "/", "headers": [],
                    "query_string": b""})  # fmt: skip


registrations = st.lists(
    st.fixed_dictionaries(
        {
            "mode": st.sampled_from(["inclusive", "exclusive", "redirect", "auxiliary"]),
            "names": st.one_of(st.none(), st.sets(st.sampled_from(NAMES), min_size=1)),
            "other_entity": st.booleans(),
            "writes": st.booleans(),
        }
    ),
    max_size=5,
)


def _doc(n: int, spec: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "entities": [{"id": "urn:ngsi-ld:Road:2" if spec["other_entity"] else ENTITY,
                      "type": ["Road"]}],
    }  # fmt: skip
    if spec["names"] is not None:
        info["propertyNames"] = sorted(spec["names"])
    return {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{n}",
        "endpoint": f"http://source-{n}.example",
        "information": [info],
        "mode": spec["mode"],
        "operations": ["redirectionOps"] if spec["writes"] else ["federationOps"],
    }


@settings(max_examples=400, deadline=None)
@given(registrations, st.sets(st.sampled_from(NAMES), min_size=1))
def test_split_keeps_every_attribute_and_respects_modes(
    specs: list[dict[str, Any]], names: set[str]
) -> None:
    docs = [_doc(n, spec) for n, spec in enumerate(specs)]
    forwarder = Forwarder.__new__(Forwarder)  # split() never sends
    # What writes.plan keeps: registrations that offer the write, auxiliary ones excluded.
    eligible = [
        d for d in docs if d["mode"] != "auxiliary" and d["operations"] == ["redirectionOps"]
    ]
    split = Writes(_request(), forwarder, "", eligible, "updateEntity").split(
        ENTITY, ["Road"], names
    )
    by_id = {d["id"]: d for d in docs}
    received: set[str] = set()
    for route in split.routes:
        doc = by_id[route.registration["id"]]
        assert doc["mode"] != "auxiliary" and doc["operations"] == ["redirectionOps"]
        assert doc["information"][0]["entities"][0]["id"] == ENTITY
        sent = names if route.names is None else route.names
        offered = doc["information"][0].get("propertyNames")
        assert sent <= names and (offered is None or sent <= set(offered))
        assert sent, "a source is never sent an empty update"
        received |= sent
        if doc["mode"] in ("exclusive", "redirect"):
            assert not (split.local and sent - split.taken), "taken attributes stay remote"
        else:
            assert not (sent & split.taken), "an exclusive source's attributes go to it alone"
    local = (names - split.taken) if split.local else set()
    assert names <= received | local, "no attribute is lost"
    assert not (local & split.taken)
    if not split.routes:
        assert split.local and not split.taken
