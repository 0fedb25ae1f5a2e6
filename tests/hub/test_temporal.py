"""The Temporal API over HTTP (clauses 5.6.11-5.6.16, 5.7.3, 5.7.4), on every backend.

Times are set explicitly (observedAt) so nothing sleeps; expected aggregates are computed by
hand in the comments.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
T = "/ngsi-ld/v1/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
S1 = "urn:ngsi-ld:Sensor:1"
DS_A = "urn:ngsi-ld:Dataset:a"
DS_B = "urn:ngsi-ld:Dataset:b"


def at(hour: int, minute: int = 0) -> str:
    """A time on 2026-01-01 as clients send it."""
    return f"2026-01-01T{hour:02d}:{minute:02d}:00Z"


def iso(hour: int, minute: int = 0) -> str:
    """The same time as the hub writes it: an observedAt as it was given, a period's start or
    end without fraction (the hub's own createdAt and modifiedAt have milliseconds)."""
    return at(hour, minute)


def readings(pairs: list[tuple[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": v, "observedAt": t, **extra} for t, v in pairs]


def create(
    client: TestClient,
    entity_id: str = S1,
    etype: str = "Sensor",
    headers: dict[str, str] | None = None,
    **attrs: Any,
) -> None:
    r = client.post(
        T, json={"id": entity_id, "type": etype, **attrs}, headers={**JSON, **(headers or {})}
    )
    assert r.status_code == 201, r.text


def get(client: TestClient, url: str, status: int = 200, **params: Any) -> Any:
    r = client.get(url, params=params)
    assert r.status_code == status, r.text
    return r.json()


def values(
    client: TestClient, url: str = f"{T}/{S1}", attr: str = "temperature", **params: Any
) -> Any:
    """The simplified representation's [value, time] pairs of one attribute."""
    body = get(client, url, options="temporalValues", **params)
    return body[attr]["values"] if attr in body else []


def hourly(client: TestClient, n: int = 5) -> None:
    """temperature = 1..n at 08:00, 09:00, ..."""
    create(client, temperature=readings([(at(7 + i), i) for i in range(1, n + 1)]))


# -- reading the temporal evolution ----------------------------------------------------------


def test_entity_writes_build_the_temporal_evolution(client: TestClient) -> None:
    entity = {
        "id": S1,
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 20, "observedAt": at(8)},
        "name": {"type": "Property", "value": "lab"},
    }
    assert client.post("/ngsi-ld/v1/entities", json=entity, headers=JSON).status_code == 201
    patch = {"temperature": {"type": "Property", "value": 21, "observedAt": at(9)}}
    r = client.patch(f"/ngsi-ld/v1/entities/{S1}/attrs", json=patch, headers=JSON)
    assert r.status_code == 204, r.text
    append = {"temperature": {"type": "Property", "value": 22, "observedAt": at(10)}}
    r = client.post(f"/ngsi-ld/v1/entities/{S1}/attrs", json=append, headers=JSON)
    assert r.status_code == 204, r.text

    got = get(client, f"{T}/{S1}")
    assert got["id"] == S1 and got["type"] == "Sensor"
    temps = got["temperature"]
    assert [i["value"] for i in temps] == [20, 21, 22]
    assert [i["observedAt"] for i in temps] == [at(8), at(9), at(10)]
    assert all(i["type"] == "Property" and i["instanceId"].startswith("urn:") for i in temps)
    assert len({i["instanceId"] for i in temps}) == 3
    assert [i["value"] for i in got["name"]] == ["lab"]

    # Deleting the entity keeps its history: still found by id and by type.
    assert client.delete(f"/ngsi-ld/v1/entities/{S1}").status_code == 204
    got = get(client, f"{T}/{S1}", options="sysAttrs")
    assert len(got["temperature"]) == 3
    assert got["deletedAt"].endswith("Z") and got["createdAt"].endswith("Z")
    assert [e["id"] for e in get(client, T, type="Sensor")] == [S1]


def test_timerel_before_after_between(client: TestClient) -> None:
    hourly(client)  # 1..5 at 08:00..12:00
    assert values(client) == [[v, iso(7 + v)] for v in range(1, 6)]
    # before excludes timeAt, after includes it, between is [timeAt, endTimeAt).
    assert values(client, timerel="before", timeAt=at(10)) == [[1, iso(8)], [2, iso(9)]]
    assert values(client, timerel="after", timeAt=at(10)) == [
        [3, iso(10)],
        [4, iso(11)],
        [5, iso(12)],
    ]
    between = values(client, timerel="between", timeAt=at(9), endTimeAt=at(11))
    assert between == [[2, iso(9)], [3, iso(10)]]
    assert values(client, timerel="after", timeAt=at(13)) == []
    # Time zones are honoured: 10:00+02:00 is 08:00Z.
    assert values(client, timerel="before", timeAt="2026-01-01T10:00:00+02:00") == []


def test_last_n_returns_the_latest_in_ascending_order(client: TestClient) -> None:
    hourly(client)
    assert values(client, lastN=2) == [[4, iso(11)], [5, iso(12)]]
    assert values(client, lastN=2, timerel="before", timeAt=at(11)) == [[2, iso(9)], [3, iso(10)]]
    assert [v for v, _ in values(client, lastN=50)] == [1, 2, 3, 4, 5]
    normalized = get(client, f"{T}/{S1}", lastN=1)["temperature"]
    assert [i["value"] for i in normalized] == [5]


def test_simplified_representation_for_each_attribute_type(client: TestClient) -> None:
    create(
        client,
        temperature=[{"value": 1.5, "observedAt": at(8)}, {"value": 2.5, "observedAt": at(9)}],
        owner=[{"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "observedAt": at(8)}],
        label=[{"type": "LanguageProperty", "languageMap": {"en": "hot"}, "observedAt": at(8)}],
    )
    body = get(client, f"{T}/{S1}", options="temporalValues")
    assert body["temperature"] == {"type": "Property", "values": [[1.5, iso(8)], [2.5, iso(9)]]}
    assert body["owner"] == {"type": "Relationship", "objects": [["urn:ngsi-ld:Person:1", iso(8)]]}
    assert body["label"] == {
        "type": "LanguageProperty",
        "languageMaps": [[{"languageMap": {"en": "hot"}}, iso(8)]],
    }
    assert get(client, f"{T}/{S1}", format="temporalValues") == body
    # format wins over options.
    assert get(client, f"{T}/{S1}", format="normalized", options="temporalValues") == get(
        client, f"{T}/{S1}"
    )


def test_simplified_representation_is_accepted_as_input(client: TestClient) -> None:
    create(client, temperature={"type": "Property", "values": [[1, at(8)], [2, at(9)]]})
    assert values(client) == [[1, iso(8)], [2, iso(9)]]


def test_sys_attrs_and_json_ld(client: TestClient) -> None:
    hourly(client, 1)
    inst = get(client, f"{T}/{S1}", options="sysAttrs")["temperature"][0]
    assert inst["createdAt"].endswith("Z") and inst["modifiedAt"].endswith("Z")
    assert "createdAt" not in get(client, f"{T}/{S1}")["temperature"][0]
    r = client.get(f"{T}/{S1}", headers={"Accept": "application/ld+json"})
    assert r.status_code == 200 and "@context" in r.json()
    assert r.headers["content-type"].startswith("application/ld+json")


# -- selecting entities ----------------------------------------------------------------------


def test_query_selectors_projection_and_pagination(client: TestClient) -> None:
    create(client, "urn:ngsi-ld:Sensor:1", temperature=readings([(at(8), 1)]))
    create(
        client,
        "urn:ngsi-ld:Sensor:2",
        temperature=readings([(at(8), 2)]),
        humidity=readings([(at(8), 60)]),
    )
    create(client, "urn:ngsi-ld:Meter:1", "Meter", power=readings([(at(8), 7)]))

    def ids(**params: Any) -> list[str]:
        return [e["id"] for e in get(client, T, **params)]

    # Every entity is asked for explicitly (local=true); no selector at all is a 400.
    assert ids(local="true") == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
        "urn:ngsi-ld:Meter:1",
    ]
    assert get(client, T, 400)["type"] == ERR + "BadRequestData"
    assert ids(type="Sensor") == ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"]
    assert ids(type="Sensor,Meter") == ids(local="true")
    assert ids(id="urn:ngsi-ld:Meter:1", local="true") == ["urn:ngsi-ld:Meter:1"]
    assert ids(attrs="humidity") == ["urn:ngsi-ld:Sensor:2"]
    assert ids(idPattern="^urn:ngsi-ld:Sensor:[0-9]$", local="true") == ids(type="Sensor")
    assert ids(type="Nothing") == []

    r = client.get(T, params={"type": "Sensor", "limit": 1, "offset": 1, "count": "true"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:2"]
    assert r.headers["NGSILD-Results-Count"] == "2"
    r = client.get(T, params={"limit": 0, "count": "true", "local": "true"})
    assert r.json() == [] and r.headers["NGSILD-Results-Count"] == "3"

    # attrs also chooses what is returned; pick and omit only project.
    got = get(client, T, id="urn:ngsi-ld:Sensor:2", attrs="humidity")[0]
    assert set(got) == {"id", "type", "humidity"}
    got = get(client, T, id=S2, type="Sensor", pick="id,temperature")[0]
    assert set(got) == {"id", "temperature"}
    got = get(client, T, id=S2, type="Sensor", omit="temperature,type")[0]
    assert set(got) == {"id", "humidity"}
    # Retrieving with attrs the entity never had is a 404.
    r = client.get(f"{T}/urn:ngsi-ld:Sensor:1", params={"attrs": "humidity"})
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"


def test_unknown_entity_is_404(client: TestClient) -> None:
    r = client.get(f"{T}/urn:ngsi-ld:Sensor:404")
    assert r.status_code == 404
    assert r.json()["type"] == ERR + "ResourceNotFound"
    assert "urn:ngsi-ld:Sensor:404" in r.json()["detail"]


def test_tenants_are_isolated(client: TestClient) -> None:
    tenant_a = {"NGSILD-Tenant": "city_a"}
    create(client, headers=tenant_a, temperature=readings([(at(8), 1)]))
    assert client.get(f"{T}/{S1}").status_code == 404
    assert (
        client.get(T, params={"type": "Sensor"}, headers={"NGSILD-Tenant": "city_b"}).json() == []
    )
    r = client.get(f"{T}/{S1}", headers=tenant_a)
    assert r.status_code == 200 and r.json()["temperature"][0]["value"] == 1
    # The same id in another tenant is another entity.
    create(client, temperature=readings([(at(8), 99)]))
    assert client.get(f"{T}/{S1}", headers=tenant_a).json()["temperature"][0]["value"] == 1
    assert client.delete(f"{T}/{S1}", headers={"NGSILD-Tenant": "city_b"}).status_code == 404


# -- time properties and datasets ------------------------------------------------------------


def test_timeproperty_created_at(client: TestClient) -> None:
    # Readings observed in 2020 but written now: createdAt is when the hub stored them.
    create(client, temperature=readings([("2020-05-01T08:00:00Z", 1), ("2020-05-01T09:00:00Z", 2)]))
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert values(client, timerel="after", timeAt=since) == []
    got = get(client, f"{T}/{S1}", timeproperty="createdAt", timerel="after", timeAt=since)
    assert [i["value"] for i in got["temperature"]] == [1, 2]
    assert all("createdAt" in i for i in got["temperature"])
    assert values(client, timeproperty="createdAt", timerel="before", timeAt=since) == []
    aggregated = get(
        client,
        f"{T}/{S1}",
        timeproperty="modifiedAt",
        timerel="after",
        timeAt=since,
        aggrMethods="totalCount",
    )
    assert [p[0] for p in aggregated["temperature"]["totalCount"]] == [2]


def test_multi_instance_attributes(client: TestClient) -> None:
    create(
        client,
        temperature=[
            *readings([(at(8), 1), (at(9), 2)]),
            *readings([(at(8), 10), (at(9), 20)], datasetId=DS_A),
            *readings([(at(8), 100)], datasetId=DS_B),
        ],
    )
    normalized = get(client, f"{T}/{S1}")["temperature"]
    # Grouped by datasetId, the default instance first, each group in time order.
    assert [(i.get("datasetId"), i["value"]) for i in normalized] == [
        (None, 1),
        (None, 2),
        (DS_A, 10),
        (DS_A, 20),
        (DS_B, 100),
    ]
    only_a = get(client, f"{T}/{S1}", datasetId=DS_A)["temperature"]
    assert [i["value"] for i in only_a] == [10, 20]
    default = get(client, f"{T}/{S1}", datasetId="@none")["temperature"]
    assert [i["value"] for i in default] == [1, 2]
    two = get(client, f"{T}/{S1}", datasetId=f"{DS_A},{DS_B}")["temperature"]
    assert [i["value"] for i in two] == [10, 20, 100]
    latest = get(client, f"{T}/{S1}", lastN=1)["temperature"]  # per datasetId
    assert [i["value"] for i in latest] == [2, 20, 100]

    simplified = get(client, f"{T}/{S1}", options="temporalValues")["temperature"]
    assert simplified == [
        {"type": "Property", "values": [[1, iso(8)], [2, iso(9)]]},
        {"type": "Property", "values": [[10, iso(8)], [20, iso(9)]], "datasetId": DS_A},
        {"type": "Property", "values": [[100, iso(8)]], "datasetId": DS_B},
    ]
    aggregated = get(
        client,
        f"{T}/{S1}",
        aggrMethods="avg",
        timerel="between",
        timeAt=at(8),
        endTimeAt=at(10),
    )["temperature"]
    assert [(a.get("datasetId"), a["avg"]) for a in aggregated] == [
        (None, [[1.5, iso(8), iso(10)]]),
        (DS_A, [[15.0, iso(8), iso(10)]]),
        (DS_B, [[100.0, iso(8), iso(10)]]),
    ]


# -- aggregation -----------------------------------------------------------------------------


def test_each_aggregation_method(client: TestClient) -> None:
    data = [2, 4, 4, 4, 5, 5, 7, 9]  # at 08:00, 08:01, ... 08:07
    create(client, temperature=readings([(at(8, m), v) for m, v in enumerate(data)]))
    got = get(
        client,
        f"{T}/{S1}",
        aggrMethods="totalCount,distinctCount,sum,avg,min,max,stddev,sumsq",
        timerel="between",
        timeAt=at(8),
        endTimeAt=at(9),
    )["temperature"]
    period = [iso(8), iso(9)]  # one period: the whole interval
    assert got["type"] == "Property"
    assert got["totalCount"] == [[8, *period]]
    assert got["distinctCount"] == [[5, *period]]  # 2, 4, 5, 7, 9
    assert got["sum"] == [[40, *period]]
    assert got["avg"] == [[5, *period]]
    assert got["min"] == [[2, *period]]
    assert got["max"] == [[9, *period]]
    assert got["sumsq"] == [[232, *period]]  # 4 + 3*16 + 2*25 + 49 + 81
    # Sample standard deviation: squared deviations 9+1+1+1+0+0+4+16 = 32, over n - 1 = 7.
    assert got["stddev"][0][0] == pytest.approx(math.sqrt(32 / 7))

    # Without a time range, the period spans the first to the last instance.
    whole = get(client, f"{T}/{S1}", aggrMethods="max")["temperature"]["max"]
    assert whole == [[9, iso(8, 0), iso(8, 7)]]
    # A range inside one hour: 08:03..08:07 holds 4, 5, 5, 7, 9.
    part = get(
        client,
        f"{T}/{S1}",
        aggrMethods="avg,totalCount",
        timerel="after",
        timeAt=at(8, 3),
    )["temperature"]
    assert part["avg"][0][0] == 6 and part["totalCount"][0][0] == 5


def test_aggregation_ignores_non_numbers_but_counts_them(client: TestClient) -> None:
    create(
        client,
        status=readings([(at(8), "ok"), (at(8, 10), "ko"), (at(8, 20), "ok")]),
        owner=[
            {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{p}", "observedAt": at(8, m)}
            for m, p in ((0, 1), (5, 2), (9, 1))
        ],
    )
    got = get(client, f"{T}/{S1}", aggrMethods="totalCount,distinctCount,avg,max")
    assert got["status"]["totalCount"][0][0] == 3
    assert got["status"]["distinctCount"][0][0] == 2
    assert got["status"]["avg"] == [] and got["status"]["max"] == []
    assert got["owner"]["type"] == "Relationship"
    assert got["owner"]["distinctCount"][0][0] == 2


QUARTERS = {8: [1, 2, 3, 4], 9: [10, 20, 30, 40], 10: [5, 5, 5, 5]}  # at :00, :15, :30, :45


def quarter_hours(client: TestClient) -> None:
    create(
        client,
        temperature=readings(
            [(at(h, 15 * q), v) for h, vs in QUARTERS.items() for q, v in enumerate(vs)]
        ),
    )


def aggregate(client: TestClient, methods: str, **params: Any) -> dict[str, Any]:
    body = get(client, f"{T}/{S1}", aggrMethods=methods, **params)
    return body["temperature"]


def test_aggregation_periods(client: TestClient) -> None:
    quarter_hours(client)
    day = {"timerel": "between", "timeAt": at(8), "endTimeAt": at(11)}
    got = aggregate(client, "avg,max,totalCount", aggrPeriodDuration="PT1H", **day)
    assert got["avg"] == [
        [2.5, iso(8), iso(9)],
        [25, iso(9), iso(10)],
        [5, iso(10), iso(11)],
    ]
    assert [p[0] for p in got["max"]] == [4, 40, 5]
    assert [p[0] for p in got["totalCount"]] == [4, 4, 4]

    # Periods lie on a UTC grid and are cut to the interval: PT2H is 08-10 and 10-12 -> 11.
    got = aggregate(client, "avg", aggrPeriodDuration="PT2H", **day)
    assert got["avg"] == [[13.75, iso(8), iso(10)], [5, iso(10), iso(11)]]  # 110 / 8
    got = aggregate(client, "sum", aggrPeriodDuration="P1D", **day)
    assert got["sum"] == [[130, iso(8), iso(11)]]
    assert aggregate(client, "sum", aggrPeriodDuration="PT0S", **day) == got

    # Not whole hours: 30-minute periods (computed from the instances).
    got = aggregate(client, "avg", aggrPeriodDuration="PT30M", **day)
    assert [p[0] for p in got["avg"]] == [1.5, 3.5, 15, 35, 5, 5]
    assert got["avg"][1][1:] == [iso(8, 30), iso(9)]

    # An interval starting and ending inside hours: whole hours from the rollup, the rest
    # from the instances. 08:20-09:00 holds 3, 4; 10:00-10:40 holds 5, 5, 5.
    got = aggregate(
        client,
        "avg,totalCount",
        aggrPeriodDuration="PT1H",
        timerel="between",
        timeAt=at(8, 20),
        endTimeAt=at(10, 40),
    )
    assert got["avg"] == [
        [3.5, iso(8, 20), iso(9)],
        [25, iso(9), iso(10)],
        [5, iso(10), iso(10, 40)],
    ]
    assert [p[0] for p in got["totalCount"]] == [2, 4, 3]

    # before/after: open-ended, still on the grid.
    got = aggregate(client, "max", aggrPeriodDuration="PT1H", timerel="before", timeAt=at(10))
    assert got["max"] == [[4, iso(8), iso(9)], [40, iso(9), iso(10)]]
    got = aggregate(client, "max", aggrPeriodDuration="PT1H", timerel="after", timeAt=at(9, 30))
    assert got["max"] == [[40, iso(9, 30), iso(10)], [5, iso(10), iso(11)]]
    # lastN keeps the last periods.
    got = aggregate(client, "max", aggrPeriodDuration="PT1H", lastN=1, **day)
    assert got["max"] == [[5, iso(10), iso(11)]]


def test_rollup_and_instances_agree(client: TestClient) -> None:
    """The same aggregation from the hourly rollup and from the instances (distinctCount
    forces the latter), after writes through both APIs and across datasets."""
    entity = {"id": S1, "type": "Sensor", "temperature": readings([(at(8), 1)])[0]}
    assert client.post("/ngsi-ld/v1/entities", json=entity, headers=JSON).status_code == 201
    for minutes, value in ((5, 7.25), (15, 2), (50, -3.5), (65, 4), (130, 9.75), (185, 0)):
        hour, minute = divmod(minutes, 60)
        patch = {"temperature": readings([(at(8 + hour, minute), value)])[0]}
        r = client.patch(f"/ngsi-ld/v1/entities/{S1}/attrs", json=patch, headers=JSON)
        assert r.status_code == 204, r.text
    r = client.post(
        f"{T}/{S1}/attrs",
        json={"temperature": readings([(at(9, 59), 0.5), (at(12, 1), 8)], datasetId=DS_A)},
        headers=JSON,
    )
    assert r.status_code == 204, r.text
    for params in (
        {"aggrPeriodDuration": "PT1H"},
        {"aggrPeriodDuration": "PT3H", "timerel": "after", "timeAt": at(8, 45)},
        {"timerel": "between", "timeAt": at(8, 7), "endTimeAt": at(12, 30)},
    ):
        fast = get(client, f"{T}/{S1}", aggrMethods="sum,avg,min,max,stddev,sumsq", **params)
        raw = get(
            client, f"{T}/{S1}", aggrMethods="sum,avg,min,max,stddev,sumsq,distinctCount", **params
        )
        for a, b in zip(fast["temperature"], raw["temperature"], strict=True):
            for method in ("sum", "avg", "min", "max", "stddev", "sumsq"):
                assert [p[1:] for p in a[method]] == [p[1:] for p in b[method]], params
                assert [p[0] for p in a[method]] == pytest.approx([p[0] for p in b[method]])


def stamp(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> str:
    """Any time as the hub writes it (and clients may send it)."""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


# Around month ends: the last minute of January, the first instant of February, ...
MONTHLY = [
    (stamp(2025, 12, 31, 23, 30), 100),
    (stamp(2026, 1, 15, 12), 1),
    (stamp(2026, 1, 31, 23, 59), 3),
    (stamp(2026, 2, 1), 10),
    (stamp(2026, 2, 14, 6, 30), 20),
    (stamp(2026, 3, 31, 23), 7),
    (stamp(2026, 4, 1), 40),
    (stamp(2026, 7, 4, 10), 50),
]


@pytest.mark.parametrize("extra", ["", ",distinctCount"], ids=["rollup", "instances"])
def test_calendar_month_and_year_periods(client: TestClient, extra: str) -> None:
    """Months and years on the UTC calendar, cut to the interval; the same from the hourly
    rollup and from the instances (distinctCount forces the latter)."""
    create(client, temperature=readings(MONTHLY))

    def agg(methods: str, **params: Any) -> dict[str, Any]:
        return aggregate(client, methods + extra, **params)

    # P1M from 2026-01-10T00:30 (inside an hour) to 2026-04-01: January is cut at the start.
    got = agg(
        "avg,totalCount,max",
        aggrPeriodDuration="P1M",
        timerel="between",
        timeAt=stamp(2026, 1, 10, 0, 30),
        endTimeAt=stamp(2026, 4, 1),
    )
    assert got["avg"] == [
        [2, stamp(2026, 1, 10, 0, 30), stamp(2026, 2, 1)],  # (1 + 3) / 2
        [15, stamp(2026, 2, 1), stamp(2026, 3, 1)],  # (10 + 20) / 2
        [7, stamp(2026, 3, 1), stamp(2026, 4, 1)],
    ]
    assert [p[0] for p in got["totalCount"]] == [2, 2, 1]
    assert [p[0] for p in got["max"]] == [3, 20, 7]

    # P3M without a time range: calendar quarters, not cut.
    got = agg("sum", aggrPeriodDuration="P3M")
    assert got["sum"] == [
        [100, stamp(2025, 10, 1), stamp(2026, 1, 1)],
        [41, stamp(2026, 1, 1), stamp(2026, 4, 1)],  # 1 + 3 + 10 + 20 + 7
        [40, stamp(2026, 4, 1), stamp(2026, 7, 1)],
        [50, stamp(2026, 7, 1), stamp(2026, 10, 1)],
    ]

    # P1Y after 2025-12-31T23:45: the 23:30 reading is out, so 2025 has no period left.
    got = agg(
        "sum,totalCount",
        aggrPeriodDuration="P1Y",
        timerel="after",
        timeAt=stamp(2025, 12, 31, 23, 45),
    )
    assert got["sum"] == [[131, stamp(2026, 1, 1), stamp(2027, 1, 1)]]  # 1+3+10+20+7+40+50
    assert got["totalCount"] == [[7, stamp(2026, 1, 1), stamp(2027, 1, 1)]]
    got = agg("sum", aggrPeriodDuration="P1Y", timerel="before", timeAt=stamp(2026, 1, 1))
    assert got["sum"] == [[100, stamp(2025, 1, 1), stamp(2026, 1, 1)]]

    # P1Y6M: 18-month periods counted from January of year 0, so 2025-01 and 2026-07 start
    # one (2025 * 12 = 18 * 1350); the range cuts the second one at 2027-03-01.
    got = agg(
        "sum",
        aggrPeriodDuration="P1Y6M",
        timerel="between",
        timeAt=stamp(2025, 6, 1),
        endTimeAt=stamp(2027, 3, 1),
    )
    assert got["sum"] == [
        [181, stamp(2025, 6, 1), stamp(2026, 7, 1)],  # 100 + 41 + 40
        [50, stamp(2026, 7, 1), stamp(2027, 3, 1)],
    ]

    # lastN keeps the last periods; empty months (May, June) are left out.
    got = agg(
        "max",
        aggrPeriodDuration="P1M",
        lastN=2,
        timerel="between",
        timeAt=stamp(2026, 1, 1),
        endTimeAt=stamp(2026, 8, 1),
    )
    assert got["max"] == [
        [40, stamp(2026, 4, 1), stamp(2026, 5, 1)],
        [50, stamp(2026, 7, 1), stamp(2026, 8, 1)],
    ]


def test_month_periods_follow_instance_corrections(client: TestClient) -> None:
    """The rollup's hours move between months when an instance is moved."""
    create(client, temperature=readings(MONTHLY[1:4]))  # 1 (Jan 15), 3 (Jan 31), 10 (Feb 1)
    three = get(client, f"{T}/{S1}")["temperature"][1]
    assert three["value"] == 3
    url = f"{T}/{S1}/attrs/temperature/{three['instanceId']}"
    r = client.patch(url, json={"value": 3, "observedAt": stamp(2026, 2, 1, 0, 1)}, headers=JSON)
    assert r.status_code == 204, r.text
    got = aggregate(client, "sum,totalCount", aggrPeriodDuration="P1M")
    assert got["sum"] == [
        [1, stamp(2026, 1, 1), stamp(2026, 2, 1)],
        [13, stamp(2026, 2, 1), stamp(2026, 3, 1)],
    ]
    assert [p[0] for p in got["totalCount"]] == [1, 2]


# -- temporal writes -------------------------------------------------------------------------


def test_temporal_post_creates_then_adds_without_touching_the_latest_state(
    client: TestClient,
) -> None:
    r = client.post(
        T, json={"id": S1, "type": "Sensor", "temperature": readings([(at(8), 1)])}, headers=JSON
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/ngsi-ld/v1/temporal/entities/{S1}"
    r = client.post(
        T, json={"id": S1, "type": "Device", "temperature": readings([(at(9), 2)])}, headers=JSON
    )
    assert r.status_code == 204, r.text
    got = get(client, f"{T}/{S1}")
    assert sorted(got["type"]) == ["Device", "Sensor"]
    assert [i["value"] for i in got["temperature"]] == [1, 2]
    # History only: no latest state was created.
    assert client.get(f"/ngsi-ld/v1/entities/{S1}").status_code == 404

    r = client.post(T, json={"id": "urn:ngsi-ld:Sensor:new", "x": 1}, headers=JSON)
    assert r.status_code == 400 and "type" in r.json()["detail"]


def test_append_instances(client: TestClient) -> None:
    hourly(client, 1)
    body = {"temperature": readings([(at(9), 2), (at(10), 3)], datasetId=DS_A)}
    assert client.post(f"{T}/{S1}/attrs", json=body, headers=JSON).status_code == 204
    got = get(client, f"{T}/{S1}")["temperature"]
    assert [(i.get("datasetId"), i["value"]) for i in got] == [(None, 1), (DS_A, 2), (DS_A, 3)]
    r = client.post(f"{T}/urn:ngsi-ld:Sensor:404/attrs", json=body, headers=JSON)
    assert r.status_code == 404
    r = client.post(f"{T}/{S1}/attrs", json={"id": S1}, headers=JSON)
    assert r.status_code == 400 and "attribute" in r.json()["detail"]


def test_patch_one_instance(client: TestClient) -> None:
    create(client, temperature=readings([(at(8), 1), (at(8, 10), 2), (at(8, 20), 3)]))
    ids = [i["instanceId"] for i in get(client, f"{T}/{S1}")["temperature"]]
    url = f"{T}/{S1}/attrs/temperature/{ids[1]}"
    body = {"temperature": [{"type": "Property", "value": 50, "observedAt": at(8, 10)}]}
    r = client.patch(url, json=body, headers=JSON)
    assert r.status_code == 204, r.text
    assert [v for v, _ in values(client)] == [1, 50, 3]
    assert get(client, f"{T}/{S1}")["temperature"][1]["instanceId"] == ids[1]
    # The hourly aggregates follow the correction...
    assert aggregate(client, "max", aggrPeriodDuration="PT1H")["max"][0][0] == 50
    # ... also when it moves the instance to another hour.
    r = client.patch(url, json={"value": 60, "observedAt": at(9, 30)}, headers=JSON)
    assert r.status_code == 204, r.text
    got = aggregate(client, "max,totalCount", aggrPeriodDuration="PT1H")
    assert [p[0] for p in got["totalCount"]] == [2, 1]
    assert [p[0] for p in got["max"]] == [3, 60]

    r = client.patch(f"{T}/{S1}/attrs/temperature/urn:ngsi-ld:x:404", json=body, headers=JSON)
    assert r.status_code == 404
    r = client.patch(f"{T}/{S1}/attrs/humidity/{ids[0]}", json={"value": 1}, headers=JSON)
    assert r.status_code == 404
    r = client.patch(url, json={"value": 1, "datasetId": DS_A}, headers=JSON)
    assert r.status_code == 400 and "datasetId" in r.json()["detail"]
    r = client.patch(url, json={"humidity": {"value": 1}}, headers=JSON)
    assert r.status_code == 400 and "temperature" in r.json()["detail"]


def test_delete_instance_attribute_and_entity(client: TestClient) -> None:
    create(
        client,
        temperature=[
            *readings([(at(8), 1), (at(8, 30), 9)]),
            *readings([(at(8), 10)], datasetId=DS_A),
            *readings([(at(8), 20)], datasetId=DS_B),
        ],
        humidity=readings([(at(8), 60)]),
    )
    nine = get(client, f"{T}/{S1}")["temperature"][1]
    assert nine["value"] == 9
    r = client.delete(f"{T}/{S1}/attrs/temperature/{nine['instanceId']}")
    assert r.status_code == 204
    assert get(client, f"{T}/{S1}", datasetId="@none")["temperature"] == [
        {"type": "Property", "value": 1, "observedAt": at(8), "instanceId": ANY}
    ]
    maxima = aggregate(client, "max", datasetId="@none", aggrPeriodDuration="PT1H")["max"]
    assert maxima[0][0] == 1
    assert client.delete(f"{T}/{S1}/attrs/temperature/{nine['instanceId']}").status_code == 404

    # Without datasetId: the default instance only; then one dataset; then all.
    assert client.delete(f"{T}/{S1}/attrs/temperature").status_code == 204
    assert client.delete(f"{T}/{S1}/attrs/temperature").status_code == 404
    left = lambda: [i.get("datasetId") for i in get(client, f"{T}/{S1}").get("temperature", [])]  # noqa: E731
    assert left() == [DS_A, DS_B]
    assert (
        client.delete(f"{T}/{S1}/attrs/temperature", params={"datasetId": DS_A}).status_code == 204
    )
    assert left() == [DS_B]
    r = client.delete(f"{T}/{S1}/attrs/temperature", params={"deleteAll": "true"})
    assert r.status_code == 204 and left() == []
    assert "humidity" in get(client, f"{T}/{S1}")

    assert client.delete(f"{T}/{S1}").status_code == 204
    assert client.get(f"{T}/{S1}").status_code == 404
    assert client.delete(f"{T}/{S1}").status_code == 404


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


# -- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"timerel": "during", "timeAt": at(8)}, "timerel"),
        ({"timerel": "before"}, "timeAt"),
        ({"timeAt": at(8)}, "timerel"),
        ({"timerel": "between", "timeAt": at(8)}, "endTimeAt"),
        ({"timerel": "between", "timeAt": at(9), "endTimeAt": at(8)}, "later"),
        ({"timerel": "after", "timeAt": at(8), "endTimeAt": at(9)}, "endTimeAt"),
        ({"timerel": "before", "timeAt": "yesterday"}, "timeAt"),
        ({"timeproperty": "expiresAt"}, "timeproperty"),
        ({"lastN": "0"}, "lastN"),
        ({"lastN": "many"}, "lastN"),
        ({"aggrMethods": "median"}, "median"),
        ({"aggrMethods": "avg", "aggrPeriodDuration": "1 hour"}, "aggrPeriodDuration"),
        ({"aggrMethods": "avg", "aggrPeriodDuration": "P1M15D"}, "combined"),
        ({"aggrMethods": "avg", "aggrPeriodDuration": "P1YT1H"}, "combined"),
        ({"aggrPeriodDuration": "PT1H"}, "aggrMethods"),
        ({"options": "aggregatedValues"}, "aggrMethods"),
        ({"options": "temporalValues,aggregatedValues"}, "not both"),
        ({"options": "temporalValues", "aggrMethods": "avg"}, "aggrMethods"),
        ({"format": "bogus"}, "format"),
        ({"datasetId": "not a uri"}, "datasetId"),
        (
            {
                "aggrMethods": "avg",
                "aggrPeriodDuration": "PT1S",
                "timerel": "between",
                "timeAt": "2026-01-01T00:00:00Z",
                "endTimeAt": "2027-01-01T00:00:00Z",
            },
            "periods",
        ),
        (
            {
                "aggrMethods": "avg",
                "aggrPeriodDuration": "P1M",
                "timerel": "between",
                "timeAt": "0001-01-01T00:00:00Z",
                "endTimeAt": "9999-01-01T00:00:00Z",
            },
            "periods",
        ),
    ],
)
def test_bad_parameters_are_400_saying_why(
    client: TestClient, params: dict[str, str], word: str
) -> None:
    hourly(client, 1)
    for url in (T, f"{T}/{S1}"):
        r = client.get(url, params={"type": "Sensor", **params} if url == T else params)
        assert r.status_code == 400, (url, params, r.text)
        assert r.json()["type"] == ERR + "BadRequestData"
        assert word in r.json()["detail"], (word, r.json())


def test_unsupported_options_are_invalid_request(client: TestClient) -> None:
    """keyValues is an entity representation the temporal API does not support: an options
    value unsupported by the operation is InvalidRequest (clause 5.5.2), on GET and POST."""
    hourly(client, 1)
    answers = [
        client.get(T, params={"type": "Sensor", "options": "keyValues"}),
        client.get(f"{T}/{S1}", params={"options": "keyValues"}),
        post_query(client, {"type": "Query"}, 400, options="keyValues"),
    ]
    for r in answers:
        assert r.status_code == 400, r.text
        assert r.json()["type"] == ERR + "InvalidRequest"
        assert "keyValues" in r.json()["detail"]


def test_bad_bodies_are_400(client: TestClient) -> None:
    cases = [
        ([1, 2], "object"),
        ({"type": "Sensor"}, "id"),
        ({"id": S1, "type": "Sensor", "t": {"type": "Property"}}, "value"),
        ({"id": S1, "type": "Sensor", "t": {"type": "Property", "values": [[1]]}}, "pairs"),
        ({"id": S1, "type": "Sensor", "t": [{"value": 1, "observedAt": "noon"}]}, "observedAt"),
        ({"id": S1, "type": "Sensor", "t": []}, "no instances"),
    ]
    for body, word in cases:
        r = client.post(T, json=body, headers=JSON)
        assert r.status_code == 400, (body, r.text)
        assert word in r.json()["detail"], (word, r.json())
    r = client.get(T, params={"limit": "0"})
    assert r.status_code == 400 and "count" in r.json()["detail"]


def latest_and_history_only(client: TestClient) -> None:
    for n, status, scope in ((1, "ok", "/Kowloon"), (2, "ko", "/Central")):
        entity = {
            "id": f"urn:ngsi-ld:Sensor:{n}",
            "type": "Sensor",
            "scope": scope,
            "status": status,
            "temperature": readings([(at(8), n)])[0],
        }
        assert client.post("/ngsi-ld/v1/entities", json=entity, headers=JSON).status_code == 201
    # Only in the history: never matches q or scopeQ.
    create(client, "urn:ngsi-ld:Sensor:3", status=readings([(at(8), "ok")]))


def test_q_selects_on_the_latest_state(client: TestClient) -> None:
    latest_and_history_only(client)

    def ids(**params: Any) -> list[str]:
        return [e["id"] for e in get(client, T, type="Sensor", **params)]

    assert ids(q='status=="ok"') == ["urn:ngsi-ld:Sensor:1"]
    assert ids(q="temperature>1") == ["urn:ngsi-ld:Sensor:2"]
    assert ids(q='status=="none"') == []
    got = get(client, T, q='status=="ok"', attrs="temperature", options="temporalValues")
    assert got == [
        {
            "id": "urn:ngsi-ld:Sensor:1",
            "type": "Sensor",
            "scope": "/Kowloon",
            "temperature": {"type": "Property", "values": [[1, iso(8)]]},
        }
    ]


def test_scope_q_selects_on_the_latest_state(client: TestClient) -> None:
    pytest.importorskip("smartcity.hub.query.scope")
    latest_and_history_only(client)
    got = get(client, T, type="Sensor", scopeQ="/Central")
    assert [e["id"] for e in got] == ["urn:ngsi-ld:Sensor:2"]
    assert got[0]["scope"] == "/Central"


# -- POST /temporal/entityOperations/query ---------------------------------------------------

Q = "/ngsi-ld/v1/temporal/entityOperations/query"
S2 = "urn:ngsi-ld:Sensor:2"
M1 = "urn:ngsi-ld:Meter:1"


def post_query(client: TestClient, body: Any, status: int = 200, **params: Any) -> Any:
    r = client.post(Q, json=body, params=params, headers=JSON)
    assert r.status_code == status, r.text
    return r


def three_entities(client: TestClient) -> None:
    create(client, S1, temperature=readings([(at(8), 1), (at(9), 2), (at(10), 3)]))
    create(
        client,
        S2,
        temperature=readings([(at(8), 10), (at(9), 20)]),
        humidity=readings([(at(8), 60)]),
    )
    create(client, M1, "Meter", power=readings([(at(8), 7)]))


def test_post_query_answers_as_the_equivalent_get(client: TestClient) -> None:
    three_entities(client)
    between = {"timerel": "between", "timeAt": at(8), "endTimeAt": at(9, 30)}
    cases: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
        # (Query body, query parameters of the POST, parameters of the equivalent GET)
        ({"entities": [{"type": "Sensor"}]}, {}, {"type": "Sensor"}),
        ({"entities": [{"type": "Sensor"}, {"type": "Meter"}]}, {}, {"type": "Sensor,Meter"}),
        (
            {},
            {"options": "temporalValues", "local": "true"},
            {"options": "temporalValues", "local": "true"},
        ),
        (
            {"entities": [{"id": S2, "type": "Sensor"}], "attrs": ["temperature"]},
            {"format": "temporalValues"},
            {"id": S2, "type": "Sensor", "attrs": "temperature", "format": "temporalValues"},
        ),
        (
            {"entities": [{"id": S1, "type": "Sensor"}, {"id": M1, "type": "Sensor"}]},
            {},
            {"id": f"{S1},{M1}", "type": "Sensor"},
        ),
        (
            {"entities": [{"idPattern": "^urn:ngsi-ld:Sensor:"}], "temporalQ": {"lastN": 1}},
            {"local": "true"},
            {"idPattern": "^urn:ngsi-ld:Sensor:", "lastN": 1, "local": "true"},
        ),
        (
            {"entities": [{"type": "Sensor"}], "temporalQ": between, "pick": ["id", "humidity"]},
            {"options": "sysAttrs"},
            {"type": "Sensor", "pick": "id,humidity", "options": "sysAttrs", **between},
        ),
        (
            {"entities": [{"type": "Sensor"}], "temporalQ": {"timerel": "after", "timeAt": at(8)}},
            {"aggrMethods": "avg,totalCount", "aggrPeriodDuration": "PT1H"},
            {
                "type": "Sensor",
                "timerel": "after",
                "timeAt": at(8),
                "aggrMethods": "avg,totalCount",
                "aggrPeriodDuration": "PT1H",
            },
        ),
        (
            {"temporalQ": {"timerel": "before", "timeAt": at(9)}},
            {"limit": 1, "offset": 1, "count": "true", "local": "true"},
            {
                "timerel": "before",
                "timeAt": at(9),
                "limit": 1,
                "offset": 1,
                "count": "true",
                "local": "true",
            },
        ),
    ]
    for body, post_params, get_params in cases:
        posted = post_query(client, {"type": "Query", **body}, **post_params)
        got = client.get(T, params=get_params)
        assert got.status_code == 200, got.text
        assert posted.json() == got.json(), (body, post_params)
        assert posted.headers.get("NGSILD-Results-Count") == got.headers.get("NGSILD-Results-Count")

    # And by hand, in case GET itself went wrong.
    body = {
        "type": "Query",
        "entities": [{"id": S2, "type": "Sensor"}],
        "attrs": ["temperature"],
        "temporalQ": between,
    }
    assert post_query(client, body, options="temporalValues").json() == [
        {
            "id": S2,
            "type": "Sensor",
            "temperature": {"type": "Property", "values": [[10, iso(8)], [20, iso(9)]]},
        }
    ]
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "temporalQ": between}
    got = post_query(client, body, aggrMethods="sum", aggrPeriodDuration="P1M").json()
    assert [(e["id"], e["temperature"]["sum"]) for e in got] == [
        (S1, [[3, iso(8), iso(9, 30)]]),  # 1 + 2, January cut to the interval
        (S2, [[30, iso(8), iso(9, 30)]]),
    ]
    assert got[1]["humidity"]["sum"] == [[60, iso(8), iso(9, 30)]]
    r = post_query(client, {"type": "Query"}, limit=0, count="true", local="true")
    assert r.json() == [] and r.headers["NGSILD-Results-Count"] == "3"
    # lastN may be a query parameter too.
    one = {"type": "Query", "entities": [{"id": S1, "type": "Sensor"}]}
    assert post_query(client, one, lastN=1).json() == [
        {"id": S1, "type": "Sensor", "temperature": [ANY]}
    ]


def test_post_query_selects_on_the_latest_state_and_takes_a_body_context(
    client: TestClient,
) -> None:
    latest_and_history_only(client)
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "q": 'status=="ok"'}
    assert [e["id"] for e in post_query(client, body).json()] == ["urn:ngsi-ld:Sensor:1"]
    # JSON-LD: the body's @context expands the names, the response is compacted with it.
    ctx = {"Thermometer": "https://uri.etsi.org/ngsi-ld/default-context/Sensor"}
    body = {
        "type": "Query",
        "entities": [{"type": "Thermometer"}],
        "attrs": ["temperature"],
        "@context": ctx,
    }
    r = client.post(Q, json=body, headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json()] == ["Thermometer", "Thermometer"]


@pytest.mark.parametrize(
    ("body", "params", "word"),
    [
        ([{"type": "Query"}], {}, "Query"),
        ({"type": "Subscription"}, {}, "Query"),
        ({"entities": [{"type": "Sensor"}]}, {}, "Query"),
        ({"type": "Query", "entities": []}, {}, "entities"),
        ({"type": "Query", "entities": "Sensor"}, {}, "entities"),
        ({"type": "Query", "entities": [{"type": "Sensor", "name": "x"}]}, {}, "name"),
        ({"type": "Query", "entities": [{"type": 5}]}, {}, "type"),
        ({"type": "Query", "entities": [{"idPattern": "a"}, {"type": "Sensor"}]}, {}, "idPattern"),
        (
            {"type": "Query", "entities": [{"id": S1, "type": "Sensor"}, {"id": S2, "type": "X"}]},
            {},
            "same type",
        ),
        ({"type": "Query", "entities": [{"id": S1}, {"type": "Sensor"}]}, {}, "all"),
        ({"type": "Query", "entities": [{"id": "not a uri"}]}, {}, "id"),
        ({"type": "Query", "temporalQuery": {}}, {}, "temporalQuery"),
        ({"type": "Query", "temporalQ": "after"}, {}, "temporalQ"),
        ({"type": "Query", "temporalQ": {"timerel": "after"}}, {}, "timeAt"),
        ({"type": "Query", "temporalQ": {"timerel": "during", "timeAt": at(8)}}, {}, "timerel"),
        ({"type": "Query", "temporalQ": {"lastN": "2"}}, {}, "lastN"),
        ({"type": "Query", "temporalQ": {"lastN": 0}}, {}, "lastN"),
        ({"type": "Query", "temporalQ": {"timezone": "UTC"}}, {}, "timezone"),
        ({"type": "Query", "temporalQ": {"lastN": 1}}, {"lastN": "2"}, "lastN"),
        ({"type": "Query", "attrs": "temperature"}, {}, "attrs"),
        ({"type": "Query", "q": 5}, {}, "q"),
        ({"type": "Query", "q": "temperature>>1"}, {}, "q"),
        ({"type": "Query", "geoQ": {"georel": "near"}}, {}, "geo"),
        ({"type": "Query"}, {"aggrMethods": "avg", "aggrPeriodDuration": "P1M15D"}, "combined"),
        ({"type": "Query"}, {"limit": "0"}, "count"),
    ],
)
def test_post_query_bad_bodies_are_400_saying_why(
    client: TestClient, body: Any, params: dict[str, str], word: str
) -> None:
    hourly(client, 1)
    r = post_query(client, body, 400, **params)
    assert r.json()["type"] == ERR + "BadRequestData"
    assert word in r.json()["detail"], (word, r.json())
