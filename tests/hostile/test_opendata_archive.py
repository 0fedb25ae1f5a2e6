"""The archive and the harvester against hostile input: archive API parameters at the edges
of the calendar (a real server), a link whose body never ends, a CKAN source that ignores
paging, a DCAT catalogue whose next page is itself (real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.hostile.harness import Server, assert_responsive, while_probing

from smartcity.hub.outbound import TargetGuard
from smartcity.opendata.harvest.ckan import read_ckan
from smartcity.opendata.harvest.dcat import read_dcat
from smartcity.opendata.harvest.http import client
from smartcity.opendata.harvest.model import HarvestError

API = "/api/v1/historical-archive/"
PAGE = (
    b'{"success": true, "result": {"count": 5, "results": [{"id": "same", "name": "same",'
    b' "title": "Same", "resources": []}]}}'
)
LOOP = b"""@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
@prefix dcat: <http://www.w3.org/ns/dcat#> .
<catalog.ttl> a dcat:Catalog ; hydra:next <catalog.ttl> .
"""


class Hostile(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/endless"):
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(10_000):  # 640 MB at most, should anyone read it all
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        body, media = (
            (LOOP, "text/turtle") if "catalog" in self.path else (PAGE, "application/json")
        )
        self.send_response(200 if "/tc-data/" not in self.path else 404)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "params",
    [
        {"start": "00010101", "end": "99991231"},
        {"start": "99991231", "end": "99991231", "skip": "999999999"},
        {"start": "20240101", "end": "20240101", "search": "停" * 5000},
    ],
)
def test_list_files_at_the_calendars_edges(server: Server, params: dict[str, str]) -> None:
    """The last day there is has no next day: the end of 99991231 was a 500 before."""

    def ask() -> Any:
        with server.client() as http:
            return http.get(API + "list-files", params=params)

    probes = while_probing(server, ask)
    assert probes.result.status_code == 200, probes.result.text
    assert probes.result.json()["file-count"] == 0
    assert_responsive(probes)


def test_the_last_days_data_dictionary_is_a_404_not_a_500(server: Server) -> None:
    with server.client() as http:
        found = http.get(
            API + "get-data-dictionary", params={"url": "https://x.example/a", "date": "99991231"}
        )
    assert found.status_code == 404 and found.json()["errors"][0]["parameter"] == "date"


def test_an_endless_link_is_cut_at_the_archive_limit(tmp_path: Path) -> None:
    from smartcity.opendata.archive.store import BlobStore, TooLarge
    from smartcity.opendata.harvest.http import client as http_client

    store = BlobStore(tmp_path / "archive", 1024 * 1024)
    with hostile() as base, http_client(TargetGuard()) as session:
        started = time.monotonic()
        with session.stream("GET", f"{base}/endless.csv") as response, pytest.raises(TooLarge):
            store.put(response.iter_bytes())
        assert time.monotonic() - started < 10
    assert list(store.root.iterdir()) == []  # the partial copy is gone


def test_a_ckan_source_that_ignores_paging_is_not_read_forever() -> None:
    with hostile() as base, client(TargetGuard()) as session:
        started = time.monotonic()
        with pytest.raises(HarvestError, match="does not page with start/rows"):
            list(read_ckan(session, base, rows=1))
        assert time.monotonic() - started < 10


def test_a_dcat_catalogue_paging_to_itself_ends() -> None:
    with hostile() as base, client(TargetGuard()) as session:
        assert list(read_dcat(session, f"{base}/catalog.ttl")) == []
