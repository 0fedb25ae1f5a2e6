"""MQTT ingestion shared by nodes: a v5 shared subscription, one ledger for duplicates."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from tests.cluster.mqtt_share_support import (
    Node,
    Publisher,
    private_broker,
    register_devices,
    scratch_postgres,
    temperature_rows,
    wait_stored,
)

from smartcity.live.ingest.members import Membership, status_topic
from smartcity.live.ingest.mqtt import check_share_group, subscription_filter
from smartcity.live.ingest.runtime import IngestConfig, node_client_id

PATTERN = "city/{tenant}/devices/{device_id}/readings"


def test_share_group_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTCITY_MQTT_SHARE_GROUP", raising=False)
    monkeypatch.delenv("SMARTCITY_MQTT_CLIENT_ID", raising=False)
    alone = IngestConfig.from_env()
    assert alone.share_group is None  # one machine: no sharing, as before
    assert subscription_filter(PATTERN, alone.share_group) == "city/+/devices/+/readings"
    monkeypatch.setenv("SMARTCITY_MQTT_SHARE_GROUP", "ingest")
    shared = IngestConfig.from_env()
    assert subscription_filter(PATTERN, shared.share_group) == (
        "$share/ingest/city/+/devices/+/readings"
    )
    # Each node gets a client id of its own unless one is configured.
    assert node_client_id(shared) != alone.client_id
    assert node_client_id(IngestConfig(client_id="node-7")) == "node-7"
    monkeypatch.setenv("SMARTCITY_MQTT_SHARE_GROUP", "a/b")
    with pytest.raises(ValueError, match="plain name"):
        IngestConfig.from_env()
    for bad in ("+", "x#", "$sys", ""):
        with pytest.raises(ValueError):
            check_share_group(bad)


def test_every_node_picks_the_same_survivor() -> None:
    """Survivors agree on who takes a dead member over first (no race of takeovers)."""
    picks = set()
    for own in ("n1", "n2", "n3"):
        members = Membership.__new__(Membership)
        members.own_id = own
        members.status = {"n1": "online", "n2": "online", "n3": "online", "dead": "offline"}
        members._lock = __import__("threading").Lock()
        picks.add(members.chosen("dead"))
    assert len(picks) == 1 and picks <= {"n1", "n2", "n3"}
    assert status_topic("g", "n1") == "smartcity-ingest/g/members/n1"


def _written(node: Node) -> int:
    found = re.findall(r"'written': (\d+)", node.text())
    return int(found[-1]) if found else 0


@pytest.mark.slow
def test_two_nodes_share_the_readings(tmp_path: Path) -> None:
    """Two ingesting processes in one group: the broker spreads the messages over both, every
    reading is stored once, and a node that leaves in order ends its session (the other then
    takes all the messages)."""
    with scratch_postgres() as db_url, private_broker() as broker:
        pattern = f"s{uuid.uuid4().hex[:6]}" + "/{tenant}/devices/{device_id}/readings"
        devices = register_devices(db_url, pattern, 20)
        group = "g" + uuid.uuid4().hex[:6]
        nodes = [
            Node(db_url, broker.url, pattern, group, f"node-{i}", tmp_path / f"node{i}.log")
            for i in range(2)
        ]
        try:
            for node in nodes:
                node.wait_ready()
            pub = Publisher(broker.url, devices, per_message=10)
            for m in range(400):
                pub.publish_one(m)
            pub.stop()
            assert pub.acked == 4_000
            _, ledger = wait_stored(db_url, 4_000)
            assert ledger == temperature_rows(db_url) == 4_000
            nodes[0].stop()  # leaves the group: its session ends
            pub2 = Publisher(broker.url, devices)
            for m in range(300):
                pub2.publish_one(m)
            pub2.stop()
            _, ledger = wait_stored(db_url, 4_300)
            assert ledger == temperature_rows(db_url) == 4_300
            nodes[1].stop()
        finally:
            for node in nodes:
                node.kill()
        shares = [_written(n) for n in nodes]
        assert all(s >= 500 for s in shares[:1]), shares  # the broker gave both a share
        assert shares[1] >= 300 and sum(shares) == 4_300, shares


def _duplicates(node: Node) -> int:
    found = re.findall(r"'duplicates': (\d+)", node.text())
    return int(found[-1]) if found else 0


@pytest.mark.slow
def test_a_reading_delivered_to_two_nodes_is_stored_once(tmp_path: Path) -> None:
    """The ledger works across processes: two nodes that both get every message (plain
    subscriptions, no group: the worst case of redelivery) write concurrently into one
    PostgreSQL database; each reading is stored once and the other copy counted a duplicate."""
    with scratch_postgres() as db_url, private_broker() as broker:
        pattern = f"d{uuid.uuid4().hex[:6]}" + "/{tenant}/devices/{device_id}/readings"
        devices = register_devices(db_url, pattern, 20)
        nodes = [
            Node(db_url, broker.url, pattern, None, f"dup-{i}", tmp_path / f"dup{i}.log")
            for i in range(2)
        ]
        try:
            for node in nodes:
                node.wait_ready()
            pub = Publisher(broker.url, devices, per_message=10)
            for m in range(300):
                pub.publish_one(m)
            pub.stop()
            _, ledger = wait_stored(db_url, 3_000)
            time.sleep(1.0)  # the slower node's copies
        finally:
            for node in nodes:
                node.stop()
        assert ledger == temperature_rows(db_url) == 3_000
        written = [_written(n) for n in nodes]
        assert sum(written) == 3_000, written  # each reading written by exactly one node
        assert sum(_duplicates(n) for n in nodes) == 3_000  # the other copy recognised
