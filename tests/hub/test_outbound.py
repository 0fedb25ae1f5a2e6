"""The outbound guard (SMARTCITY_FORBID_PRIVATE_TARGETS): every connection to an address a
client chose — notification receivers, remote @context documents, registered context sources —
is checked on the address actually connected to, with real servers on loopback addresses."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from tests.asyncrun import run as run_async

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.context_fetch import ContextFetcher
from smartcity.hub.contexts import ContextStore
from smartcity.hub.errors import BadRequestData, LdContextNotAvailable
from smartcity.hub.outbound import (
    SETTING,
    GuardedMqttClient,
    TargetGuard,
    TargetRefused,
    async_http_client,
    http_client,
    refusal,
    refusal_in,
)
from smartcity.hub.subscriptions.senders import DeliveryError, Message, Senders
from smartcity.storage.engine import Database

FORBID = TargetGuard(forbid_private=True)
DOCUMENT = {"@context": {"speed": "https://example.org/speed"}}
REL = "http://www.w3.org/ns/json-ld#context"


class Site:
    """A real HTTP server on a loopback address: answers ``routes`` (path -> status, headers,
    body), 404 otherwise, and records every path it was asked for."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, headers, body = site.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, document: Any) -> str:
        self.routes[path] = (200, {"Content-Type": "application/ld+json"}, orjson.dumps(document))
        return self.url + path

    def redirect(self, path: str, to: str) -> str:
        self.routes[path] = (302, {"Location": to}, b"")
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.close()


class PublicFirst(TargetGuard):
    """A guard for which 127.0.0.1 stands for a public server: the redirect tests need a
    server the guard lets through and one it refuses, both on this machine."""

    def refuses(self, address: str) -> str | None:
        return None if address == "127.0.0.1" else refusal(address)


# -- which addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "0.0.0.0",
        "::",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # cloud metadata
        "fe80::1",
        "fc00::1",
        "224.0.0.1",
        "ff02::1",
        "240.0.0.1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "192.0.2.1",  # documentation
    ],
)
def test_private_loopback_and_special_addresses_are_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(address) is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1.",
        "localhost",
        "localhost.",
        "0x7f.1",  # the resolver reads these as 127.0.0.1
        "2130706433",
        "0177.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "169.254.169.254",
        "nonexistent.invalid",  # never resolves (RFC 6761): refused, not let through
        "hub.localhost",  # loopback by RFC 6761
    ],
)
def test_the_guard_resolves_and_refuses(host: str) -> None:
    with pytest.raises(TargetRefused, match=SETTING):
        FORBID.addresses(host, 80)
    with pytest.raises(TargetRefused, match=SETTING):
        run_async(FORBID.addresses_async(host, 80, 5.0))
    assert TargetGuard().addresses(host, 80) == [host]  # not forbidding: the socket resolves


@pytest.mark.parametrize(
    "host", ["nonexistent.invalid", "A.Invalid.", "hub.localhost", "LOCALHOST."]
)
def test_special_use_names_are_refused_without_asking_dns(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI found this: with no DNS reachable, resolving ``nonexistent.invalid`` took longer
    than the 5 s allowed, and the guard answered with a timeout instead of a refusal. A
    resolver that fails the test when asked stands in for it (no unreachable DNS server can
    be made here)."""

    def asked_resolver(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"asked DNS for {args[0]}")

    monkeypatch.setattr("socket.getaddrinfo", asked_resolver)
    with pytest.raises(TargetRefused, match=SETTING):
        FORBID.addresses(host, 80)
    with pytest.raises(TargetRefused, match=SETTING):
        run_async(FORBID.addresses_async(host, 80, 5.0))


def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard fails closed: a name whose addresses it cannot check is not let through."""

    def failing_resolver(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr("socket.getaddrinfo", failing_resolver)
    with pytest.raises(TargetRefused, match="does not resolve"):
        FORBID.addresses("gone.example.org", 80)
    with pytest.raises(TargetRefused, match="does not resolve"):
        run_async(FORBID.addresses_async("gone.example.org", 80, 5.0))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.:9/",
        "http://localhost.:9/",
        "http://nonexistent.invalid#@127.0.0.1:9/",
        "http://user@127.0.0.1:9/",
        "http://user:secret@localhost:9/",
        "http://a@b@127.0.0.1:9/",
        "http://example.org\\@127.0.0.1:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "https://0x7f.1/",
    ],
)
def test_urls_are_checked_as_the_client_parses_them(url: str) -> None:
    with pytest.raises(BadRequestData, match=SETTING):
        FORBID.check_url(url, "endpoint")
    TargetGuard().check_url(url, "endpoint")  # not forbidding: no check


# -- at connection time ------------------------------------------------------------------------


def _tricks(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/n",
        f"http://localhost:{port}/n",
        f"http://127.0.0.1.:{port}/n",
        f"http://localhost.:{port}/n",
        f"http://nonexistent.invalid#@127.0.0.1:{port}/n",
        f"http://user:pw@127.0.0.1:{port}/n",
        f"http://[::ffff:127.0.0.1]:{port}/n",
    ]


def test_connections_are_refused_where_they_are_made(site: Site) -> None:
    site.serve("/n", DOCUMENT)

    async def fetch_async(url: str) -> None:
        async with async_http_client(FORBID, timeout=5) as client:
            await client.get(url)

    with http_client(FORBID, timeout=5) as client:
        for url in _tricks(site.port):
            with pytest.raises(httpx.ConnectError) as raised:
                client.get(url)
            assert refusal_in(raised.value) is not None, url
            with pytest.raises(httpx.ConnectError) as raised:
                run_async(fetch_async(url))
            assert refusal_in(raised.value) is not None, url
    assert site.hits == []
    with http_client(TargetGuard(), timeout=5) as client:
        assert client.get(f"{site.url}/n").status_code == 200
    assert site.hits == ["/n"]


def test_notification_senders_check_every_connection(site: Site) -> None:
    senders = Senders(forbid_private=True)
    try:
        for url in _tricks(site.port):
            with pytest.raises(DeliveryError, match=SETTING):
                senders.send(Message(url, {"id": "n"}, {"Content-Type": "application/json"}))
        with pytest.raises(DeliveryError, match=SETTING):
            senders.send(Message("mqtt://localhost:1883/city/n", {"id": "n"}, {}, timeout=2))
    finally:
        senders.close()
    assert site.hits == []


def test_the_mqtt_client_connects_only_to_checked_addresses() -> None:
    client = GuardedMqttClient(FORBID, callback_api_version=CallbackAPIVersion.VERSION2)
    with pytest.raises(ConnectionRefusedError, match=SETTING):
        client.connect("127.0.0.1", 1883)


# -- @context fetches: redirects ---------------------------------------------------------------


@pytest.fixture
def private_site() -> Iterator[Site]:
    running = Site("127.0.0.2")  # loopback too; PublicFirst refuses it
    yield running
    running.close()


def test_a_context_redirect_to_a_refused_address_is_not_followed(
    site: Site, private_site: Site
) -> None:
    target = private_site.serve("/ctx.jsonld", DOCUMENT)
    start = site.redirect("/ctx.jsonld", target)
    fetcher = ContextFetcher(PublicFirst(forbid_private=True), timeout=5)
    with pytest.raises(BadRequestData, match=f"redirected to {target}.*{SETTING}"):
        fetcher.fetch(start)
    with pytest.raises(BadRequestData, match=f"redirected to {target}.*{SETTING}"):
        run_async(fetcher.fetch_async(start))
    assert private_site.hits == []
    assert site.hits == ["/ctx.jsonld", "/ctx.jsonld"]
    # An allowed redirect is followed, synchronously and not.
    open_fetcher = ContextFetcher(TargetGuard(), timeout=5)
    assert open_fetcher.fetch(start) == DOCUMENT
    assert run_async(open_fetcher.fetch_async(start)) == DOCUMENT
    assert private_site.hits == ["/ctx.jsonld", "/ctx.jsonld"]


def test_context_redirects_are_bounded(site: Site) -> None:
    site.redirect("/a", f"{site.url}/b")
    site.redirect("/b", f"{site.url}/a")
    fetcher = ContextFetcher(TargetGuard(), timeout=5)
    with pytest.raises(LdContextNotAvailable, match="redirects more than"):
        fetcher.fetch(f"{site.url}/a")
    with pytest.raises(LdContextNotAvailable, match="redirects more than"):
        run_async(fetcher.fetch_async(f"{site.url}/a"))


# -- @context fetches on the event loop -------------------------------------------------------


def test_request_handlers_fetch_nested_contexts_once(site: Site) -> None:
    """The async path brings in every remote document a context names (nested ones too);
    concurrent requests for one URL share one fetch; a failure is remembered."""
    inner = site.serve("/inner.jsonld", DOCUMENT)
    outer = site.serve("/outer.jsonld", {"@context": [inner, {"lane": "https://example.org/lane"}]})
    store = ContextStore(None, timeout=5)

    async def twice() -> list[Any]:
        return list(await asyncio.gather(store.active_async(outer), store.active_async(outer)))

    for ctx in run_async(twice()):
        assert ctx.expand("speed") == "https://example.org/speed"
        assert ctx.expand("lane") == "https://example.org/lane"
    assert sorted(site.hits) == ["/inner.jsonld", "/outer.jsonld"]
    missing = f"{site.url}/missing.jsonld"
    for _ in range(2):
        with pytest.raises(LdContextNotAvailable, match="HTTP 404"):
            run_async(store.active_async(missing))
    assert site.hits.count("/missing.jsonld") == 1


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def guarded(db: Database) -> Iterator[TestClient]:
    settings = Settings(database_url=db.url, auth_required=False, forbid_private_targets=True)
    with TestClient(create_app(settings)) as client:
        yield client


def _subscription(uri: str) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Subscription:guarded",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": uri}},
    }


def test_notification_endpoint_tricks_are_refused(guarded: TestClient, site: Site) -> None:
    for uri in _tricks(site.port):
        for path in ("/ngsi-ld/v1/subscriptions", "/ngsi-ld/v1/csourceSubscriptions"):
            r = guarded.post(path, json=_subscription(uri))
            assert r.status_code == 400, (path, uri, r.text)
            assert SETTING in r.json()["detail"], r.json()


def test_context_urls_are_refused_whatever_their_spelling(guarded: TestClient, site: Site) -> None:
    site.serve("/n", DOCUMENT)
    for url in _tricks(site.port):
        link = {"Link": f'<{url}>; rel="{REL}"'}
        r = guarded.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers=link)
        assert r.status_code == 400, (url, r.text)
        assert SETTING in r.json()["detail"]
    assert site.hits == []


def _registration(endpoint: str) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:ContextSourceRegistration:guarded",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}]}],
        "endpoint": endpoint,
    }


def test_registration_endpoints_are_checked(guarded: TestClient, site: Site) -> None:
    base = "/ngsi-ld/v1/csourceRegistrations"
    for url in [site.url, f"http://localhost.:{site.port}", f"http://user@localhost:{site.port}"]:
        r = guarded.post(base, json=_registration(url))
        assert r.status_code == 400, (url, r.text)
        assert SETTING in r.json()["detail"]
    assert guarded.post(base, json=_registration("http://8.8.8.8:1026")).status_code == 201
    r = guarded.patch(
        f"{base}/urn:ngsi-ld:ContextSourceRegistration:guarded", json={"endpoint": site.url}
    )
    assert r.status_code == 400 and SETTING in r.json()["detail"], r.text


def test_forwarding_to_a_private_source_is_refused(db: Database, site: Site) -> None:
    """A registration stored before the setting was on (or whose name now resolves to a
    private address) is refused at connection time: the query answers with a warning."""
    site.serve("/ngsi-ld/v1/entities?type=Vehicle&local=true", [])
    open_settings = Settings(database_url=db.url, auth_required=False)
    with TestClient(create_app(open_settings)) as client:
        r = client.post("/ngsi-ld/v1/csourceRegistrations", json=_registration(site.url))
        assert r.status_code == 201, r.text
    settings = Settings(database_url=db.url, auth_required=False, forbid_private_targets=True)
    with TestClient(create_app(settings)) as client:
        r = client.get("/ngsi-ld/v1/entities", params={"type": "Vehicle"})
        assert r.status_code == 200, r.text
        assert SETTING in r.headers["NGSILD-Warning"]
    assert site.hits == []


def test_forwarded_writes_to_a_private_source_are_refused(db: Database, site: Site) -> None:
    """Distributed writes go through the same guard: the source is never reached, the hub's
    own part is written, and the refusal is that source's error in the 207."""
    open_settings = Settings(database_url=db.url, auth_required=False)
    body = {**_registration(site.url), "operations": ["redirectionOps", "createSubscription"]}
    with TestClient(create_app(open_settings)) as client:
        r = client.post("/ngsi-ld/v1/csourceRegistrations", json=body)
        assert r.status_code == 201, r.text
    settings = Settings(database_url=db.url, auth_required=False, forbid_private_targets=True)
    car = {"id": "urn:ngsi-ld:Vehicle:guarded", "type": "Vehicle",
           "speed": {"type": "Property", "value": 30}}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        r = client.post("/ngsi-ld/v1/entities", json=car)
        assert r.status_code == 207, r.text
        [error] = r.json()["errors"]
        assert error["registrationId"] == body["id"]
        assert SETTING in error["error"]["detail"]
        assert r.json()["success"] == [car["id"]]
        assert client.get(f"/ngsi-ld/v1/entities/{car['id']}?local=true").status_code == 200
        r = client.post("/ngsi-ld/v1/subscriptions", json=_subscription("http://8.8.8.8:9/n"))
        assert r.status_code == 201, r.text
        assert SETTING in r.headers["NGSILD-Warning"]
    assert site.hits == []
