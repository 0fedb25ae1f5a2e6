"""Federation: context source registrations, their subscriptions, and the distributed reads
that forward queries to the registered department brokers (NGSI-LD clauses 4.3, 5.9-5.11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartcity.config import Settings
from smartcity.hub.federation.forwarding import Forwarder
from smartcity.hub.federation.service import RegistrationService
from smartcity.storage.engine import Database


@dataclass
class Federation:
    registrations: RegistrationService
    forwarder: Forwarder
    # Registration subscriptions (csubs.CsourceSubscriptionService) and their notifier.
    subscriptions: Any = None
    notifier: Any = None

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()

    def stop(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()


def build_federation(db: Database, settings: Settings) -> Federation:
    registrations = RegistrationService(db)
    return Federation(registrations=registrations, forwarder=Forwarder(registrations))
