"""``smartcity bench ingest`` measures what it says: every reading counted once in the history,
and latencies computed per reading (small runs against the real Mosquitto)."""

from __future__ import annotations

import os

import pytest

from smartcity.bench import ingest
from smartcity.bench.probes import shown_latencies

MQTT_URL = os.environ.get("SMARTCITY_TEST_MQTT_URL")
needs_mqtt = pytest.mark.skipif(
    not MQTT_URL, reason="SMARTCITY_TEST_MQTT_URL not set (e.g. mqtt://127.0.0.1:1883)"
)


def test_shown_latencies_give_every_reading_the_first_update_that_covers_it() -> None:
    published = {"a": [1000, 1010, 1020, 1500], "b": [1000]}
    # a: an update showing 1010 arrives at 1100 (covers 1000 and 1010), one showing 1500 at 1600
    shown = {"a": [(1010, 1100.0), (1500, 1600.0)]}
    latencies, missed = shown_latencies(published, shown)
    assert sorted(latencies) == [90.0, 100.0, 100.0, 580.0]  # 1020 waited for the 1500 update
    assert missed == 1  # b was never shown


@needs_mqtt
def test_in_process_run_counts_every_reading_once() -> None:
    assert MQTT_URL
    [result] = ingest.run(
        None,
        mqtt_url=MQTT_URL,
        readings=3000,
        devices=300,
        publishers=1,
        rate=0,
        server=False,
        per_message=5,
    )
    f = result.figures
    assert f["committed"] == f["readings"] == f["history_rows"] == 3000
    assert f["duplicates"] == 0 and "MISSING" not in f
    assert 0 < f["publish->committed p50_ms"] <= f["publish->committed p95_ms"]
    assert f["cpu_us_per_reading"] > 0


@needs_mqtt
def test_server_run_measures_publish_to_browser() -> None:
    assert MQTT_URL
    [result] = ingest.run(
        None,
        mqtt_url=MQTT_URL,
        readings=2000,
        devices=20,
        publishers=1,
        rate=1000,
        server=True,
        per_message=1,
    )
    f = result.figures
    assert f["committed"] == f["history_rows"] == 2000
    assert f["publish->browser never_shown"] == 0
    # Coalesced per entity at most every 0.25 s: the median reading waits for a flush.
    assert 0 < f["publish->browser p50_ms"] <= f["publish->browser p95_ms"]
    assert f["cpu_us_per_reading"] > 0


def test_writer_only_run_writes_every_reading_into_the_history() -> None:
    [result] = ingest.run_writer(None, readings=2000, devices=50, batch=500)
    f = result.figures
    assert f["readings"] == f["history_rows"] == 2000
    assert f["readings_per_s"] > 0 and f["cpu_us_per_reading"] > 0
