"""A listening socket for a server process the tests start: bound here, handed over with
``smartcity serve --fd N``, so no other process can take the port between choosing it and the
server's start (a free port chosen, closed and then bound by the server could be taken by a
parallel test's server in between, and the test would then talk to that one)."""

from __future__ import annotations

import socket


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 on a port of the kernel's choice; pass its
    ``fileno()`` in ``pass_fds`` and as ``--fd``, then close it here once the child runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
