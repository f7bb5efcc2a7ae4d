"""Dead letters a station can make as large or as many as it likes must not stop the ingest.

Found in review: a 60 kB payload of control bytes, escaped into the dead-letter record,
grew past the broker's max_packet_size (256 KiB in deploy/mosquitto); the broker dropped
the ingest on every attempt to publish it, and no station's readings got through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from civicair.schema import contract
from civicair.services import Mosquitto
from ingest.deadletter import DEADLETTER_TOPIC_PAYLOAD
from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for

STATIONS = ["big-1", "big-2"]
PER_STATION = 50


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """The harness broker with the packet limit the shipped config sets."""
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
    limit = next(line for line in shipped.read_text().splitlines()
                 if line.startswith("max_packet_size"))
    with Mosquitto(tmp_path / "mosquitto", extra_config=limit) as broker:
        yield broker


def test_a_huge_bad_payload_is_dead_lettered_once_and_the_readings_go_on(
        influx, spawn_ingest, publisher, deadletter_topic, tmp_path):
    seen = deadletter_topic
    ingest = spawn_ingest()

    huge = b"\x01" * 200_000  # each byte escapes to 6 ("\u0001"): 1.2 MB as a record
    valid = messages_for(STATIONS, PER_STATION)
    publisher.publish_all(valid[:40] + [(contract.readings_topic("big-1"), huge)] + valid[40:])
    publisher.settle()
    wait_until(lambda: ingest.metric("civicair_ingest_acked_messages_total") >= len(valid) + 1,
               timeout=60, message="every message acknowledged")
    assert_complete_once(influx, STATIONS, PER_STATION)

    wait_until(lambda: len(seen) == 1, timeout=10, message="the dead letter on the topic")
    (record,) = seen
    assert record["payload_bytes"] == len(huge) and record["payload_truncated"] is True
    assert record["payload"] == "\x01" * DEADLETTER_TOPIC_PAYLOAD
    assert record["payload_sha256"] == hashlib.sha256(huge).hexdigest()
    (line,) = (tmp_path / "dead.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["payload"] == huge.decode()  # the file keeps all of it
    assert "connection lost" not in ingest.log_text()
    assert ingest.metric('civicair_ingest_deadlettered_total{reason="json"}') == 1


def test_a_dead_letter_file_that_cannot_be_written_loses_no_reading(influx, spawn_ingest, publisher,
                                                                     tmp_path):
    blocked = tmp_path / "not-a-file"
    blocked.mkdir()  # appending to a directory fails, as a full disk would
    ingest = spawn_ingest(deadletter_path=blocked)
    valid = messages_for(STATIONS, PER_STATION)
    publisher.publish_all(valid[:10] + [(contract.readings_topic("big-2"), b"{bad")] + valid[10:])
    publisher.settle()
    wait_until(lambda: ingest.metric("civicair_ingest_acked_messages_total") >= len(valid) + 1,
               timeout=60, message="every message acknowledged")
    assert_complete_once(influx, STATIONS, PER_STATION)
    assert ingest.metric("civicair_ingest_deadletter_file_errors_total") == 1
    assert "could not append 1 dead letter(s)" in ingest.log_text()
    assert ingest.alive() and ingest.health()[0] == 200


def test_a_reading_days_ahead_is_a_dead_letter_and_an_hour_ahead_is_stored_flagged(
        influx, spawn_ingest, publisher, tmp_path):
    """Found in review: the contract accepts ts up to 2100, and 100 readings a week apart
    made InfluxDB open 100 shards; a station could make thousands. The ingest now takes
    nothing more than a day (CIVICAIR_MAX_FUTURE_S) ahead of its own clock."""
    import time

    from civicair.schema.qc import Flag

    ingest = spawn_ingest()
    now = int(time.time()) // 60 * 60
    years = [reading_at("far-1", now + 7 * 86400 * k, k) for k in range(1, 101)]
    soon = reading_at("far-2", now + 3600, 0)
    publisher.publish(contract.readings_topic("far-1"), orjson.dumps(years))
    publisher.publish(contract.readings_topic("far-2"), orjson.dumps(soon))
    publisher.settle()
    wait_until(lambda: ingest.metric("civicair_ingest_acked_messages_total") >= 2, timeout=30,
               message="both messages acknowledged")
    (line,) = (tmp_path / "dead.jsonl").read_bytes().splitlines()
    record = orjson.loads(line)
    assert record["topic"] == contract.readings_topic("far-1")
    assert "ahead of the receiver's clock" in record["reason"] and record["class"] == "contract"
    (result,) = influx.query('SELECT "qc" FROM "pm" GROUP BY "station"')
    stored = {s["tags"]["station"]: [q for _, q in s["values"]] for s in result.get("series", [])}
    assert list(stored) == ["far-2"] and stored["far-2"][0] & Flag.FUTURE_TIMESTAMP
    (shards,) = influx.query("SHOW SHARDS")
    assert sum(len(s.get("values") or []) for s in shards.get("series", [])) <= 2


def reading_at(station: str, ts: int, seq: int) -> dict:
    from tests.ingest.conftest import reading

    return {**reading(station, seq), "ts": ts}
