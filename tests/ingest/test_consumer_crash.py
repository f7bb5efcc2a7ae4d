"""Scenario 2: the ingest is SIGKILLed mid-batch and started again with the same client id:
the broker redelivers what was never acknowledged; every reading is stored, once."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for, stored_count

STATIONS = [f"kill-{i}" for i in range(4)]
PER_STATION = 750
RATE = 300.0


@pytest.mark.slow  # an end-to-end scenario of seconds to a minute: not in the inner loop
def test_ingest_killed_mid_batch_and_restarted_stores_everything_once(influx, spawn_ingest, publisher):
    # Long batches, so that a kill lands while hundreds of messages are held unacknowledged.
    settings = {"batch_size": 400, "batch_age_s": 1.5, "receive_maximum": 2000}
    first = spawn_ingest("ingest-1", **settings)
    stream = publisher.stream(messages_for(STATIONS, PER_STATION), rate=RATE)

    def mid_batch():
        m = first.metrics()
        held = m.get("civicair_ingest_buffered_messages", 0)
        return m if m.get("civicair_ingest_written_readings_total", 0) >= 600 and held >= 50 else None

    before = wait_until(mid_batch, timeout=60, message="a batch under way")
    first.kill()
    assert before["civicair_ingest_buffered_messages"] > 0  # unacknowledged when it died

    second = spawn_ingest("ingest-2", **settings)  # same client id: the session resumes
    stream.join()
    publisher.settle()
    total = len(STATIONS) * PER_STATION
    wait_until(lambda: stored_count(influx) >= total, timeout=60, message="every reading stored")
    wait_until(lambda: second.metric("civicair_ingest_buffered_messages") == 0, timeout=30,
               message="everything acknowledged")

    assert_complete_once(influx, STATIONS, PER_STATION)
    after = second.metrics()
    # Redelivery happened: the broker resent (DUP) what the killed process held, and the two
    # processes together received more messages than were published.
    assert after["civicair_ingest_redelivered_messages_total"] > 0
    key = "civicair_ingest_received_messages_total"
    assert before[key] + after[key] > total
    assert "session resumed" in second.log_text()
