"""The Temporal API's conformance to NGSI-LD v1.8 (ETSI GS CIM 009) where the ETSI suite
checks details: temporal pagination (clause 6.3.10), deletedAt, values and times as given,
the simplified representation of every attribute type, and parameter checking.

Each test names the suite's test cases it mirrors; times are set explicitly (observedAt).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Limits, Settings

JSON = {"Content-Type": "application/json"}
T = "/ngsi-ld/v1/temporal/entities"
E = "/ngsi-ld/v1/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
V1 = "urn:ngsi-ld:Vehicle:1"
V2 = "urn:ngsi-ld:Vehicle:2"


def at(minute: int, day: int = 1) -> str:
    return f"2020-01-{day:02d}T01:{minute:02d}:00Z"


def readings(minutes: range, day: int = 1) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": m, "observedAt": at(m, day)} for m in minutes]


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    """A hub answering at most 3 instances per attribute: the suite's pagination tests
    assume a server limit below the 20 instances their entities have."""
    limited_settings = Settings(
        database_url=settings.database_url,
        auth_required=False,
        limits=Limits(max_temporal_instances=3),
    )
    with TestClient(create_app(limited_settings)) as c:
        yield c


def create(client: TestClient, entity_id: str = V1, **attrs: Any) -> None:
    r = client.post(T, json={"id": entity_id, "type": "Vehicle", **attrs}, headers=JSON)
    assert r.status_code == 201, r.text


# -- temporal pagination (clause 6.3.10; suite 020_13, 020_14, 021_15, 021_16) -----------------


def content_range(r: Any) -> tuple[str, str, str]:
    unit, _, rest = r.headers["content-range"].partition(" ")
    assert unit == "date-time"
    span, _, size = rest.rpartition("/")
    # Both ends are date-times with '-' inside: split after the first "Z-".
    start, _, end = span.partition("Z-")
    return f"{start}Z", end, size


def test_server_limit_gives_206_oldest_first_with_the_range(limited: TestClient) -> None:
    create(limited, speed=readings(range(1, 6)), fuelLevel=readings(range(3, 8)))
    r = limited.get(f"{T}/{V1}")
    assert r.status_code == 206, r.text
    body = r.json()
    # Every attribute cut at the same time: speed 1..3 ends at 01:03, so fuelLevel stops too.
    assert [i["value"] for i in body["speed"]] == [1, 2, 3]
    assert [i["value"] for i in body["fuelLevel"]] == [3]
    assert content_range(r) == (at(1), at(3), "*")
    # timerel=after and between: the range starts at timeAt.
    r = limited.get(f"{T}/{V1}", params={"timerel": "after", "timeAt": "2019-01-01T01:01:00Z"})
    assert r.status_code == 206
    assert content_range(r) == ("2019-01-01T01:01:00Z", at(3), "*")
    # The next page starts where the range ended.
    r = limited.get(f"{T}/{V1}", params={"timerel": "after", "timeAt": at(3)})
    assert r.status_code == 206
    assert [i["value"] for i in r.json()["speed"]] == [3, 4, 5]
    assert content_range(r) == (at(3), at(5), "*")
    # Nothing left out: 200 and no Content-Range.
    r = limited.get(f"{T}/{V1}", params={"timerel": "after", "timeAt": at(6)})
    assert r.status_code == 200 and "content-range" not in r.headers
    assert [i["value"] for i in r.json()["fuelLevel"]] == [6, 7]


def test_last_n_above_the_server_limit_gives_206_newest_first(limited: TestClient) -> None:
    create(limited, speed=readings(range(1, 6)), fuelLevel=readings(range(3, 8)))
    r = limited.get(f"{T}/{V1}", params={"lastN": 5, "options": "temporalValues"})
    assert r.status_code == 206
    body = r.json()
    assert [v for v, _ in body["fuelLevel"]["values"]] == [5, 6, 7]
    assert [v for v, _ in body["speed"]["values"]] == [5]
    # Reversed: from the newest to the oldest returned, and the size is lastN.
    assert content_range(r) == (at(7), at(5), "5")
    before = {"timerel": "before", "timeAt": "2021-01-01T01:01:00Z", "lastN": 20}
    assert content_range(limited.get(f"{T}/{V1}", params=before)) == (
        "2021-01-01T01:01:00Z",
        at(5),
        "20",
    )
    between = {**before, "timerel": "between", "timeAt": "2019-01-01T00:00:00Z"}
    between["endTimeAt"] = "2021-01-01T01:01:00Z"
    assert content_range(limited.get(f"{T}/{V1}", params=between))[0] == "2021-01-01T01:01:00Z"
    # lastN within the limit is what the client asked for: complete, 200.
    r = limited.get(f"{T}/{V1}", params={"lastN": 2})
    assert r.status_code == 200 and "content-range" not in r.headers
    assert [i["value"] for i in r.json()["speed"]] == [4, 5]


def test_an_attribute_cut_away_entirely_is_named_empty(limited: TestClient) -> None:
    # Suite 020_14: unsynchronised attributes, the second one starts after the range ends.
    create(limited, speed=readings(range(1, 11)), fuelLevel=readings(range(1, 11), day=2))
    r = limited.get(f"{T}/{V1}", params={"timerel": "after", "timeAt": "2019-01-01T00:00:00Z"})
    assert r.status_code == 206
    assert r.json()["fuelLevel"] == [] and len(r.json()["speed"]) == 3
    r = limited.get(f"{T}/{V1}", params={"lastN": 100})
    assert r.status_code == 206
    assert r.json()["speed"] == [] and len(r.json()["fuelLevel"]) == 3
    r = limited.get(f"{T}/{V1}", params={"lastN": 100, "format": "temporalValues"})
    assert r.json()["speed"] == {"type": "Property", "values": []}


def test_query_is_cut_across_entities_and_by_post(limited: TestClient) -> None:
    create(limited, V1, speed=readings(range(1, 6)))
    create(limited, V2, speed=readings(range(2, 4)))
    r = limited.get(T, params={"type": "Vehicle"})
    assert r.status_code == 206
    by_id = {e["id"]: [i["value"] for i in e["speed"]] for e in r.json()}
    assert by_id == {V1: [1, 2, 3], V2: [2, 3]}
    assert content_range(r) == (at(1), at(3), "*")
    query = {"type": "Query", "entities": [{"type": "Vehicle"}]}
    r = limited.post("/ngsi-ld/v1/temporal/entityOperations/query", json=query, headers=JSON)
    assert r.status_code == 206 and content_range(r) == (at(1), at(3), "*")


# -- deletions in the temporal evolution (timeproperty=deletedAt; suite 020_15, 020_17-020_20) --


def vehicle() -> dict[str, Any]:
    return {
        "id": V1,
        "type": "Vehicle",
        "speed": {"type": "Property", "value": 120, "observedAt": at(1)},
        "fuelLevel": [
            {"type": "Property", "value": 67, "observedAt": at(1)},
            {"type": "Property", "value": 60, "observedAt": at(1), "datasetId": "urn:ds:b"},
        ],
        "isParkedIn": {"type": "Relationship", "object": "urn:ngsi-ld:Parking:1"},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "car", "fr": "voiture"}},
    }


def test_deleting_an_attribute_keeps_a_record_of_the_deletion(client: TestClient) -> None:
    assert client.post(E, json=vehicle(), headers=JSON).status_code == 201
    assert client.delete(f"{E}/{V1}/attrs/speed").status_code == 204
    assert client.delete(f"{E}/{V1}/attrs/isParkedIn").status_code == 204
    assert client.delete(f"{E}/{V1}/attrs/name").status_code == 204
    r = client.get(f"{T}/{V1}", params={"timeproperty": "deletedAt"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "type", "speed", "isParkedIn", "name"}  # fuelLevel still lives
    (speed,) = body["speed"]
    assert speed["type"] == "Property" and speed["value"] == "urn:ngsi-ld:null"
    assert speed["deletedAt"].endswith("Z") and speed["instanceId"].startswith("urn:")
    assert body["isParkedIn"][0]["object"] == "urn:ngsi-ld:null"
    assert body["name"][0]["languageMap"] == {"@none": "urn:ngsi-ld:null"}
    simplified = client.get(
        f"{T}/{V1}", params={"timeproperty": "deletedAt", "options": "temporalValues"}
    ).json()
    assert simplified["speed"]["values"] == [["urn:ngsi-ld:null", speed["deletedAt"]]]
    # The deletion is within a timerel on deletedAt, and not an instance at any observedAt.
    window = {"timeproperty": "deletedAt", "timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}
    assert len(client.get(f"{T}/{V1}", params=window).json()["speed"]) == 1
    window["timerel"] = "before"
    assert "speed" not in client.get(f"{T}/{V1}", params=window).json()
    observed = client.get(f"{T}/{V1}").json()
    assert [i["value"] for i in observed["speed"]] == [120]
    count = {"aggrMethods": "totalCount", "attrs": "speed"}
    assert client.get(f"{T}/{V1}", params=count).json()["speed"]["totalCount"][0][0] == 1


def test_deleting_a_dataset_or_the_entity_records_each_instance(client: TestClient) -> None:
    assert client.post(E, json=vehicle(), headers=JSON).status_code == 201
    r = client.delete(f"{E}/{V1}/attrs/fuelLevel", params={"datasetId": "urn:ds:b"})
    assert r.status_code == 204
    got = client.get(f"{T}/{V1}", params={"timeproperty": "deletedAt"}).json()
    assert [(i["value"], i["datasetId"]) for i in got["fuelLevel"]] == [
        ("urn:ngsi-ld:null", "urn:ds:b")
    ]
    assert client.delete(f"{E}/{V1}").status_code == 204
    got = client.get(f"{T}/{V1}", params={"timeproperty": "deletedAt"}).json()
    assert {a: len(got[a]) for a in ("speed", "fuelLevel", "isParkedIn", "name")} == {
        "speed": 1,
        "fuelLevel": 2,  # datasetId b before, the default instance with the entity
        "isParkedIn": 1,
        "name": 1,
    }


# -- values and times as they were given (suite 020_01, 020_02, 020_11) ------------------------


def test_values_and_times_come_back_as_given(client: TestClient) -> None:
    speed = [
        {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
        {"type": "Property", "value": 80.5, "observedAt": "2020-08-01T12:05:00.25Z"},
        {"type": "Property", "value": 100, "observedAt": "2020-08-01T14:07:00+02:00"},
    ]
    create(client, speed=speed)
    normalized = client.get(f"{T}/{V1}").json()["speed"]
    assert [(i["value"], i["observedAt"]) for i in normalized] == [
        (120, "2020-08-01T12:03:00Z"),
        (80.5, "2020-08-01T12:05:00.25Z"),
        (100, "2020-08-01T14:07:00+02:00"),  # 12:07Z
    ]
    pairs = client.get(f"{T}/{V1}", params={"format": "temporalValues"}).json()["speed"]["values"]
    assert pairs == [
        [120, "2020-08-01T12:03:00Z"],
        [80.5, "2020-08-01T12:05:00.25Z"],
        [100, "2020-08-01T14:07:00+02:00"],
    ]
    assert isinstance(pairs[0][0], int)
    # Period boundaries are computed: whole seconds have no fraction.
    aggregated = client.get(
        f"{T}/{V1}", params={"aggrMethods": "totalCount", "aggrPeriodDuration": "PT1H"}
    ).json()["speed"]["totalCount"]
    assert aggregated == [[3, "2020-08-01T12:00:00Z", "2020-08-01T13:00:00Z"]]
    # Times the hub keeps itself keep its own form (milliseconds).
    created = client.get(
        f"{T}/{V1}", params={"format": "temporalValues", "timeproperty": "createdAt"}
    ).json()["speed"]["values"]
    assert all(t.endswith("Z") and t[19] == "." for _, t in created)


# -- the simplified representation of every type (suite 020_12, 020_21, 020_22) ---------------


def test_simplified_values_of_vocab_language_and_json_properties(client: TestClient) -> None:
    t1, t2 = "2020-08-01T12:03:00Z", "2020-08-01T12:05:00Z"
    create(
        client,
        category=[
            {"type": "VocabProperty", "vocab": "monument", "observedAt": t1},
            {"type": "VocabProperty", "vocab": ["monument", "sightseeing"], "observedAt": t2},
        ],
        street=[
            {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place"}, "observedAt": t1}
        ],
        reading=[{"type": "JsonProperty", "json": {"value": 120}, "observedAt": t1}],
    )
    body = client.get(f"{T}/{V1}", params={"format": "temporalValues"}).json()
    assert body["category"] == {
        "type": "VocabProperty",
        "vocabs": [[{"vocab": "monument"}, t1], [{"vocab": ["monument", "sightseeing"]}, t2]],
    }
    assert body["street"] == {
        "type": "LanguageProperty",
        "languageMaps": [[{"languageMap": {"fr": "Grand Place"}}, t1]],
    }
    assert body["reading"] == {"type": "JsonProperty", "jsons": [[{"json": {"value": 120}}, t1]]}
    # One language picked: plain strings, a Property.
    picked = client.get(f"{T}/{V1}", params={"format": "temporalValues", "lang": "fr"}).json()
    assert picked["street"] == {"type": "Property", "values": [["Grand Place", t1]]}
    # The simplified output is accepted as input.
    other = {k: v for k, v in body.items() if k not in ("id", "type")}
    r = client.post(T, json={"id": V2, "type": "Vehicle", **other}, headers=JSON)
    assert r.status_code == 201, r.text
    again = client.get(f"{T}/{V2}", params={"format": "temporalValues"}).json()
    assert {k: v for k, v in again.items() if k != "id"} == {
        k: v for k, v in body.items() if k != "id"
    }


# -- format over options (suite 021_19) --------------------------------------------------------


def test_format_takes_precedence_over_options_and_their_aggregation(client: TestClient) -> None:
    create(client, speed=readings(range(1, 3)))
    simplified = client.get(f"{T}/{V1}", params={"format": "temporalValues"}).json()
    for params in (
        {"format": "temporalValues", "options": "aggregatedValues", "aggrMethods": "sum"},
        {"format": "temporalValues", "options": "aggregatedValues,temporalValues"},
    ):
        for url in (f"{T}/{V1}", T):
            r = client.get(url, params={**params, "type": "Vehicle"} if url == T else params)
            assert r.status_code == 200, (params, r.text)
            assert (r.json()[0] if url == T else r.json()) == simplified
    r = client.get(f"{T}/{V1}", params={"format": "normalized", "options": "temporalValues"})
    assert r.json() == client.get(f"{T}/{V1}").json()


# -- bad or empty selections (suite 020_23, 021_12, 021_22, 021_25) ----------------------------


def test_pick_and_omit_that_leave_nothing_are_404(client: TestClient) -> None:
    create(client, speed=readings(range(1, 3)), fuelLevel=readings(range(1, 3)))
    for params in ({"pick": "unknown"}, {"omit": "id,type,fuelLevel,speed"}):
        r = client.get(f"{T}/{V1}", params=params)
        assert r.status_code == 404, (params, r.text)
        assert r.json()["type"] == ERR + "ResourceNotFound" and r.json()["title"]
    assert client.get(f"{T}/{V1}", params={"pick": "id"}).json() == {"id": V1}
    assert set(client.get(f"{T}/{V1}", params={"omit": "speed"}).json()) == {
        "id",
        "type",
        "fuelLevel",
    }


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"pick": "speed", "attrs": "fuelLevel"}, "attrs"),
        ({"omit": "speed", "attrs": "fuelLevel"}, "attrs"),
        ({"pick": "speed", "omit": "speed"}, "omit"),
        ({"q": "speed>>90"}, "q"),
        ({"q": "(speed==1"}, "q"),
    ],
)
def test_bad_selections_are_400_bad_request_data(
    client: TestClient, params: dict[str, str], word: str
) -> None:
    create(client, speed=readings(range(1, 3)))
    urls = [T, f"{T}/{V1}"] if "q" not in params else [T]
    for url in urls:
        r = client.get(url, params={"type": "Vehicle", **params} if url == T else params)
        assert r.status_code == 400, (url, params, r.text)
        assert r.json()["type"] == ERR + "BadRequestData" and word in r.json()["detail"]
    if "q" in params:
        body = {"type": "Query", "entities": [{"type": "Vehicle"}], "q": params["q"]}
        r = client.post("/ngsi-ld/v1/temporal/entityOperations/query", json=body, headers=JSON)
        assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"


def test_a_query_names_what_it_is_about_or_asks_for_everything(client: TestClient) -> None:
    create(client, speed=readings(range(1, 3)))
    r = client.get(T, params={"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    assert "type" in r.json()["detail"] and "local=true" in r.json()["detail"]
    # Entity ids alone are not enough (suite 021_24).
    r = client.get(T, params={"id": V1, "timerel": "after", "timeAt": "2020-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    assert client.get(T, params={"id": V1, "type": "Vehicle"}).status_code == 200
    r = client.post(
        "/ngsi-ld/v1/temporal/entityOperations/query", json={"type": "Query"}, headers=JSON
    )
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    everything = {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z", "local": "true"}
    assert [e["id"] for e in client.get(T, params=everything).json()] == [V1]


# -- entity order ------------------------------------------------------------------------------


def test_entities_come_in_a_stable_order_across_pages(client: TestClient) -> None:
    # v1.8.1 leaves the order of a query's entities open; the hub's is the order in which
    # the temporal evolutions began, so pages neither overlap nor skip, even while entities
    # get new instances between two page requests.
    ids = [f"urn:ngsi-ld:Vehicle:{n}" for n in (5, 3, 9, 1)]
    for entity_id in ids:
        create(client, entity_id, speed=readings(range(1, 2)))
    page = {"type": "Vehicle", "limit": 2}
    first = [e["id"] for e in client.get(T, params=page).json()]
    late = {"speed": readings(range(30, 31))}
    assert client.post(f"{T}/{ids[0]}/attrs", json=late, headers=JSON).status_code == 204
    second = [e["id"] for e in client.get(T, params={**page, "offset": 2}).json()]
    assert first + second == ids


def test_the_instance_limit_is_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_TEMPORAL_INSTANCE_LIMIT", "7")
    assert Settings.from_env("sqlite://").limits.max_temporal_instances == 7
    monkeypatch.delenv("SMARTCITY_TEMPORAL_INSTANCE_LIMIT")
    assert Settings.from_env("sqlite://").limits.max_temporal_instances == 10_000
