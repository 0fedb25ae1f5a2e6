"""`smartcity bench hub`: the hub's throughput and latency, through a real server process.

Scenarios (issue #2): single-entity create / partial update / retrieve / query by type+q with
wrk; batch upsert of 1,000-entity requests against the store's own ceiling (the same rows
written by the repository without HTTP or validation); geo query near 1 km over 100,000
entities; temporal aggregation over ~4.3 million instances (when the temporal API is present).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from smartcity.bench.harness import (
    Result,
    bare_server,
    fresh_database,
    have_wrk,
    server,
    wrk,
)
from smartcity.hub import history, repository
from smartcity.hub.changes import Change
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import now_us
from smartcity.storage.engine import Database

HK = (113.90, 22.20, 114.35, 22.50)  # lon/lat box of Hong Kong's urban area
JSON = {"Content-Type": "application/json"}


def bench_entity(n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Bench:{n}",
        "type": "Bench",
        "speed": {
            "type": "Property",
            "value": rng.randint(0, 120),
            "observedAt": "2026-11-26T08:00:00Z",
        },
        "name": {"type": "Property", "value": f"detector {n}"},
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "Point",
                "coordinates": [rng.uniform(HK[0], HK[2]), rng.uniform(HK[1], HK[3])],
            },
        },
    }


LUA_CREATE = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"id":"urn:ngsi-ld:BenchNew:' .. counter .. '-' .. math.random(1, 1000000000) ..
    '","type":"BenchNew","speed":{"type":"Property","value":' .. math.random(0, 120) .. '}}'
  return wrk.format("POST", "/ngsi-ld/v1/entities", {["Content-Type"] = "application/json"}, body)
end
"""

LUA_PATCH = """
request = function()
  local n = math.random(0, %(n)d - 1)
  local path = "/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:" .. n .. "/attrs/speed"
  local body = '{"value":' .. math.random(0, 120) .. ',"observedAt":"2026-11-26T09:00:00Z"}'
  return wrk.format("PATCH", path, {["Content-Type"] = "application/json"}, body)
end
"""

LUA_GET = """
request = function()
  local n = math.random(0, %(n)d - 1)
  return wrk.format("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Bench:" .. n)
end
"""

LUA_QUERY = """
request = function()
  local q = "speed%%3E" .. math.random(0, 119)
  return wrk.format("GET", "/ngsi-ld/v1/entities?type=Bench&q=" .. q .. "&limit=20")
end
"""

LUA_GEO = """
request = function()
  local lon = %(x0)f + math.random() * (%(x1)f - %(x0)f)
  local lat = %(y0)f + math.random() * (%(y1)f - %(y0)f)
  local rel = "near%%3BmaxDistance%%3D%%3D1000"
  return wrk.format("GET", "/ngsi-ld/v1/entities?type=Bench&georel=" .. rel ..
    "&geometry=Point&coordinates=%%5B" .. lon .. "%%2C" .. lat .. "%%5D&limit=100")
end
"""


def load_entities(db_url: str, count: int, seed: int) -> None:
    """Load entities in-process through the service (fast set-up for read benchmarks)."""
    from smartcity.hub.contexts import core_context
    from smartcity.hub.entity import parse_entity

    db = Database(db_url)
    service = EntityService(db)
    rng = random.Random(seed)
    ctx = core_context()
    for start in range(0, count, 2000):
        docs = [
            parse_entity(bench_entity(n, rng), ctx) for n in range(start, min(count, start + 2000))
        ]
        service.upsert_many("", docs, replace=True)
    if db.is_postgres:
        # Statistics, as autovacuum gives a production database soon after a load: without
        # them the planner takes the fresh tables for empty and scans them for each group
        # commit's keys (partial updates measured at 2,028/s without, 3,724/s with).
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()


# Each figure that enters a ratio is the best of this many wrk runs, each with fresh
# connections, for the hub and the bare app alike: with two workers, the kernel hands a run's
# connections to whichever process accepts first, and a run whose 32 connections all went to one
# process measures one process (seen on 2026-12-06, the same build: retrieve by id 12,289 req/s
# in one run, 22,218 in the next, against the same bare app).
BEST_OF = 3


def _best(base: str, script: str, *, seconds: int, connections: int) -> dict[str, float]:
    runs = [wrk(base, script, seconds=seconds, connections=connections) for _ in range(BEST_OF)]
    best = max(runs, key=lambda figures: figures["rps"])
    return {**best, "runs": float(BEST_OF), "worst_rps": min(r["rps"] for r in runs)}


def single_entity(db_url: str, seconds: int, workers: int, connections: int) -> list[Result]:
    """The single-entity requests, then the same retrieval and partial update against the
    bare ASGI app (bench/bare.py) with the same workers: the hub's figures as ratios to it,
    each side the best of ``BEST_OF`` runs."""
    n = 1000
    load_entities(db_url, n, seed=1)
    results = []
    ratioed = {"partial update", "retrieve by id"}
    with server(db_url, workers) as base:
        for name, script in [
            ("create", LUA_CREATE),
            ("partial update", LUA_PATCH % {"n": n}),
            ("retrieve by id", LUA_GET % {"n": n}),
            ("query type+q", LUA_QUERY % {}),
        ]:
            measure = _best if name in ratioed else wrk
            figures = measure(base, script, seconds=seconds, connections=connections)
            results.append(Result(name, figures))
    hub_rates = {r.name: r.figures["rps"] for r in results}
    with bare_server(workers) as base:
        for name, script in [
            ("retrieve by id", LUA_GET % {"n": n}),
            ("partial update", LUA_PATCH % {"n": n}),
        ]:
            figures = _best(base, script, seconds=seconds, connections=connections)
            results.append(Result(f"bare ASGI app, {name}", figures))
            ratio = round(hub_rates[name] / figures["rps"], 3)
            results.append(Result(f"{name} ÷ bare ASGI app", {"ratio": ratio}))
    return results


def _post_batches(base: str, payloads: list[bytes]) -> tuple[float, list[int]]:
    """POST every payload to batch upsert from two client threads; (seconds, failed codes)."""
    lock = threading.Lock()
    queue = list(payloads)
    failures: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                r = http.post("/ngsi-ld/v1/entityOperations/upsert", content=body, headers=JSON)
                if r.status_code not in (201, 204):
                    failures.append(r.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, failures


def batch_upsert(db_url: str, batches: int, workers: int) -> list[Result]:
    rng = random.Random(2)
    payloads = [
        orjson.dumps([bench_entity(b * 1000 + i, rng) for i in range(1000)]) for b in range(batches)
    ]
    # The same entities again with new values and places: the existing-entity path (each
    # entity read, merged and its index rows moved), which a city's feeds mostly take.
    again = [
        orjson.dumps([bench_entity(b * 1000 + i, rng) for i in range(1000)]) for b in range(batches)
    ]
    with server(db_url, workers) as base:
        http_seconds, failures = _post_batches(base, payloads)
        again_seconds, again_failures = _post_batches(base, again)
    http_rate = batches * 1000 / http_seconds

    # The ceiling: the same rows written by the repository in one transaction per 1,000
    # entities, with no HTTP, no JSON parsing and no validation.
    from smartcity.hub.contexts import core_context
    from smartcity.hub.documents import new_doc
    from smartcity.hub.entity import parse_entity
    from smartcity.hub.timeutil import iso_from_us

    db = Database(db_url)
    ctx = core_context()
    docs_batches = [
        [
            new_doc(parse_entity({**e, "id": e["id"] + ":ceiling"}, ctx), iso_from_us(now_us()))
            for e in orjson.loads(p)
        ]
        for p in payloads
    ]
    started = time.perf_counter()
    for docs in docs_batches:
        now = now_us()
        with db.write() as conn:
            repository.insert_entities(conn, "ceiling", docs, now)
            history.record(
                conn, [Change("ceiling", d["id"], None, d, written=d["attrs"]) for d in docs], now
            )
    store_seconds = time.perf_counter() - started
    db.dispose()
    store_rate = batches * 1000 / store_seconds
    return [
        Result(
            "batch upsert (1,000/request)",
            {
                "entities_per_s": round(http_rate),
                "store_ceiling_per_s": round(store_rate),
                "ratio": round(http_rate / store_rate, 2),
                "failed_requests": len(failures),
            },
        ),
        Result(
            "batch upsert of existing entities (1,000/request)",
            {
                "entities_per_s": round(batches * 1000 / again_seconds),
                "failed_requests": len(again_failures),
            },
        ),
    ]


def geo_query(
    db_url: str, entities: int, seconds: int, workers: int, connections: int
) -> list[Result]:
    # Latency is the figure that matters here, so the load is kept to two requests in flight
    # per worker: with more, p99 measures the queue, not the query.
    connections = min(connections, 2 * workers)
    load_entities(db_url, entities, seed=3)
    with server(db_url, workers) as base:
        script = LUA_GEO % {"x0": 114.10, "x1": 114.25, "y0": 22.27, "y1": 22.40}
        figures = wrk(base, script, seconds=seconds, connections=connections)
    return [Result(f"geo near 1 km over {entities:,}", figures)]


def run(
    database: str | None,
    scenarios: list[str],
    *,
    seconds: int,
    workers: int,
    connections: int,
    geo_entities: int,
    batches: int,
    progress: Callable[[str], None],
) -> list[Result]:
    if not have_wrk():
        raise RuntimeError("wrk is needed for the HTTP load (Debian: apt-get install wrk)")
    results: list[Result] = []
    for scenario in scenarios:
        progress(scenario)
        with fresh_database(database) as db_url:
            if scenario == "single":
                results += single_entity(db_url, seconds, workers, connections)
            elif scenario == "batch":
                results += batch_upsert(db_url, batches, workers)
            elif scenario == "geo":
                results += geo_query(db_url, geo_entities, seconds, workers, connections)
            elif scenario == "temporal":
                from smartcity.bench.temporal import temporal_aggregation

                results += temporal_aggregation(db_url, workers)
            else:
                raise ValueError(f"unknown scenario {scenario!r}")
    return results
