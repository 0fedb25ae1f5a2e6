"""Federation: context source registrations, their subscriptions, and the distributed reads
that forward queries to the registered department brokers (NGSI-LD clauses 4.3, 5.9-5.11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from smartcity.config import Settings
from smartcity.hub.contexts import ContextStore
from smartcity.hub.federation.forwarding import Forwarder
from smartcity.hub.federation.service import RegistrationService
from smartcity.hub.outbound import TargetGuard
from smartcity.storage.engine import Database

if TYPE_CHECKING:
    from smartcity.hub.federation.csub_notifier import CsubNotifier
    from smartcity.hub.federation.csubs import CsourceSubscriptionService


@dataclass
class Federation:
    registrations: RegistrationService
    forwarder: Forwarder
    # Registration subscriptions and their notifier (None in a Federation built by hand).
    subscriptions: CsourceSubscriptionService | None = None
    notifier: CsubNotifier | None = None

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()

    def stop(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()


def build_federation(db: Database, settings: Settings, contexts: ContextStore) -> Federation:
    from smartcity.hub.federation.csub_notifier import CsubNotifier
    from smartcity.hub.federation.csubs import CsourceSubscriptionService
    from smartcity.hub.subscriptions.outbox import RetryPolicy
    from smartcity.hub.subscriptions.senders import Senders

    registrations = RegistrationService(db)
    subscriptions = CsourceSubscriptionService(db)
    # Registration changes queue notifications in their own transaction; the notifier is
    # woken once they commit.
    registrations.change_hooks.append(subscriptions.on_registration_change)
    senders = Senders(forbid_private=settings.forbid_private_targets)
    delivery = settings.notifications
    notifier = CsubNotifier(
        db,
        contexts,
        senders,
        periodic=subscriptions.enqueue_periodic,
        retry=RetryPolicy(base_delay=delivery.retry_base, max_delay=delivery.retry_cap),
        lease=delivery.lease,
    )
    registrations.commit_listeners.append(notifier.wake)
    return Federation(
        registrations=registrations,
        forwarder=Forwarder(registrations, TargetGuard(settings.forbid_private_targets)),
        subscriptions=subscriptions,
        notifier=notifier,
    )
