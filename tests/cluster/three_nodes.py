"""Three nodes on this machine behind HAProxy, a bounded mixed load, one node SIGKILLed half
way (`scripts/three-nodes`; the figures are in docs/reliability.md).

Three `smartcity serve` processes, each with a home of its own, share one PostgreSQL database
(a scratch one, dropped after) and one Mosquitto broker (a private one on a free port); the
nodes ingest MQTT readings through one shared subscription and HAProxy, run from
deploy/haproxy.cfg, spreads the HTTP requests over them. Writer threads create entities
through the load balancer and read each back, a publisher sends device readings at QoS 1;
half way through, the node holding the most periodic jobs is killed with SIGKILL. Printed:
the requests and readings, acknowledged, failed, lost and duplicated, how long HAProxy took to
take the node out of rotation and the cluster to move its jobs, and whether every reading the
broker acknowledged was stored exactly once.

    scripts/three-nodes                       # a minute of load, jobs' lease 15 s
    scripts/three-nodes --duration 16 --lease 2 --writers 2 --rate 50   # the test's short run

Needs PostgreSQL (SMARTCITY_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/
postgres: a database is created beside it), `mosquitto` and `haproxy` (scripts/services), and
the test dependencies (it reuses tests/cluster's helpers).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before the helpers read it: where the scratch database is created.
os.environ.setdefault(
    "SMARTCITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

import httpx
import orjson
from sqlalchemy import func, select
from tests.cluster.haproxy_support import LoadBalancer
from tests.cluster.mqtt_share_support import (
    CLI,
    Publisher,
    free_port,
    private_broker,
    register_devices,
    scratch_postgres,
    temperature_rows,
    wait_stored,
)

from smartcity.live.devices.service import DEFAULT_TOPIC_PATTERN
from smartcity.security.keys import KeyStore
from smartcity.storage import schema
from smartcity.storage.engine import Database
from smartcity.storage.schema import cluster_leases

ENTITY_TYPE = "LoadProbe"


@dataclass
class Options:
    duration: float = 60.0  # seconds of load; the kill is half way
    writers: int = 4  # HTTP client threads, one request in flight each
    rate: float = 200.0  # MQTT messages a second
    per_message: int = 5  # readings per message
    devices: int = 200
    lease: float = 15.0  # SMARTCITY_JOB_LEASE: jobs move within lease × 4/3
    keep: Path | None = None  # keep the nodes' homes and logs here


@dataclass
class Tally:
    """What the HTTP clients saw; guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    acked: list[str] = field(default_factory=list)  # ids whose creation was answered 201
    failed_writes: list[str] = field(default_factory=list)  # ids whose creation was not
    failures: list[tuple[float, str]] = field(default_factory=list)  # (when, what)

    def count(self, kind: str, outcome: str, at: float) -> None:
        with self.lock:
            self.statuses[f"{kind} {outcome}"] += 1
            if not outcome.startswith("2"):
                self.failures.append((at, f"{kind} {outcome}"))


class Cluster:
    """The three nodes, the broker, the database and HAProxy of one run."""

    def __init__(self, db_url: str, mqtt_url: str, home: Path, lease: float) -> None:
        self.db_url = db_url
        self.home = home
        self.db = Database(db_url)
        _, self.token = KeyStore(self.db).create("three-nodes")
        self.ports = {f"node{n}": free_port() for n in (1, 2, 3)}
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
        env |= {
            "SMARTCITY_MQTT_URL": mqtt_url,
            "SMARTCITY_MQTT_SHARE_GROUP": "nodes",
            "SMARTCITY_JOB_LEASE": str(lease),
            "SMARTCITY_TRUSTED_PROXIES": "127.0.0.1",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, port in self.ports.items():
            node_home = home / name
            node_home.mkdir()
            log = (home / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [*CLI, "serve", "--port", str(port), "--database", db_url,
                 "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT,
                env={**env, "SMARTCITY_HOME": str(node_home)},
            )  # fmt: skip
        self.lb = LoadBalancer(
            {n: f"127.0.0.1:{p}" for n, p in self.ports.items()}, home, free_port(), free_port()
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Every node answers and has its MQTT subscription; HAProxy has them all up."""
        deadline = time.monotonic() + timeout
        for name, port in self.ports.items():
            while True:
                proc = self.procs[name]
                assert proc.poll() is None, (self.home / f"{name}.log").read_text()[-2000:]
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/ingest/metrics",
                                  headers=self.auth, timeout=2)  # fmt: skip
                    if r.status_code == 200 and (r.json().get("mqtt") or {}).get("connected"):
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} not ready in {timeout} s"
                time.sleep(0.2)
        self.lb.wait_up(list(self.ports), timeout=max(5.0, deadline - time.monotonic()))

    def leases(self) -> dict[str, int | None]:
        """Each periodic job and the pid of the node holding it."""
        with self.db.read() as conn:
            rows = conn.execute(select(cluster_leases.c.name, cluster_leases.c.holder))
            return {r.name: int(r.holder.split(":")[1]) if r.holder else None for r in rows}

    def stop(self) -> None:
        self.lb.stop()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.db.dispose()


def _writer(cluster: Cluster, tally: Tally, n: int, stop: threading.Event, t0: float) -> None:
    """Create an entity through the load balancer, read it back through it; again."""
    with httpx.Client(base_url=cluster.lb.base, headers=cluster.auth, timeout=10) as http:
        for seq in itertools.count():
            if stop.is_set():
                return
            entity_id = f"urn:ngsi-ld:{ENTITY_TYPE}:w{n}-{seq}"
            body = {"id": entity_id, "type": ENTITY_TYPE,
                    "seq": {"type": "Property", "value": seq}}  # fmt: skip
            try:
                outcome = str(http.post("/ngsi-ld/v1/entities", json=body).status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            tally.count("write", outcome, time.monotonic() - t0)
            with tally.lock:
                (tally.acked if outcome == "201" else tally.failed_writes).append(entity_id)
            if outcome != "201":
                continue
            try:
                read = str(http.get(f"/ngsi-ld/v1/entities/{entity_id}").status_code)
            except httpx.HTTPError as exc:
                read = type(exc).__name__
            tally.count("read", read, time.monotonic() - t0)


def _stored(db: Database) -> tuple[set[str], int]:
    """The probe entities in the database, and how many of them hold more than one history
    instance of ``seq`` (a creation applied twice)."""
    e, h, he = schema.entities.c, schema.attr_history.c, schema.history_entities.c
    prefix = f"urn:ngsi-ld:{ENTITY_TYPE}:%"
    with db.read() as conn:
        ids = set(conn.execute(select(e.entity_id).where(e.entity_id.like(prefix))).scalars())
        twice = conn.execute(
            select(func.count()).select_from(
                select(h.hid)
                .join(schema.history_entities, he.hid == h.hid)
                .where(he.entity_id.like(prefix), h.attr.like("%seq"))
                .group_by(h.hid)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    return ids, int(twice)


def run(opts: Options) -> dict[str, Any]:
    """One run; its figures."""
    home = opts.keep or Path(tempfile.mkdtemp(prefix="smartcity-three-nodes-"))
    home.mkdir(parents=True, exist_ok=True)
    with scratch_postgres() as db_url, private_broker() as broker:
        devices = register_devices(db_url, DEFAULT_TOPIC_PATTERN, opts.devices)
        cluster = Cluster(db_url, broker.url, home, opts.lease)
        try:
            cluster.wait_ready()
            pids = {p.pid: name for name, p in cluster.procs.items()}
            tally, stop = Tally(), threading.Event()
            t0 = time.monotonic()
            threads = [
                threading.Thread(target=_writer, args=(cluster, tally, n, stop, t0), daemon=True)
                for n in range(opts.writers)
            ]
            for t in threads:
                t.start()
            pub = Publisher(broker.url, devices, per_message=opts.per_message)
            pub.run(rate=opts.rate)

            time.sleep(opts.duration / 2)
            held = cluster.leases()
            by_node = Counter(pids.get(pid) for pid in held.values() if pid in pids)
            victim = by_node.most_common(1)[0][0] if by_node else "node1"
            jobs = sorted(job for job, pid in held.items() if pids.get(pid) == victim)
            cluster.procs[victim].kill()  # SIGKILL: no lease given back, no session ended
            killed = time.monotonic()
            out_of_rotation = jobs_moved = None
            while time.monotonic() < t0 + opts.duration:
                now = time.monotonic() - killed
                if out_of_rotation is None and cluster.lb.status().get(victim) == "DOWN":
                    out_of_rotation = now
                if jobs_moved is None:
                    holders = cluster.leases()
                    if all(pids.get(holders.get(j)) not in (None, victim) for j in jobs):
                        jobs_moved = now
                time.sleep(0.05)
            stop.set()
            for t in threads:
                t.join(15)
            pub.stop()
            _, ledger = wait_stored(db_url, pub.acked, timeout=60)
            readings_rows = temperature_rows(db_url)
            ids, twice = _stored(cluster.db)
        finally:
            cluster.stop()
            if opts.keep is None:
                shutil.rmtree(home, ignore_errors=True)
    acked, failed = set(tally.acked), set(tally.failed_writes)
    requests = sum(tally.statuses.values())
    ok = sum(c for k, c in tally.statuses.items() if k.split()[1].startswith("2"))
    kill_at = opts.duration / 2
    return {
        "duration_s": opts.duration,
        "nodes": 3,
        "victim": victim,
        "victim_jobs": jobs,
        "requests": requests,
        "acknowledged": ok,
        "failed": requests - ok,
        "failures": [(round(at - kill_at, 2), what) for at, what in tally.failures],
        "statuses": dict(tally.statuses),
        "writes_acknowledged": len(acked),
        "writes_lost": len(acked - ids),  # answered 201, not in the database
        "writes_failed_but_stored": len(failed & ids),
        "writes_duplicated": twice,
        "out_of_rotation_s": None if out_of_rotation is None else round(out_of_rotation, 2),
        "jobs_moved_s": None if jobs_moved is None else round(jobs_moved, 2),
        "job_takeover_bound_s": round(opts.lease * 4 / 3, 2),
        "readings_sent": pub.sent,
        "readings_acknowledged": pub.acked,
        "readings_stored": ledger,
        "readings_lost": max(0, pub.acked - ledger),
        "readings_duplicated": readings_rows - ledger,
        "readings_exactly_once": ledger == pub.acked and readings_rows == ledger,
        "home": str(home) if opts.keep else None,
    }


def report(figures: dict[str, Any]) -> str:
    f = figures
    lines = [
        f"three nodes, {f['duration_s']:.0f} s of load; {f['victim']} SIGKILLed half way "
        f"(it held {', '.join(f['victim_jobs']) or 'no job'})",
        f"HTTP requests through HAProxy: {f['requests']}, acknowledged {f['acknowledged']}, "
        f"failed {f['failed']} {f['failures']}",
        f"entity writes: acknowledged {f['writes_acknowledged']}, lost {f['writes_lost']}, "
        f"duplicated {f['writes_duplicated']}, failed but stored {f['writes_failed_but_stored']}",
        f"out of rotation after {f['out_of_rotation_s']} s; its jobs moved after "
        f"{f['jobs_moved_s']} s (bound {f['job_takeover_bound_s']} s)",
        f"MQTT readings: sent {f['readings_sent']}, acknowledged by the broker "
        f"{f['readings_acknowledged']}, stored {f['readings_stored']}, lost "
        f"{f['readings_lost']}, duplicated {f['readings_duplicated']}; stored exactly once: "
        f"{'yes' if f['readings_exactly_once'] else 'NO'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/three-nodes", description=__doc__.split("\n\n")[0]
    )
    d = Options()
    parser.add_argument("--duration", type=float, default=d.duration, help="seconds of load (60)")
    parser.add_argument("--writers", type=int, default=d.writers, help="HTTP clients (4)")
    parser.add_argument("--rate", type=float, default=d.rate, help="MQTT messages/s (200)")
    parser.add_argument("--per-message", type=int, default=d.per_message, help="readings (5)")
    parser.add_argument("--devices", type=int, default=d.devices, help="devices (200)")
    parser.add_argument("--lease", type=float, default=d.lease, help="job lease, s (15)")
    parser.add_argument("--keep", type=Path, help="keep the homes and logs in this directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.duration > 600 or args.rate * args.per_message > 20_000:
        parser.error("bounded: at most 600 s and 20,000 readings/s")
    opts = Options(args.duration, args.writers, args.rate, args.per_message, args.devices,
                   args.lease, args.keep)  # fmt: skip
    figures = run(opts)
    print(orjson.dumps(figures).decode() if args.json else report(figures))
    clean = (
        figures["writes_lost"] == 0
        and figures["writes_duplicated"] == 0
        and figures["readings_exactly_once"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
