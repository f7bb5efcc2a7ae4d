"""Scenario 1: InfluxDB stops for 30 s mid-stream and comes back on the same port and data
directory: every reading is stored exactly once, and the ingest's memory stays bounded
meanwhile (it holds at most Receive Maximum messages; the broker queues the rest)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for, stored_count

STATIONS = [f"out-{i}" for i in range(5)]
PER_STATION = 1000  # 5,000 readings over ~50 s, the outage in the middle
RATE = 100.0  # messages/s
RECEIVE_MAXIMUM = 200
OUTAGE_S = 30


@pytest.mark.slow  # an end-to-end scenario of seconds to a minute: not in the inner loop
def test_influxdb_down_for_30_s_mid_stream_loses_nothing_and_holds_at_most_receive_maximum(
        influxdb, influx, spawn_ingest, publisher):
    ingest = spawn_ingest(receive_maximum=RECEIVE_MAXIMUM, batch_size=100)
    stream = publisher.stream(messages_for(STATIONS, PER_STATION), rate=RATE)
    wait_until(lambda: stored_count(influx) >= 500, timeout=60, message="the stream flowing")

    influxdb.stop()
    down_at = time.monotonic()
    wait_until(lambda: ingest.health()[0] == 503, timeout=30, message="/health turning 503")
    status, body = ingest.health()
    assert any("InfluxDB" in r for r in body["reasons"]), body
    assert body["mqtt_connected"] is True
    # Meanwhile the stream goes on; the broker holds what the ingest may not take.
    held = []
    while time.monotonic() - down_at < OUTAGE_S:
        held.append(ingest.metric("civicair_ingest_buffered_messages"))
        time.sleep(0.5)
    published_while_down = publisher.sent - ingest.metric("civicair_ingest_acked_messages_total")
    assert published_while_down > 5 * RECEIVE_MAXIMUM  # a real backlog sits in the broker
    assert max(held) == RECEIVE_MAXIMUM  # the ingest filled its window, and no more
    assert ingest.metric("civicair_ingest_buffered_messages_max") <= RECEIVE_MAXIMUM
    assert ingest.metric("civicair_ingest_influxdb_up") == 0

    influxdb.start()
    stream.join()
    publisher.settle()
    total = len(STATIONS) * PER_STATION
    wait_until(lambda: stored_count(influx) >= total, timeout=90, message="the backlog written")
    wait_until(lambda: ingest.metric("civicair_ingest_buffered_messages") == 0, timeout=30,
               message="every message acknowledged")

    assert_complete_once(influx, STATIONS, PER_STATION)
    assert ingest.metric("civicair_ingest_buffered_messages_max") <= RECEIVE_MAXIMUM
    assert ingest.metric("civicair_ingest_write_retries_total") > 0
    assert ingest.health()[0] == 200
    log = ingest.log_text()
    # One line per state change, none per message or per retry.
    assert log.count("InfluxDB down") == 1, log
    assert log.count("backlog draining") == 1, log
    assert log.count("recovered: backlog drained") == 1, log
