"""Subscriptions and notifications (ETSI GS CIM 009 clauses 5.8, 5.2.12-5.2.15, 5.3.1 and 7).

How the pieces fit:

* :mod:`.model` validates a Subscription payload into the stored layout (names expanded) and
  renders it back;
* :mod:`.service` stores subscriptions and keeps a per-tenant cache of compiled ones;
* :mod:`.matcher` runs inside every entity write transaction (an in-transaction hook of the
  change feed, ``hub/changes.py``)
  and inserts one ``outbox`` row per notification owed: the notification is durable as soon as
  the write is, and the write never waits for a receiver;
* :mod:`.notifier` is the background worker that renders and delivers outbox rows (with
  retries), sends periodic (``timeInterval``) notifications and keeps the status counters;
* :mod:`.senders` speaks HTTP(S) and MQTT to receivers.
"""
