"""Scenario 4: two ingest processes on the shared subscription split the stream: the union
in InfluxDB is complete, each wrote a share, and nothing was written twice."""

from __future__ import annotations

from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for, stored_count

STATIONS = [f"shr-{i}" for i in range(6)]
PER_STATION = 500


def test_two_ingest_processes_share_the_stream_completely_and_without_overlap(
        influx, spawn_ingest, publisher):
    # Each process needs its own client id (its own session); the share group is the same.
    a = spawn_ingest("ingest-a", mqtt_client_id="ingest-a", share_group="ingest")
    b = spawn_ingest("ingest-b", mqtt_client_id="ingest-b", share_group="ingest")
    publisher.publish_all(messages_for(STATIONS, PER_STATION), rate=1000.0)
    publisher.settle()
    total = len(STATIONS) * PER_STATION
    wait_until(lambda: stored_count(influx) >= total, timeout=60, message="every reading stored")
    wait_until(lambda: a.metric("civicair_ingest_acked_messages_total")
               + b.metric("civicair_ingest_acked_messages_total") >= total, timeout=30,
               message="everything acknowledged")

    assert_complete_once(influx, STATIONS, PER_STATION)
    wrote_a = a.metric("civicair_ingest_written_readings_total")
    wrote_b = b.metric("civicair_ingest_written_readings_total")
    assert wrote_a > 0 and wrote_b > 0
    # Writes are idempotent, so a double write would not show in InfluxDB; the counters show it.
    assert wrote_a + wrote_b == total
    assert a.metric("civicair_ingest_redelivered_messages_total") == 0
    assert b.metric("civicair_ingest_redelivered_messages_total") == 0
