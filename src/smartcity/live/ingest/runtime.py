"""Ingestion wired together: registry, metrics, writer, the optional MQTT subscriber and the
periodic work. Built once per process (by the app, or by ``smartcity ingest mqtt``).

Periodic work: every node refreshes its own device cache (``_watch``); the silent-device sweep
and the ledger pruning are cluster jobs on the hub's scheduler (storage/leases.py), run by one
node of the cluster at a time."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smartcity.hub.runtime import Hub
from smartcity.hub.timeutil import now_us
from smartcity.live.devices.service import DEFAULT_TOPIC_PATTERN, REFRESH_SECONDS, DeviceRegistry
from smartcity.live.ingest.metrics import Metrics
from smartcity.live.ingest.store import prune_ledger
from smartcity.live.ingest.writer import BatchWriter
from smartcity.storage.leases import Scheduler, Stop

if TYPE_CHECKING:
    from smartcity.live.ingest.members import Membership
    from smartcity.live.ingest.mqtt import MqttSubscriber

DEFAULT_CLIENT_ID = "smartcity-ingest"

log = logging.getLogger(__name__)


@dataclass
class IngestConfig:
    mqtt_url: str | None = None  # e.g. mqtt://user:pass@127.0.0.1:1883
    topic_pattern: str = DEFAULT_TOPIC_PATTERN
    client_id: str = DEFAULT_CLIENT_ID
    # MQTT v5 shared subscription: nodes with the same group share the readings (None: this
    # node alone takes every reading, as on one machine).
    share_group: str | None = None
    queue_capacity: int = 50_000  # readings waiting for the writer
    max_batch: int = 5_000  # readings per transaction
    silence_check_s: float = 30.0
    ledger_days: float = 30.0  # how long (by reading time) redeliveries are recognised; 0: ever
    prune_every_s: float = 3600.0

    @classmethod
    def from_env(cls) -> IngestConfig:
        from smartcity.live.ingest.mqtt import check_share_group

        env = os.environ
        group = env.get("SMARTCITY_MQTT_SHARE_GROUP") or None
        return cls(
            mqtt_url=env.get("SMARTCITY_MQTT_URL") or None,
            topic_pattern=env.get("SMARTCITY_MQTT_TOPIC_PATTERN", DEFAULT_TOPIC_PATTERN),
            client_id=env.get("SMARTCITY_MQTT_CLIENT_ID", DEFAULT_CLIENT_ID),
            share_group=check_share_group(group) if group else None,
            queue_capacity=int(env.get("SMARTCITY_INGEST_QUEUE", "50000")),
            ledger_days=float(env.get("SMARTCITY_INGEST_LEDGER_DAYS", "30")),
            silence_check_s=float(env.get("SMARTCITY_SILENCE_CHECK_SECONDS", "30")),
        )


@dataclass
class Ingest:
    config: IngestConfig
    registry: DeviceRegistry
    metrics: Metrics
    writer: BatchWriter
    mqtt: MqttSubscriber | None = None
    members: Membership | None = None
    # The cluster's periodic jobs (the hub's); None: the sweeps are not run by this process.
    scheduler: Scheduler | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _monitor: threading.Thread | None = None
    _jobs: list[Stop] = field(default_factory=list)

    def start(self, *, mqtt: bool = True) -> None:
        self.writer.start()
        if mqtt and self.config.mqtt_url:
            from smartcity.live.ingest.mqtt import MqttSubscriber

            group = self.config.share_group
            if group is None:
                self.mqtt = MqttSubscriber(self, self.config.mqtt_url)
            else:
                from smartcity.live.ingest.members import Membership, status_topic

                client_id = node_client_id(self.config)
                self.mqtt = MqttSubscriber(
                    self,
                    self.config.mqtt_url,
                    client_id=client_id,
                    status_topic=status_topic(group, client_id),
                )
                self.members = Membership(self, self.config.mqtt_url, group, client_id)
                self.members.start()
            self.mqtt.start()
        self._stop.clear()
        self._monitor = threading.Thread(target=self._watch, name="device-cache", daemon=True)
        self._monitor.start()
        if self.scheduler is not None and not self._jobs:
            self._jobs = [
                self.scheduler.every(
                    "devices.silence",
                    self.config.silence_check_s,
                    self.check_silence,
                    delay_s=self.config.silence_check_s,
                ),
                # The first a minute after start: not while a restarted cluster is busy.
                self.scheduler.every(
                    "ingest.prune-ledger", self.config.prune_every_s, self.prune_ledger, delay_s=60
                ),
            ]

    def stop(self) -> None:
        self._stop.set()
        for stop in self._jobs:
            stop()
        self._jobs = []
        left = False
        if self.mqtt is not None and self.members is not None:
            # A sharing node leaves the group: the others take the group's messages from now
            # on, and its session ends once what it received is committed and acknowledged.
            left = self.mqtt.leave()
        if self.mqtt is not None:
            self.mqtt.stop()  # no more input; what is queued is still written and acked
        self.writer.stop()
        if self.mqtt is not None:
            if self.members is not None and left:
                self.members.clear(self.mqtt.client_id)
            elif self.members is not None:  # kept: said offline, so a survivor drains it
                self.mqtt.client.publish(self.mqtt.status_topic or "", b"offline", 1, True)
            self.mqtt.close(end_session=left)
            self.mqtt = None
        if self.members is not None:
            self.members.close()
            self.members = None

    def prune_ledger(self) -> int:
        """Forget the ledger rows of readings older than ``ledger_days`` (see store.py)."""
        if not self.config.ledger_days:
            return 0
        before = now_us() - int(self.config.ledger_days * 86_400 * 1_000_000)
        removed = prune_ledger(self.writer.db, before)
        if removed:
            log.info(
                "ingestion ledger: forgot %d readings older than %s days",
                removed,
                self.config.ledger_days,
            )
        return removed

    def check_silence(self) -> None:
        """Mark devices silent (or ok again) and mirror that to their Device entities."""
        for device in self.registry.check_silence():
            log.info("device %s is now %s", device.device_id, device.status)

    def _watch(self) -> None:
        # Every node: devices created or revoked through another node reach this one's cache.
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self.registry.refresh()
            except Exception:
                log.exception("device cache refresh failed")


def node_client_id(config: IngestConfig) -> str:
    """A sharing node's MQTT client id: the one configured, else one of its own (host and
    process). Each node needs its own: the broker keeps one session per id, and a second
    connection with the same id would take the session from the first."""
    if config.client_id != DEFAULT_CLIENT_ID:
        return config.client_id
    return f"{DEFAULT_CLIENT_ID}-{socket.gethostname()}-{os.getpid()}"


def build_ingest(hub: Hub, config: IngestConfig | None = None) -> Ingest:
    """Ingestion on ``hub`` (``smartcity.hub.runtime.build_hub``): its writes go through the
    hub's transaction, so subscriptions and live views see them like any other write."""
    config = config or IngestConfig.from_env()
    metrics = Metrics()
    registry = DeviceRegistry(
        hub.db, hub.entities, hub.contexts, topic_pattern=config.topic_pattern
    )
    writer = BatchWriter(
        hub.db, hub.entities, metrics, capacity=config.queue_capacity, max_batch=config.max_batch
    )
    return Ingest(config, registry, metrics, writer, scheduler=hub.scheduler)
