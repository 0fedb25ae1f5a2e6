"""Every connection the hub opens to an address a client chose: notification receivers (HTTP
and MQTT), remote @context documents and registered context sources.

With ``SMARTCITY_FORBID_PRIVATE_TARGETS`` on (a :class:`TargetGuard` that forbids), the check
happens where the connection is made, on the addresses the connection will use:

* the host name is resolved here, not by the socket layer; *every* address it resolves to
  must be public (a name with one private address among public ones is refused), and a name
  that does not resolve is refused (the guard fails closed);
* the special-use names of RFC 6761 are judged without asking DNS: ``*.invalid`` never
  resolves and ``localhost``/``*.localhost`` are loopback, so both are refused at once (a
  resolver that cannot reach DNS would otherwise keep the caller waiting for its timeout);
* the connection is then made to one of the checked addresses, so the name cannot resolve
  elsewhere between the check and the connection (DNS rebinding); TLS still verifies the
  certificate against the host name;
* the host checked is the one the HTTP client itself parsed from the URL (httpcore hands the
  backend the origin), so URL tricks (``#@``, userinfo, trailing dots, numeric hosts) cannot
  make the check and the connection disagree;
* every redirect hop is a new connection, checked again.

Requests also check their target when they are made (``check_url``), for a clear 400 at
create time; the connection-time check is the one that cannot be talked around.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio
import httpcore
import httpx
import paho.mqtt.client as mqtt

from smartcity.hub.errors import BadRequestData

SETTING = "SMARTCITY_FORBID_PRIVATE_TARGETS"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(httpcore.ConnectError):
    """The guard refused a connection. A subclass of httpcore's ConnectError, so httpx reports
    it as an ``httpx.ConnectError`` carrying this message (:func:`refusal_in` finds it)."""


def refusal(address: str) -> str | None:
    """Why the guard refuses ``address`` (an IP literal), or None if it is a public one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(str(embedded))
    checks = (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((why for refused, why in checks if refused), None)


def _unresolvable(host: str, exc: BaseException) -> TargetRefused:
    return TargetRefused(
        f"{host} does not resolve ({exc}); with {SETTING} on, the hub refuses targets whose "
        "addresses it cannot check"
    )


def _special_use(host: str) -> TargetRefused | None:
    """The refusal of an RFC 6761 special-use name, decided without a lookup (None: ask DNS).
    The RFC asks resolvers to answer these at once; not every resolver does."""
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        return _unresolvable(host, OSError("RFC 6761: .invalid names never resolve"))
    if name == "localhost" or name.endswith(".localhost"):
        return TargetRefused(
            f"{host} is a loopback name (RFC 6761): this hub refuses private or loopback "
            f"targets ({SETTING})"
        )
    return None


@dataclass(frozen=True)
class TargetGuard:
    """Which addresses outbound connections may reach (all, unless ``forbid_private``)."""

    forbid_private: bool = False

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``: the host itself when nothing is
        forbidden (the socket layer resolves it), else its checked addresses."""
        if not self.forbid_private:
            return [host]
        if (special := _special_use(host)) is not None:
            raise special
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:
            raise _unresolvable(host, exc) from None
        return self._checked(host, (str(info[4][0]) for info in infos))

    async def addresses_async(self, host: str, port: int, timeout: float | None) -> list[str]:
        if not self.forbid_private:
            return [host]
        if (special := _special_use(host)) is not None:
            raise special
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except (OSError, UnicodeError, ValueError) as exc:
            raise _unresolvable(host, exc) from None
        return self._checked(host, (str(info[4][0]) for info in infos))

    def refuses(self, address: str) -> str | None:
        """Why an address is refused (None: allowed). One place to widen the policy."""
        return refusal(address)

    def _checked(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The distinct addresses, if every one of them is allowed."""
        checked: list[str] = []
        for address in addresses:
            why = self.refuses(address)
            if why is not None:
                shown = f"{host} is" if host == address else f"{host} resolves to {address},"
                raise TargetRefused(
                    f"{shown} {why}: this hub refuses private or loopback targets ({SETTING})"
                )
            if address not in checked:
                checked.append(address)
        return checked

    def check_url(self, url: str, what: str) -> None:
        """The create-time check of an http(s) target (a 400 that names ``what``). Resolves
        the host name: call it off the event loop."""
        if not self.forbid_private:
            return
        try:
            parsed = httpx.URL(url)  # parsed as the client will parse it when connecting
        except httpx.InvalidURL as exc:
            raise BadRequestData(f"{what} {url!r} is not a valid URL: {exc}") from None
        self.check_host(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), what)

    def check_host(self, host: str, port: int, what: str) -> None:
        if not self.forbid_private:
            return
        try:
            self.addresses(host, port)
        except TargetRefused as exc:
            raise BadRequestData(f"{what}: {exc}") from None


def refusal_in(exc: BaseException) -> TargetRefused | None:
    """The guard's refusal behind an exception httpx raised, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# -- HTTP ------------------------------------------------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, connecting to the guard's checked addresses only."""

    def __init__(self, guard: TargetGuard) -> None:
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.guard.addresses(host, port):
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the host's next address, as the socket layer would
        assert error is not None  # addresses() never returns an empty list
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise TargetRefused("outbound connections go over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, connecting to the guard's checked addresses only."""

    def __init__(self, guard: TargetGuard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self.guard.addresses_async(host, port, timeout):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("outbound connections go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    # One context for every outbound client: building one loads the CA bundle (milliseconds),
    # and forwarding makes a client per request.
    return httpx.create_ssl_context()


def _pool_options(limits: httpx.Limits) -> dict[str, Any]:
    return {
        "ssl_context": _ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, guard: TargetGuard, limits: httpx.Limits) -> None:
        super().__init__(verify=_ssl_context(), limits=limits)
        # httpx's transport takes no network backend, but the httpcore pool it wraps does:
        # swap the pool for one that connects through the guard.
        self._pool = httpcore.ConnectionPool(
            **_pool_options(limits), network_backend=_GuardedBackend(guard)
        )


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: TargetGuard, limits: httpx.Limits) -> None:
        super().__init__(verify=_ssl_context(), limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(limits), network_backend=_AsyncGuardedBackend(guard)
        )


def http_client(
    guard: TargetGuard, *, limits: httpx.Limits = httpx.Limits(), **options: Any
) -> httpx.Client:
    """An httpx client whose every connection goes through ``guard``. When it forbids,
    proxies from the environment are not used (the guard would check the proxy, not the
    target); redirects are not followed unless the caller asks (each hop is checked all the
    same)."""
    options.setdefault("follow_redirects", False)
    return httpx.Client(
        transport=GuardedTransport(guard, limits), trust_env=not guard.forbid_private, **options
    )


def async_http_client(
    guard: TargetGuard, *, limits: httpx.Limits = httpx.Limits(), **options: Any
) -> httpx.AsyncClient:
    options.setdefault("follow_redirects", False)
    return httpx.AsyncClient(
        transport=AsyncGuardedTransport(guard, limits),
        trust_env=not guard.forbid_private,
        **options,
    )


# -- MQTT ------------------------------------------------------------------------------------


class GuardedMqttClient(mqtt.Client):
    """paho's client, connecting through ``guard`` on every (re)connect. Overrides paho's
    ``_create_socket_connection`` (see the paho-mqtt pin in pyproject.toml)."""

    def __init__(self, guard: TargetGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def _create_socket_connection(self) -> socket.socket:
        if not self.guard.forbid_private:
            return super()._create_socket_connection()
        try:
            addresses = self.guard.addresses(self._host, self._port)
        except TargetRefused as exc:
            # An OSError, which paho's reconnect loop handles (and _Broker reports).
            raise ConnectionRefusedError(str(exc)) from None
        error: OSError | None = None
        for address in addresses:  # directly: a proxy would reach what the guard did not check
            try:
                return socket.create_connection(
                    (address, self._port),
                    timeout=self._connect_timeout,
                    source_address=(self._bind_address, self._bind_port),
                )
            except OSError as exc:
                error = exc
        assert error is not None
        raise error
