"""The figures of docs/reliability.md: hostile requests against a real ``smartcity serve``,
each timed from the client, with the server's memory before and after and ``/healthz`` plus a
retrieve probed meanwhile (harness.py). Not a test (pytest does not collect it) and not a
benchmark: one run of each request, enough to show the order of magnitude.

    PYTHONPATH=src:. python -m tests.hostile.figures sqlite:////tmp/figures.db
    PYTHONPATH=src:. python -m tests.hostile.figures postgresql://postgres@127.0.0.1/figures

The database must exist and be migrated (``smartcity db upgrade --database URL``).
"""

from __future__ import annotations

import socket
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from tests.hostile.harness import Probes, Server, rss_mb, serve, while_probing

NGSI = "/ngsi-ld/v1"
JSON = {"Content-Type": "application/json"}
REL = "http://www.w3.org/ns/json-ld#context"


def report(name: str, server: Server, send: Callable[[], httpx.Response]) -> None:
    before = rss_mb(server)

    def timed() -> tuple[int, float]:
        started = time.perf_counter()
        status = send().status_code
        return status, time.perf_counter() - started

    probes: Probes = while_probing(server, timed)
    status, elapsed = probes.result
    grew = rss_mb(server) - before
    worst = max(probes.latencies) * 1000 if probes.latencies else float("nan")
    median = statistics.median(probes.latencies) * 1000 if probes.latencies else float("nan")
    print(
        f"{name:52} {status}  {elapsed * 1000:7.0f} ms  RSS {grew:+6.1f} MB  "
        f"probes: {len(probes.latencies)}, median {median:.0f} ms, worst {worst:.0f} ms"
        + (f", failures {probes.failures[:2]}" if probes.failures else "")
    )


def main(database_url: str) -> None:
    with serve(database_url) as server, server.client(headers=server.auth) as http:
        http.post(
            f"{NGSI}/entities",
            json={
                "id": "urn:ngsi-ld:V:1",
                "type": "V",
                "name": {"value": "abcdefghijklmnopqrstuvwxyy"},
            },
        )
        idle = []
        for _ in range(50):
            started = time.perf_counter()
            http.get("/healthz")
            idle.append(time.perf_counter() - started)
        print(
            f"/healthz at rest: median {statistics.median(idle) * 1000:.1f} ms, "
            f"worst {max(idle) * 1000:.1f} ms (50 requests)"
        )
        huge_geo = {"georel": "intersects", "geometry": "MultiPoint",
                    "coordinates": [[0, 0]] * 1_000_000}  # fmt: skip
        query = orjson.dumps({"type": "Query", "geoQ": huge_geo})
        sub = orjson.dumps({
            "type": "Subscription", "entities": [{"type": "V"}], "geoQ": huge_geo,
            "notification": {"endpoint": {"uri": "http://example.org/n"}},
        })  # fmt: skip
        cases: list[tuple[str, Callable[[], httpx.Response]]] = [
            ("Query with a 1,000,000-position geometry", lambda: http.post(
                f"{NGSI}/entityOperations/query", content=query, headers=JSON)),
            ("subscription with a 1,000,000-position geoQ", lambda: http.post(
                f"{NGSI}/subscriptions", content=sub, headers=JSON)),
            ("20 MB entity body", lambda: http.post(
                f"{NGSI}/entities", content=b"x" * 20_000_000, headers=JSON)),
            ('q=name~="^(.|.)*Z$" on a 26-character value', lambda: http.get(
                f"{NGSI}/entities", params={"type": "V", "q": 'name~="^(.|.)*Z$"'})),
            ("type with 1,500 nested parentheses", lambda: http.get(
                f"{NGSI}/entities", params={"type": "(" * 1500 + "V" + ")" * 1500})),
            ("q with 1,500 values", lambda: http.get(
                f"{NGSI}/entities",
                params={"type": "V", "q": "speed==" + ",".join(["1"] * 1500)})),
            ("entity id holding U+0000", lambda: http.post(
                f"{NGSI}/entities", json={"id": "urn:ngsi-ld:V:a\x00", "type": "V"})),
        ]  # fmt: skip
        for name, send in cases:
            report(name, server, send)
        with socket.socket() as silent:  # a context server that never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(64)
            port = silent.getsockname()[1]
            with httpx.Client(base_url=server.base, timeout=30) as other:

                def five_links() -> httpx.Response:
                    def one(n: int) -> Any:
                        link = f'<http://127.0.0.1:{port}/c{n}.jsonld>; rel="{REL}"'
                        return other.get(f"{NGSI}/entities", params={"type": "V"},
                                         headers={"Link": link})  # fmt: skip

                    with ThreadPoolExecutor(5) as pool:
                        return list(pool.map(one, range(5)))[-1]  # type: ignore[no-any-return]

                report("5 Link @contexts that never answer, at once", server, five_links)
    guarded = {"SMARTCITY_FORBID_PRIVATE_TARGETS": "1"}
    with serve(database_url, env=guarded) as server, server.client(headers=server.auth) as http:
        subscription = {
            "type": "Subscription", "entities": [{"type": "V"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1.:9/"}},
        }  # fmt: skip
        report("notification endpoint http://127.0.0.1.:9/ (SSRF on)", server,
               lambda: http.post(f"{NGSI}/subscriptions", json=subscription))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
