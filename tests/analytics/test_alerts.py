"""Alerts are data: raised, kept, escalated, cleared and raised again as one NGSI-LD Alert
entity per (analysis, subject, subCategory), seen by the hub's API and its subscriptions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.analytics.alerts import (
    AlertSpec,
    active_alerts,
    alert_id,
    alerts,
    clear_alert,
    raise_alert,
    reconcile,
)
from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.runtime import Hub, build_hub
from smartcity.hub.timeutil import iso_from_us
from smartcity.storage.engine import Database

T0 = 1_790_000_000_000_000  # µs
MIN = 60_000_000


@pytest.fixture
def hub(db: Database) -> Iterator[Hub]:
    h = build_hub(Settings(database_url=db.url, auth_required=False), db)
    yield h
    h.close()


def spec(severity: str = "high", subject: str = "gate-3") -> AlertSpec:
    return AlertSpec(
        analysis="crowds",
        subject=subject,
        category="security",
        sub_category="overcrowding",
        severity=severity,
        description=f"{subject}: LOS E",
        location={"type": "Point", "coordinates": [114.2, 22.32]},
        data={"density": 1.9},
    )


def test_raise_keep_escalate_clear_and_raise_again(hub: Hub) -> None:
    e = hub.entities
    assert raise_alert(e, spec(), at_us=T0) == "raised"
    assert raise_alert(e, spec(), at_us=T0 + MIN) == "unchanged"  # no duplicate, no rewrite
    assert raise_alert(e, spec("critical"), at_us=T0 + 2 * MIN) == "updated"
    [alert] = alerts(e, "crowds")
    assert alert["id"] == alert_id("crowds", "gate-3", "overcrowding")
    assert alert["type"] == "Alert" and alert["severity"] == "critical"
    assert alert["category"] == "security" and alert["subCategory"] == "overcrowding"
    assert alert["validFrom"] == iso_from_us(T0)  # the escalation keeps the start
    assert alert["location"]["coordinates"] == [114.2, 22.32]
    assert "validTo" not in alert

    assert clear_alert(e, "crowds", "gate-3", "overcrowding", at_us=T0 + 10 * MIN)
    assert not clear_alert(e, "crowds", "gate-3", "overcrowding", at_us=T0 + 11 * MIN)
    [alert] = alerts(e, "crowds")
    assert alert["validTo"] == iso_from_us(T0 + 10 * MIN)
    assert active_alerts(e, "crowds") == []

    assert raise_alert(e, spec(), at_us=T0 + 20 * MIN) == "raised"
    [alert] = alerts(e, "crowds")
    assert "validTo" not in alert and alert["validFrom"] == iso_from_us(T0 + 20 * MIN)
    assert alert["dateIssued"] == iso_from_us(T0)  # first issued


def test_reconcile_clears_what_no_longer_holds_and_only_its_own(hub: Hub) -> None:
    e = hub.entities
    other = AlertSpec("water", "dma-1", "environment", "waterLeakage", "medium", "leak")
    raise_alert(e, other, at_us=T0)
    out = reconcile(e, "crowds", [spec(subject="a"), spec(subject="b")], at_us=T0)
    assert sorted(out.raised) == [spec(subject="a").id, spec(subject="b").id]
    out = reconcile(e, "crowds", [spec(subject="b")], at_us=T0 + MIN)
    assert out.cleared == [spec(subject="a").id] and out.unchanged == [spec(subject="b").id]
    assert sorted(a["id"] for a in active_alerts(e)) == sorted([other.id, spec(subject="b").id])
    out = reconcile(e, "crowds", [], at_us=T0 + 2 * MIN, keep=[spec(subject="b").id])
    assert out.cleared == []  # kept: the analysis could not tell
    out = reconcile(e, "crowds", [], at_us=T0 + 2 * MIN, prefix="a")
    assert out.cleared == []  # only subjects starting with "a" are this run's to clear
    out = reconcile(e, "crowds", [], at_us=T0 + 2 * MIN)
    assert out.cleared == [spec(subject="b").id]
    assert [a["id"] for a in active_alerts(e)] == [other.id]  # water's alert untouched


def test_bad_alerts_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="severity must be one of"):
        spec("severe")
    with pytest.raises(ValueError, match="needs a subject"):
        spec(subject="")


class Receiver:
    """Notifications POSTed to 127.0.0.1 (a subscriber's endpoint)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"{len(self.bodies)} of {count} notifications"
            time.sleep(0.05)
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_subscribers_are_told_of_raising_and_clearing(settings: Settings, hub: Hub) -> None:
    """A subscription to Alert entities on the running server hears of an alert raised (and
    later cleared) by an analysis in another hub instance on the same database (as
    ``smartcity analytics ... run`` does from its own process)."""
    receiver = Receiver()
    try:
        with TestClient(create_app(settings)) as client:
            r = client.post(
                "/ngsi-ld/v1/subscriptions",
                json={
                    "type": "Subscription",
                    "entities": [{"type": "Alert"}],
                    "notification": {"endpoint": {"uri": receiver.url}, "format": "keyValues"},
                },
                headers=city_link(),
            )
            assert r.status_code == 201, r.text
            raise_alert(hub.entities, spec("critical"), at_us=T0)
            first = receiver.wait(1)[0]["data"][0]
            assert first["id"] == spec().id and first["severity"] == "critical"
            assert "validTo" not in first
            clear_alert(hub.entities, "crowds", "gate-3", "overcrowding", at_us=T0 + MIN)
            second = receiver.wait(2)[1]["data"][0]
            assert second["validTo"] == {"@type": "DateTime", "@value": iso_from_us(T0 + MIN)}
    finally:
        receiver.close()
