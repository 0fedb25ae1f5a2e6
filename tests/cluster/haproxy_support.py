"""HAProxy from the repository's configuration (deploy/haproxy.cfg) in front of nodes this
machine runs: the file is used as it is, with its example `server` lines replaced by the
nodes' and its addresses set through the environment variables it reads."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

CONFIG = Path(__file__).parents[2] / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def render(nodes: dict[str, str], config: str | None = None) -> str:
    """deploy/haproxy.cfg with one ``server NAME ADDRESS`` line per node in place of the
    example ones (the backend's `default-server` line gives them their checks)."""
    text = config if config is not None else CONFIG.read_text()
    lines = text.splitlines()
    servers = [n for n, line in enumerate(lines) if line.strip().startswith("server ")]
    assert servers, "deploy/haproxy.cfg lists no server"
    first, last = servers[0], servers[-1]
    assert last - first + 1 == len(servers), "the server lines must be together"
    ours = [f"    server {name} {address}" for name, address in nodes.items()]
    return "\n".join([*lines[:first], *ours, *lines[last + 1 :]]) + "\n"


class LoadBalancer:
    """A running HAProxy: ``base`` is where clients connect, ``stats`` its status page."""

    def __init__(self, nodes: dict[str, str], home: Path, port: int, stats_port: int) -> None:
        if not Path(HAPROXY).exists():
            import pytest

            pytest.skip("haproxy is not installed (scripts/services installs it)")
        self.home = home
        self.config = home / "haproxy.cfg"
        self.config.write_text(render(nodes))
        self.base = f"http://127.0.0.1:{port}"
        self.stats = f"http://127.0.0.1:{stats_port}/stats;csv"
        env = {
            **os.environ,
            "SMARTCITY_LB_BIND": f"127.0.0.1:{port}",
            "SMARTCITY_LB_STATS": f"127.0.0.1:{stats_port}",
        }
        self._log = (home / "haproxy.log").open("wb")
        # -db: in the foreground, a child of ours (stopped with it).
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_up(self, names: list[str], timeout: float = 30.0) -> None:
        """Until HAProxy answers and has found each of ``names`` up."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                if all(self.status().get(n, "").startswith("UP") for n in names):
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (self.log(), self.status())
            time.sleep(0.1)

    def status(self) -> dict[str, str]:
        """Each server's status (UP, DOWN, "UP 1/2", ...) as HAProxy's status page says."""
        text = httpx.get(self.stats, timeout=5).text.lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "smartcity_nodes" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def log(self) -> str:
        return (self.home / "haproxy.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # a hard stop: the event streams would hold a soft one
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
