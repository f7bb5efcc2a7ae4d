"""Scenario 5: a stream mixing valid readings with garbage: every valid reading is stored,
every bad message is in the dead letter (file and topic) with its reason, and acknowledged."""

from __future__ import annotations

import hashlib

import orjson

from tests.conftest import wait_until
from tests.ingest.conftest import assert_complete_once, messages_for, reading

STATIONS = ["mix-1", "mix-2", "mix-3"]
PER_STATION = 200

#: (topic, payload, words of the reason, reason class)
GARBAGE = [
    ("civicair/v1/mix-1/readings", b"{not json", "not valid JSON", "json"),
    ("civicair/v1/mix-1/readings", b"\x00\xff\xfe garbage \x80", "not valid JSON", "json"),
    ("civicair/v1/mix-1/readings", b"", "not valid JSON", "json"),
    ("civicair/v1/mix-2/readings", b"[]", "empty array", "contract"),
    ("civicair/v1/mix-2/readings", b"42", "must be a JSON object", "contract"),
    ("civicair/v1/mix-2/readings", orjson.dumps(reading("mix-3", 10_000)), "differs from topic",
     "station_mismatch"),
    ("civicair/v1/Bad_Station/readings", orjson.dumps(reading("mix-1", 10_001)), "station id", "topic"),
    ("civicair/v1/mix-3/readings", orjson.dumps({**reading("mix-3", 10_002), "colour": "red"}),
     "unknown field 'colour'", "contract"),
    ("civicair/v1/mix-3/readings", orjson.dumps({**reading("mix-3", 10_003), "ts": 86400}),
     "before 2020", "contract"),
    ("civicair/v1/mix-3/readings", orjson.dumps([reading("mix-3", 10_004), {"v": 1}]),
     "missing field", "contract"),
    ("civicair/v1/mix-1/readings", orjson.dumps({**reading("mix-1", 10_005), "v": 2}),
     "unsupported contract version", "contract"),
    ("civicair/v1/mix-1/meta", b"{broken", "meta is not valid JSON", "json"),
    ("civicair/v1/mix-1/status", b"maybe", "status must be", "meta"),
]


def test_valid_readings_are_stored_and_garbage_goes_to_the_dead_letter_with_its_reason(
        influx, spawn_ingest, publisher, deadletter_topic, tmp_path):
    seen = deadletter_topic
    ingest = spawn_ingest()

    valid = messages_for(STATIONS, PER_STATION)
    # Garbage spread through the stream, not in a batch of its own.
    step = len(valid) // len(GARBAGE)
    stream = list(valid)
    for i, (topic, payload, *_rest) in enumerate(GARBAGE):
        stream.insert(i * (step + 1), (topic, payload))
    publisher.publish_all(stream)
    publisher.settle()

    wait_until(lambda: ingest.metric("civicair_ingest_acked_messages_total") >= len(stream),
               timeout=60, message="every message acknowledged")
    assert_complete_once(influx, STATIONS, PER_STATION)

    lines = (tmp_path / "dead.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == len(GARBAGE)
    for topic, payload, words, cls in GARBAGE:
        (record,) = [r for r in records
                     if r["topic"] == topic and r["payload"] == payload.decode("utf-8", "backslashreplace")]
        assert words in record["reason"], record
        assert record["class"] == cls, record
    wait_until(lambda: len(seen) == len(GARBAGE), timeout=10, message="dead letters on the topic")
    # The topic copy: the same record, with the payload's size and hash (none is cut here).
    sent = {(topic, payload.decode("utf-8", "backslashreplace")): payload for topic, payload, *_ in GARBAGE}
    for r in seen:
        payload = sent[(r["topic"], r["payload"])]
        assert r.pop("payload_truncated") is False and r.pop("payload_bytes") == len(payload)
        assert r.pop("payload_sha256") == hashlib.sha256(payload).hexdigest()
    assert sorted(orjson.dumps(r) for r in seen) == sorted(orjson.dumps(r) for r in records)

    metrics = ingest.metrics()
    for cls in {g[3] for g in GARBAGE}:
        expected = sum(1 for g in GARBAGE if g[3] == cls)
        assert metrics[f'civicair_ingest_deadlettered_total{{reason="{cls}"}}'] == expected, cls
    assert metrics["civicair_ingest_written_readings_total"] == len(valid)
    assert metrics["civicair_ingest_received_messages_total"] == len(stream)
    assert ingest.alive() and ingest.health()[0] == 200
