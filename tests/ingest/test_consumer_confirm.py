"""Stored confirmations from a real ``python -m ingest`` process: after InfluxDB took a
batch, each station of it gets the ranges of its readings that are now stored."""

from __future__ import annotations

import threading

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from civicair.schema import contract
from tests.conftest import wait_until
from tests.ingest.conftest import reading, stored, stored_count

STATIONS = ["cf-1", "cf-2", "cf-3"]


class Watcher:
    """Every stored confirmation the broker delivers, decoded: (topic station, ranges)."""

    def __init__(self, broker) -> None:
        self.seen: list[tuple[str, contract.StoredRanges]] = []
        self.lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stored-watcher", protocol=mqtt.MQTTv5)
        c.on_message = self._on_message
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{contract.TOPIC_ROOT}/+/stored", qos=1)
        c.connect(broker.host, broker.port)
        c.loop_start()
        wait_until(c.is_connected, timeout=10, message="watcher connected")
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        station = contract.station_from_topic(msg.topic)
        with self.lock:
            self.seen.append((station, contract.decode_stored(msg.payload, station)))

    def covered(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        with self.lock:
            for station, ranges in self.seen:
                for (channel, boot), spans in ranges.items():
                    assert (channel, boot) == ("a", 1)
                    out.setdefault(station, set()).update(q for lo, hi in spans for q in range(lo, hi + 1))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(mosquitto):
    w = Watcher(mosquitto)
    yield w
    w.close()


def publish_with_gaps(publisher) -> None:
    """seq 0..29 of each station: seq 10 never sent, seq 20 a dead letter that cannot name
    its reading (channel "c"), seq 25 a dead letter that can (a clock years ahead)."""
    for seq in range(30):
        for s in STATIONS:
            if seq == 10:
                continue
            doc = reading(s, seq)
            if seq == 20:
                doc["channel"] = "c"
            if seq == 25:
                doc["ts"] = contract.LATEST_TS - 60
            publisher.publish(contract.readings_topic(s), orjson.dumps(doc))
    publisher.settle()


def test_ingest_confirms_what_influxdb_stored_and_kept_dead_letters_one_message_per_station_per_batch(
        spawn_ingest, publisher, watcher, influx):
    ingest = spawn_ingest(batch_age_s=0.5)
    publish_with_gaps(publisher)
    wait_until(lambda: stored_count(influx) == len(STATIONS) * 27, timeout=30, message="all stored")
    held = {s: {seq for _, seq in points} for s, points in stored(influx, STATIONS).items()}
    assert held == {s: set(range(30)) - {10, 20, 25} for s in STATIONS}
    # seq 25 is kept in the dead-letter file; resending it would not change that: confirmed.
    expected = {s: seqs | {25} for s, seqs in held.items()}
    wait_until(lambda: watcher.covered() == expected, timeout=15,
               message=f"confirmations cover what is stored or kept: {watcher.covered()}")
    sent = ingest.metric("civicair_ingest_confirmations_sent_total")
    with watcher.lock:
        assert sent == len(watcher.seen)
        per_station = [station for station, _ in watcher.seen]
    # Coalesced: at most one message per station per batch, far fewer than readings.
    assert len(per_station) < len(STATIONS) * 28 / 4
    # The gaps show up as separate ranges, never covered.
    assert all(10 not in v and 20 not in v for v in watcher.covered().values())


def test_a_dead_letter_the_file_could_not_keep_is_not_confirmed(spawn_ingest, publisher, watcher, influx,
                                                                tmp_path):
    spawn_ingest(batch_age_s=0.5, deadletter_path=tmp_path)  # a directory: every append fails
    publish_with_gaps(publisher)
    wait_until(lambda: stored_count(influx) == len(STATIONS) * 27, timeout=30, message="all stored")
    held = {s: {seq for _, seq in points} for s, points in stored(influx, STATIONS).items()}
    wait_until(lambda: watcher.covered() == held, timeout=15,
               message=f"confirmations cover what is stored only: {watcher.covered()}")


def test_no_confirmations_when_they_are_turned_off(spawn_ingest, publisher, watcher, influx):
    ingest = spawn_ingest(confirm_stored="false")
    for seq in range(5):
        publisher.publish(contract.readings_topic("cf-1"), orjson.dumps(reading("cf-1", seq)))
    publisher.settle()
    wait_until(lambda: stored_count(influx) == 5, timeout=30, message="all stored")
    # The watcher sees what the broker routes in order on one connection: a marker sent
    # after the last write arrives after any confirmation of it would have.
    publisher.publish(contract.stored_topic("cf-1"), contract.encode_stored("cf-1", {("a", 9): [(0, 0)]}))
    wait_until(lambda: watcher.seen, timeout=10, message="the marker")
    assert [ranges for _, ranges in watcher.seen] == [{("a", 9): [(0, 0)]}]
    assert ingest.metric("civicair_ingest_confirmations_sent_total") == 0


def test_ingest_warns_when_the_broker_answers_with_a_new_session(mosquitto, spawn_ingest):
    ingest = spawn_ingest()
    mosquitto.kill()
    for f in mosquitto.state_dir.glob("mosquitto.db*"):
        f.unlink()  # the broker's snapshot is gone: it cannot resume our session
    mosquitto.start()
    wait_until(lambda: ingest.metric("civicair_ingest_sessions_lost_total") == 1, timeout=40,
               message=f"lost session counted; log:\n{ingest.log_tail()}")
    assert "WARNING" in ingest.log_text() and "new session where ours should have been resumed" in ingest.log_text()
    wait_until(lambda: ingest.metric("civicair_ingest_mqtt_connected") == 1, timeout=10, message="reconnected")
