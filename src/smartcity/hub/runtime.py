"""The hub's front door: ``build_hub`` makes the one typed ``Hub`` that every caller uses — the
server, the CLIs, device ingestion, the portal, the benchmarks and the tests.

What it wires, once:

- one ``ChangeFeed`` (hub/changes.py) shared by every writer: ``EntityService`` writes through
  it, and so does ingestion (``EntityService.transaction``);
- subscriptions: the matcher is an in-transaction hook (notifications are owed durably, in the
  outbox, with the write that owes them) and a commit listener that wakes the notifier;
- the temporal service and the @context store.

``Hub.start`` / ``Hub.stop`` run the notifier's delivery thread (the server's lifespan; a CLI
that only writes needs neither: what it queues is delivered by the server).

``Hub.scheduler`` (storage/leases.py) runs periodic jobs once per cluster when several nodes
share a PostgreSQL database; the hub registers its own (periodic notifications) and the
features register theirs (ingestion's sweeps, the archive's runs) on the same scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from smartcity.config import Settings
from smartcity.hub.body_cache import BodyCache
from smartcity.hub.changes import ChangeFeed, Unsubscribe
from smartcity.hub.contexts import ContextStore
from smartcity.hub.federation import Federation, build_federation
from smartcity.hub.service import EntityService
from smartcity.hub.subscriptions.matcher import Matcher
from smartcity.hub.subscriptions.notifier import Notifier
from smartcity.hub.subscriptions.outbox import RetryPolicy
from smartcity.hub.subscriptions.senders import Senders
from smartcity.hub.subscriptions.service import SubscriptionService
from smartcity.hub.temporal.service import TemporalService
from smartcity.security.keys import KeyStore
from smartcity.storage import partitions
from smartcity.storage.engine import Database
from smartcity.storage.leases import Scheduler, Stop

# The lease-holder queues periodic (timeInterval) notifications; the job itself only wakes
# the delivery loops (entity and registration subscriptions'), which check the periodic
# subscriptions before each claim.
PERIODIC_JOB = "notifications.periodic"
log = logging.getLogger(__name__)


@dataclass
class Hub:
    """Everything that reads and writes city data, built once per process by ``build_hub``."""

    settings: Settings
    db: Database
    feed: ChangeFeed
    entities: EntityService
    contexts: ContextStore
    keys: KeyStore
    subscriptions: SubscriptionService
    notifier: Notifier
    temporal: TemporalService
    # Context source registrations and the distributed reads (department brokers).
    federation: Federation
    # Periodic jobs, once per cluster (storage/leases.py).
    scheduler: Scheduler
    # Rendered retrieve-by-id bodies, keyed by the stored document's text (hub/api/entities.py)
    rendered: BodyCache | None = None
    _wiring: list[Unsubscribe] = field(default_factory=list, repr=False)
    _jobs: list[Stop] = field(default_factory=list, repr=False)

    def start(self) -> None:
        """Deliver notifications: what the outbox still holds from before, then as owed."""
        if not self._jobs:
            self._jobs.append(self.scheduler.every(PERIODIC_JOB, 1.0, self._wake_periodic))
            self.notifier.periodic_here = self._periodic_here
            if self.federation.notifier is not None:  # periodic registration subscriptions
                self.federation.notifier.periodic_here = self._periodic_here
            if self.db.is_postgres:  # the history's monthly partitions, made ahead of time
                self._jobs.append(
                    self.scheduler.every(partitions.JOB, partitions.JOB_PERIOD_S, self._partitions)
                )
        self.notifier.start()
        self.federation.start()  # registration subscriptions' notifications

    def _periodic_here(self) -> bool:
        return self.scheduler.holds(PERIODIC_JOB)

    def _wake_periodic(self) -> None:
        self.notifier.wake()
        if self.federation.notifier is not None:
            self.federation.notifier.wake()

    def _partitions(self) -> None:
        made = partitions.ensure_ahead(self.db)
        if made:
            log.info("made history partitions %s", ", ".join(made))

    def stop(self) -> None:
        for stop in self._jobs:
            stop()
        self._jobs.clear()
        self.notifier.stop()
        self.federation.stop()

    def close(self) -> None:
        """Stop, unplug the subscription matcher from the feed, release the database."""
        self.stop()
        self.scheduler.close()  # the features' jobs too, giving their leases back
        for unsubscribe in self._wiring:
            unsubscribe()
        self._wiring.clear()
        self.db.dispose()


def build_hub(settings: Settings, db: Database | None = None) -> Hub:
    """The hub for ``settings`` (on ``db`` when the caller already opened the database)."""
    db = db or Database(settings.database_url)
    feed = ChangeFeed()
    contexts = ContextStore(
        db,
        timeout=settings.limits.context_fetch_timeout,
        max_bytes=settings.limits.max_context_bytes,
        forbid_private=settings.forbid_private_targets,
        concurrency=settings.limits.context_fetch_concurrency,
        per_host=settings.limits.context_fetches_per_host,
    )
    entities = EntityService(db, feed, query_budget=settings.limits.query_timeout)
    subscriptions = SubscriptionService(db)
    matcher = Matcher(subscriptions)
    delivery = settings.notifications
    notifier = Notifier(
        db,
        subscriptions,
        entities,
        contexts,
        senders=Senders(forbid_private=settings.forbid_private_targets),
        retry=RetryPolicy(base_delay=delivery.retry_base, max_delay=delivery.retry_cap),
        lease=delivery.lease,
    )
    wiring = [
        feed.on_change(matcher.on_change),
        feed.on_commit(matcher.after_commit),
        matcher.queued.add(notifier.wake),
        subscriptions.changed.add(lambda _tenant, _sub_id: notifier.wake()),
    ]
    return Hub(
        settings=settings,
        db=db,
        feed=feed,
        entities=entities,
        contexts=contexts,
        keys=KeyStore(db),
        subscriptions=subscriptions,
        notifier=notifier,
        temporal=TemporalService(
            db, entities, max_instances=settings.limits.max_temporal_instances
        ),
        federation=build_federation(db, settings, contexts),
        scheduler=Scheduler(db, lease_s=settings.cluster.job_lease),
        rendered=BodyCache(lim) if (lim := settings.limits.render_cache_bytes) > 0 else None,
        _wiring=wiring,
    )


@contextmanager
def open_hub(settings: Settings, db: Database | None = None) -> Iterator[Hub]:
    """A hub for a command that runs and ends (``smartcity connect``, ``simulate``, bench):
    closed, and its database released, on the way out."""
    hub = build_hub(settings, db)
    try:
        yield hub
    finally:
        hub.close()
