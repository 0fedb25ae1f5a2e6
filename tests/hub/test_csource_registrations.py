"""Context source registrations: /csourceRegistrations CRUD, validation and query
(clauses 5.9, 5.10)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcity.hub.contexts import core_context
from smartcity.hub.errors import BadRequestData
from smartcity.hub.federation.model import parse_registration, render_registration
from smartcity.hub.timeutil import now_us
from smartcity.storage.engine import Database

BASE = "/ngsi-ld/v1/csourceRegistrations"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def registration(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:td",
        "type": "ContextSourceRegistration",
        "information": [
            {
                "entities": [{"type": "TrafficFlowObserved"}],
                "propertyNames": ["intensity", "averageVehicleSpeed"],
            }
        ],
        "endpoint": "http://td-broker.example:8000",
    }
    body.update(extra)
    return body


def test_register_then_retrieve(client: TestClient) -> None:
    made = client.post(BASE, json=registration(management={"timeout": 1500}))
    assert made.status_code == 201, made.text
    assert made.headers["Location"] == f"{BASE}/urn:ngsi-ld:ContextSourceRegistration:td"
    got = client.get(made.headers["Location"], params={"options": "sysAttrs"})
    assert got.status_code == 200
    body = got.json()
    assert body["information"] == registration()["information"]
    assert body["mode"] == "inclusive"
    assert body["management"] == {"timeout": 1500}
    assert body["endpoint"] == "http://td-broker.example:8000"
    assert "createdAt" in body and "modifiedAt" in body
    assert client.post(BASE, json=registration()).status_code == 409


def test_registration_names_follow_the_context(client: TestClient) -> None:
    """Names are stored expanded: a reader without the @context sees full IRIs."""
    ctx = {"@context": [{"Flow": "https://td.example/Flow", "speed": "https://td.example/speed"}]}
    body = {
        **registration(information=[{"entities": [{"type": "Flow"}], "propertyNames": ["speed"]}]),
        **ctx,
    }
    made = client.post(BASE, json=body, headers={"Content-Type": "application/ld+json"})
    assert made.status_code == 201, made.text
    info = client.get(made.headers["Location"]).json()["information"][0]
    assert info == {
        "entities": [{"type": "https://td.example/Flow"}],
        "propertyNames": ["https://td.example/speed"],
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"type": "Registration"}, "ContextSourceRegistration"),
        ({"information": []}, "information"),
        ({"information": [{}]}, "at least one of"),
        ({"information": [{"entities": [{"id": "urn:a:b"}]}]}, "needs a type"),
        ({"endpoint": "ftp://x"}, "http(s)"),
        ({"endpoint": None}, "endpoint"),
        ({"mode": "exclusively"}, "mode must be one of"),
        ({"operations": ["teleport"]}, "unknown operation"),
        ({"management": {"timeout": 0}}, "management.timeout"),
        ({"management": {"retries": 3}}, "unknown members"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "in the past"),
        ({"contextSourceInfo": [{"key": "Bad Header", "value": "x"}]}, "header name"),
        ({"refreshRate": "often"}, "ISO 8601 duration"),
        ({"mode": "exclusive"}, "entities with an id"),
        ({"mode": "auxiliary", "operations": ["updateOps"]}, "read operations"),
        ({"bad name": "red"}, "not a valid Context Source property name"),
    ],
)
def test_invalid_registrations_are_bad_request_data(
    client: TestClient, change: dict[str, Any], needle: str
) -> None:
    body = registration()
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post(BASE, json=body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("BadRequestData")
    assert needle in problem["detail"]


def test_exclusive_registrations_may_not_overlap(client: TestClient) -> None:
    exclusive = {
        "mode": "exclusive",
        "information": [
            {
                "entities": [{"id": "urn:ngsi-ld:Road:1", "type": "Road"}],
                "propertyNames": ["speedLimit"],
            }
        ],
    }
    assert client.post(BASE, json=registration(**exclusive)).status_code == 201
    other = registration(id="urn:ngsi-ld:ContextSourceRegistration:other", **exclusive)
    response = client.post(BASE, json=other)
    assert response.status_code == 409
    assert "already claims" in response.json()["detail"]


def test_query_by_type_id_and_attrs_with_paging(client: TestClient) -> None:
    for n, entity_type in enumerate(["Road", "Road", "Road", "AirQualityObserved"]):
        info = [{"entities": [{"type": entity_type, "id": f"urn:ngsi-ld:{entity_type}:{n}"}]}]
        info[0]["propertyNames"] = ["speedLimit" if entity_type == "Road" else "pm10"]
        body = registration(id=f"urn:ngsi-ld:ContextSourceRegistration:{n}", information=info)
        assert client.post(BASE, json=body).status_code == 201
    roads = client.get(BASE, params={"type": "Road", "limit": 2, "count": "true"})
    assert roads.status_code == 200
    assert [r["id"][-1] for r in roads.json()] == ["0", "1"]
    assert roads.headers["NGSILD-Results-Count"] == "3"
    assert 'rel="next"' in roads.headers["Link"] and "offset=2" in roads.headers["Link"]
    second = client.get(BASE, params={"type": "Road", "limit": 2, "offset": 2})
    assert [r["id"][-1] for r in second.json()] == ["2"]
    by_id = client.get(BASE, params={"type": "Road", "id": "urn:ngsi-ld:Road:1"}).json()
    assert [r["id"][-1] for r in by_id] == ["1"]
    by_attr = client.get(BASE, params={"attrs": "speedLimit"}).json()
    assert len(by_attr) == 3
    assert client.get(BASE, params={"type": "Bridge"}).json() == []
    assert client.get(BASE).status_code == 400  # neither type nor attrs (clause 5.10.2.4)
    for bad in ({"id": "invalidUri"}, {"q": "(invalidQuery"}, {"georel": "within"},
                {"timerel": "before"}, {"type": "Road", "id": "not a uri"}):  # fmt: skip
        response = client.get(BASE, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["type"].endswith("BadRequestData")


def test_query_by_properties_place_and_time(client: TestClient) -> None:
    """q and csf on Context Source properties, geo-queries on location, temporal queries on
    observationInterval / managementInterval (clause 5.10.2). Without a temporal query only
    the sources of latest information (no interval) are found; with one, only those whose
    interval matches."""
    td = registration(
        id="urn:ngsi-ld:ContextSourceRegistration:td", department="TD", priority=2,
        location={"type": "Point", "coordinates": [114.17, 22.30]},  # Tsim Sha Tsui
    )  # fmt: skip
    epd = registration(
        id="urn:ngsi-ld:ContextSourceRegistration:epd", department="EPD", priority=1,
        mode="auxiliary", registrationName="air quality",
        location={"type": "Point", "coordinates": [114.26, 22.31]},  # Tseung Kwan O
    )  # fmt: skip
    h1 = registration(
        id="urn:ngsi-ld:ContextSourceRegistration:h1", department="TD", priority=3,
        location={"type": "Point", "coordinates": [114.17, 22.30]},
        observationInterval={"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-06-30T00:00:00Z"},
    )  # fmt: skip
    wsd = registration(
        id="urn:ngsi-ld:ContextSourceRegistration:wsd", department="WSD",
        managementInterval={"startAt": "2026-03-01T00:00:00Z"},
    )  # fmt: skip
    for body in (td, epd, h1, wsd):
        assert client.post(BASE, json=body).status_code == 201
    assert client.get(f"{BASE}/{td['id']}").json()["department"] == "TD"

    def ids(**params: str) -> list[str]:
        response = client.get(BASE, params=params)
        assert response.status_code == 200, response.text
        return sorted(r["id"].rsplit(":", 1)[1] for r in response.json())

    assert ids(q='department=="TD"') == ["td"]  # not h1: it holds a past period only
    assert ids(q="priority>1") == ["td"]
    assert ids(csf='mode=="auxiliary"') == ["epd"]
    assert ids(csf='registrationName~="air"', q="priority<5") == ["epd"]
    assert ids(type="TrafficFlowObserved", q="department") == ["epd", "td"]
    near_tst = {"georel": "near;maxDistance==2000", "geometry": "Point",
                "coordinates": "[114.172, 22.297]"}  # fmt: skip
    assert ids(**near_tst) == ["td"]
    box = "[[[114.2,22.2],[114.3,22.2],[114.3,22.4],[114.2,22.4],[114.2,22.2]]]"
    assert ids(georel="within", geometry="Polygon", coordinates=box) == ["epd"]
    assert ids(timerel="before", timeAt="2026-02-01T00:00:00Z") == ["h1"]
    assert ids(timerel="before", timeAt="2026-02-01T00:00:00Z", q='department=="TD"') == ["h1"]
    assert ids(timerel="after", timeAt="2026-07-01T00:00:00Z") == []
    assert ids(timerel="after", timeAt="2026-07-01T00:00:00Z", timeproperty="modifiedAt") == ["wsd"]
    between = {"timerel": "between", "timeAt": "2026-06-01T00:00:00Z",
               "endTimeAt": "2026-08-01T00:00:00Z"}  # fmt: skip
    assert ids(**between) == ["h1"]
    # An entity id alone is enough to ask (type-only selectors could hold any id).
    assert ids(id="urn:ngsi-ld:TrafficFlowObserved:1") == ["epd", "td"]
    # A Context Source property is removed by PATCH with urn:ngsi-ld:null.
    assert (
        client.patch(f"{BASE}/{td['id']}", json={"department": "urn:ngsi-ld:null"}).status_code
        == 204
    )
    assert ids(q="department") == ["epd"]
    for bad in ({"geoproperty": "elsewhere", "georel": "within", "geometry": "Polygon",
                 "coordinates": box}, {"timerel": "between", "timeAt": "2026-01-01T00:00:00Z"},
                {"timeAt": "2026-01-01T00:00:00Z"}, {"csf": "a=="},
                {"timerel": "before", "timeAt": "2026-01-01T00:00:00Z",
                 "timeproperty": "deletedAt"}):  # fmt: skip
        response = client.get(BASE, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["type"].endswith("BadRequestData")


def test_query_by_scope(client: TestClient) -> None:
    """scopeQ on the registrations' ``scope`` (the v1.8.1 OpenAPI's queryCSR), with the scope
    query language of entity queries: it was accepted and ignored, every registration found."""
    kowloon = registration(id="urn:ngsi-ld:ContextSourceRegistration:kln",
                           scope=["/HK/Kowloon/TST", "/TD"])  # fmt: skip
    island = registration(id="urn:ngsi-ld:ContextSourceRegistration:hki", scope="/HK/Island")
    bare = registration(id="urn:ngsi-ld:ContextSourceRegistration:none")
    for body in (kowloon, island, bare):
        assert client.post(BASE, json=body).status_code == 201

    def ids(scope_q: str) -> list[str]:
        response = client.get(BASE, params={"scopeQ": scope_q})
        assert response.status_code == 200, response.text
        return sorted(r["id"].rsplit(":", 1)[1] for r in response.json())

    assert ids("/HK/#") == ["hki", "kln"]
    assert ids("/HK/+/TST") == ["kln"]
    assert ids("/HK/Island") == ["hki"]
    assert ids("/HK/Island|/TD") == ["hki", "kln"]
    assert ids("/HK/#;/TD") == ["kln"]
    assert ids("/EPD") == []
    response = client.get(BASE, params={"scopeQ": "/HK//x"})
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("BadRequestData")


def test_patch_and_delete(client: TestClient) -> None:
    location = client.post(BASE, json=registration()).headers["Location"]
    patched = client.patch(location, json={"mode": "auxiliary", "management": {"timeout": 500}})
    assert patched.status_code == 204, patched.text
    body = client.get(location).json()
    assert body["mode"] == "auxiliary" and body["management"] == {"timeout": 500}
    assert client.patch(location, json={"endpoint": "gopher://x"}).status_code == 400
    removed = client.patch(location, json={"management": "urn:ngsi-ld:null"})
    assert removed.status_code == 204
    assert "management" not in client.get(location).json()
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.delete(location).status_code == 404


def test_registrations_are_per_tenant(client: TestClient) -> None:
    location = client.post(BASE, json=registration(), headers={"NGSILD-Tenant": "td"}).headers[
        "Location"
    ]
    assert client.get(location, headers={"NGSILD-Tenant": "td"}).status_code == 200
    assert client.get(location).status_code == 404


# -- the parser, by property -----------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True)
entity_infos = st.fixed_dictionaries(
    {"type": names},
    optional={
        "id": names.map(lambda n: f"urn:ngsi-ld:Thing:{n}"),
    },
)
infos = st.fixed_dictionaries(
    {},
    optional={
        "entities": st.lists(entity_infos, min_size=1, max_size=3),
        "propertyNames": st.lists(names, min_size=1, max_size=3),
        "relationshipNames": st.lists(names, min_size=1, max_size=3),
    },
).filter(bool)
payloads = st.fixed_dictionaries(
    {
        "type": st.just("ContextSourceRegistration"),
        "information": st.lists(infos, min_size=1, max_size=3),
        "endpoint": st.sampled_from(["http://a.example", "https://b.example:8443/x"]),
    },
    optional={
        "mode": st.sampled_from(["inclusive", "redirect", "auxiliary"]),
        "operations": st.lists(
            st.sampled_from(["federationOps", "retrieveOps", "queryEntity"]), min_size=1, max_size=3
        ),
        "management": st.fixed_dictionaries(
            {}, optional={"timeout": st.integers(1, 10**6), "cooldown": st.integers(1, 10**6)}
        ),
        "tenant": st.from_regex(r"[a-z]{1,10}", fullmatch=True),
        "registrationName": st.text(min_size=1, max_size=20),
    },
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(payloads)
def test_valid_payloads_round_trip(payload: dict[str, Any]) -> None:
    """Whatever a valid registration says is what a reader gets back (core @context)."""
    ctx = core_context()
    if payload.get("mode") == "redirect":
        for info in payload["information"]:
            info.setdefault("entities", [{"type": "Thing"}])
    doc = parse_registration(payload, ctx, now_us=now_us())
    rendered = render_registration(doc, ctx)
    for key, value in payload.items():
        if key == "information":
            for got, sent in zip(rendered["information"], value, strict=True):
                for member, items in sent.items():
                    if member == "entities":
                        assert got["entities"] == [{**e} for e in items]
                    else:
                        assert got[member] == list(dict.fromkeys(items))
        elif key == "operations":
            assert rendered[key] == list(dict.fromkeys(value))
        else:
            assert rendered[key] == value


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "information",
                "endpoint",
                "mode",
                "operations",
                "management",
                "contextSourceInfo",
                "expiresAt",
                "tenant",
                "refreshRate",
                "id",
            ]
        ),
        junk,
    ),
    payloads,
)
def test_malformed_payloads_only_raise_bad_request(
    mutation: dict[str, Any], base: dict[str, Any]
) -> None:
    """Any garbage in any member is refused with BadRequestData, never another error."""
    payload = {**base, **mutation}
    with contextlib.suppress(BadRequestData):
        parse_registration(payload, core_context(), now_us=now_us())


params = st.one_of(st.none(), st.text(max_size=30), names, st.sampled_from(["A,B", "(A;B)|C", ""]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(params, params, params, params)
def test_registration_query_parameters_parse_or_are_bad_request(
    id: str | None, type: str | None, id_pattern: str | None, attrs: str | None
) -> None:
    """GET /csourceRegistrations selectors: any text either parses or is BadRequestData."""
    from smartcity.hub.api.csources import wanted_of

    try:
        wanted = wanted_of(core_context(), id=id, type=type, idPattern=id_pattern, attrs=attrs)
    except BadRequestData:
        return
    if type is not None:
        assert wanted.types
    # (names are trimmed of whitespace, as every name list is: attrs of blanks is no attrs)
    if attrs and any(name.strip() for name in attrs.split(",")):
        assert wanted.attrs and all(a.startswith("https://") or ":" in a for a in wanted.attrs)


filter_text = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(["before", "after", "between", "within", "near;maxDistance==10", "Point",
                     "[1,2]", "2026-01-01T00:00:00Z", "observedAt", "location", 'a=="b"',
                     "/HK/#", "/HK/+/TST;/TD"]),
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(filter_text, min_size=11, max_size=11))
def test_registration_filters_parse_or_are_bad_request(values: list[str | None]) -> None:
    """q, csf, geo, temporal and scope parameters of a registration query: any text either
    parses into a filter that evaluates without error, or is BadRequestData."""
    from smartcity.hub.federation.regquery import parse_filter, passes

    names = ["q", "csf", "georel", "geometry", "coordinates", "geoproperty", "timerel",
             "timeAt", "endTimeAt", "timeproperty", "scopeQ"]  # fmt: skip
    try:
        flt = parse_filter(
            **dict(zip(names, values, strict=True)), max_q_length=4096, max_points=10_000
        )
    except BadRequestData:
        return
    ctx = core_context()
    doc = parse_registration(
        registration(department="TD", location={"type": "Point", "coordinates": [1, 2]},
                     observationInterval={"startAt": "2026-01-01T00:00:00Z"}),
        ctx, now_us=now_us(),
    )  # fmt: skip
    assert passes(doc, flt, ctx.expand) in (True, False)


def test_requests_finding_the_cache_stale_together_read_the_registrations_once(
    db: Database,
) -> None:
    """The forwarding path's cache of a tenant's registrations expires every ``cache_ttl``;
    the writes that find it stale at once must share one read (32 concurrent writers each
    made their own, and opened connections past the pool's size to do it)."""
    import threading
    import time

    from sqlalchemy import event

    from smartcity.hub.federation.service import RegistrationService

    service = RegistrationService(db, cache_ttl=60.0)
    service.create("", parse_registration(registration(), core_context(), now_us=now_us()))
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "csource" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert len(service.active("")) == 1
        assert len(reads) == 1
        # As if cache_ttl had passed since the read.
        service._cache[""] = (time.monotonic() - 61.0, service._cache[""][1])
        start = threading.Barrier(16)
        found: list[int] = []

        def request() -> None:
            start.wait()
            found.append(len(service.active("")))

        threads = [threading.Thread(target=request) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert found == [1] * 16
    assert len(reads) == 2
