"""Scenario 3: the broker restarts mid-stream (persistence on, same port and state dir):
the ingest's session, subscription and queued messages survive; every reading is stored once."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for, stored_count

STATIONS = [f"brk-{i}" for i in range(4)]
PER_STATION = 500
RATE = 200.0


@pytest.mark.slow  # an end-to-end scenario of seconds to a minute: not in the inner loop
def test_broker_restarted_mid_stream_with_persistence_loses_nothing(
        mosquitto, influx, spawn_ingest, publisher):
    ingest = spawn_ingest(batch_age_s=1.0)
    stream = publisher.stream(messages_for(STATIONS, PER_STATION), rate=RATE)
    wait_until(lambda: stored_count(influx) >= 400, timeout=60, message="the stream flowing")

    mosquitto.stop()  # SIGTERM: Mosquitto writes its persistence file on the way out
    wait_until(lambda: ingest.metric("civicair_ingest_mqtt_connected") == 0, timeout=10,
               message="the ingest noticing")
    status, body = ingest.health()
    assert status == 503 and "not connected to the MQTT broker" in body["reasons"]
    time.sleep(2)
    mosquitto.start()

    stream.join()
    publisher.settle()
    total = len(STATIONS) * PER_STATION
    wait_until(lambda: stored_count(influx) >= total, timeout=90, message="every reading stored")
    wait_until(lambda: ingest.metric("civicair_ingest_buffered_messages") == 0, timeout=30,
               message="everything acknowledged")

    assert_complete_once(influx, STATIONS, PER_STATION)
    assert ingest.health()[0] == 200
    log = ingest.log_text()
    assert log.count("broker connection lost") == 1, log
    assert "session resumed" in log, log  # the broker kept our session across its restart
