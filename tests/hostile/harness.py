"""The hostile-input suite: real ``smartcity serve`` processes on each backend, attacked as a
careless client or an attacker would, while a second client checks the server stays responsive.

A test here starts (or shares) a :class:`Server`, runs the hostile request in a thread with
:func:`while_probing`, and asserts with :func:`assert_responsive` that ``/healthz`` and a
retrieve-by-id kept answering meanwhile. :func:`rss_mb` reads the server's memory, for the
"limits before work" checks.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.listening import listening_socket, port_of

CLI = [sys.executable, "-m", "smartcity"]
PROBE_ENTITY = "urn:ngsi-ld:Probe:alive"
# The issue asks for 200 ms; a loaded 2-core CI machine running two test workers beside the
# server sees occasional 300-500 ms scheduling stalls, so the median must meet 200 ms and the
# worst probe must stay under a second. Today's findings stalled for 2-16 s: both catch them.
MEDIAN_WITHIN = 0.2
WORST_WITHIN = 1.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_key(database_url: str, name: str, *, tenant: str | None = None) -> str:
    args = ["keys", "create", name, "--scope", "write", "--database", database_url]
    if tenant is not None:
        args += ["--tenant", tenant]
    return cli(*args).strip().splitlines()[-1]


@dataclass
class Server:
    base: str
    token: str
    proc: subprocess.Popen[str]
    database_url: str
    log: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.base, **kwargs)


@contextmanager
def serve(
    database_url: str, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    """Run ``smartcity serve`` on a free loopback port until the block ends."""
    token = create_key(database_url, f"hostile-{time.monotonic_ns()}")
    sock = listening_socket()
    port = port_of(sock)
    with sock:  # the child has its own copy of the listening socket
        proc = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--fd",
                str(sock.fileno()),
                "--database",
                database_url,
                "--log-level",
                "warning",
                *list(args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            pass_fds=(sock.fileno(),),
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready in 30 s")
            time.sleep(0.1)
        server = Server(base, token, proc, database_url)
        with server.client() as http:
            r = http.post(
                "/ngsi-ld/v1/entities",
                json={"id": PROBE_ENTITY, "type": "Probe", "alive": True},
                headers=server.auth,
            )
            assert r.status_code in (201, 409), r.text
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@dataclass
class Probes:
    latencies: list[float]
    failures: list[str]
    result: Any = None

    def describe(self) -> str:
        if not self.latencies:
            return f"no probe answered ({self.failures[:3]})"
        return (
            f"{len(self.latencies)} probes, median {statistics.median(self.latencies) * 1000:.0f}"
            f" ms, worst {max(self.latencies) * 1000:.0f} ms, failures {self.failures[:3]}"
        )


def while_probing(server: Server, hostile: Callable[[], Any], *, min_probes: int = 5) -> Probes:
    """Run ``hostile()`` in a thread; meanwhile GET /healthz and the probe entity in turn.

    Probing goes on until ``hostile`` returns and at least ``min_probes`` probes were made."""
    latencies: list[float] = []
    failures: list[str] = []
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = hostile()
        except BaseException as exc:  # reported to the test below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(0.05)  # let the hostile request reach the server first
    paths = ["/healthz", f"/ngsi-ld/v1/entities/{PROBE_ENTITY}"]
    with httpx.Client(base_url=server.base, timeout=15) as http:
        n = 0
        while worker.is_alive() or n < min_probes:
            started = time.perf_counter()
            try:
                r = http.get(paths[n % 2])
                if r.status_code != 200:
                    failures.append(f"{paths[n % 2]} -> {r.status_code}")
                else:
                    latencies.append(time.perf_counter() - started)
            except httpx.HTTPError as exc:
                failures.append(f"{paths[n % 2]} -> {type(exc).__name__}")
            n += 1
            time.sleep(0.02)
    worker.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return Probes(latencies, failures, outcome.get("result"))


def assert_responsive(probes: Probes) -> None:
    assert not probes.failures, probes.describe()
    assert probes.latencies, probes.describe()
    assert statistics.median(probes.latencies) < MEDIAN_WITHIN, probes.describe()
    assert max(probes.latencies) < WORST_WITHIN, probes.describe()


def rss_mb(server: Server) -> float:
    """The server process's resident memory, in MiB."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A 4xx answer carrying a ProblemDetails body that says what was wrong."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body, dict) and (body.get("title") or body.get("detail")), body
    return body
