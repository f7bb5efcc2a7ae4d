"""Decoding payloads to columns, and the dead letter for everything else."""

from __future__ import annotations

import math

import orjson
import pytest

from ingest.columns import decode

TOPIC = "civicair/v1/lab-1/readings"
R = {"v": 1, "station": "lab-1", "sensor": "pms5003", "channel": "a", "ts": 1_800_000_060,
     "window": 60, "n": 58, "seq": 3, "boot": 1, "synced": True, "pm25_cf1": 12.5, "pm25_atm": 11.0}


def test_objects_and_arrays_become_one_row_per_reading():
    batch, dead = decode([(TOPIC, orjson.dumps(R)),
                          (TOPIC, orjson.dumps([{**R, "seq": 4, "rh": 40.0}, {**R, "seq": 5}]))])
    assert dead == []
    assert len(batch) == 3
    assert batch.ints["seq"].tolist() == [3, 4, 5]
    assert batch.values["pm25_cf1"].tolist() == [12.5, 12.5, 12.5]
    rh = batch.values["rh"]
    assert math.isnan(rh[0]) and rh[1] == 40.0 and math.isnan(rh[2])
    assert "temp" not in batch.values  # a column nobody sent is not carried


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        pytest.param(TOPIC, b"{not json", "not valid JSON", id="not json"),
        pytest.param(TOPIC, b"[]", "empty array", id="empty array"),
        pytest.param(TOPIC, b"42", "must be a JSON object", id="number"),
        pytest.param("civicair/v1/other/readings", orjson.dumps(R), "differs from topic",
                     id="foreign station"),
        pytest.param("civicair/v1/Bad/readings", orjson.dumps(R), "station id", id="bad topic"),
        pytest.param(TOPIC, orjson.dumps([R, {**R, "n": "x"}]), "must be an integer", id="one bad in array"),
        pytest.param(TOPIC, "{\"v\": 1, \"station\": \"l\u00e9\"}".encode(), "missing field", id="unicode"),
    ],
)
def test_bad_payloads_go_to_the_dead_letter_with_a_reason(topic, payload, reason):
    batch, dead = decode([(topic, payload), (TOPIC, orjson.dumps(R))])
    assert len(batch) == 1  # the good message beside it is kept
    (d,) = dead
    assert reason in d.reason and d.payload == payload and d.topic == topic
