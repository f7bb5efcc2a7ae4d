"""The pure batch step (ingest/batch.py): held messages in, one prepared write out.

No broker and no database: messages are made here, and what comes out is compared with
what the pure cores give for the same readings.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from civicair.schema import contract
from civicair.schema.qc import FUTURE_TOLERANCE_S, Flag
from ingest.batch import (
    FLAG_BITS,
    Held,
    Prepared,
    estimate_readings,
    flag_counts,
    prepare,
    prepare_one_by_one,
)
from ingest.clean import Cleaner
from ingest.columns import decode
from ingest.lineprotocol import encode
from tests.ingest.conftest import T0, reading

NOW = T0 + 86400
MAX_FUTURE_S = 86400
META = {"name": "Lab roof", "lat": 52, "lon": 4.35, "sensors": {"a": "pms5003"}, "window": 60,
        "duty_period": None, "software": "civicair 0.1.0"}


def held(topic: str, payload: bytes | dict | list, mid: int = 1) -> Held:
    if not isinstance(payload, bytes):
        payload = orjson.dumps(payload)
    return Held(topic, payload, mid, 1, 1, estimate_readings(payload))


def readings_msg(station: str, seq: int, mid: int = 1, **fields: object) -> Held:
    return held(contract.readings_topic(station), {**reading(station, seq), **fields}, mid)


def run(messages: list[Held], cleaner: Cleaner | None = None) -> Prepared:
    return prepare(messages, cleaner or Cleaner(), NOW, MAX_FUTURE_S)


def test_held_is_a_named_record():
    h = Held("civicair/v1/lab-1/readings", b"{}", 7, 1, 3, 1)
    assert (h.topic, h.payload, h.mid, h.qos, h.generation, h.readings) == tuple(h)
    with pytest.raises(AttributeError):
        h.mid = 8  # type: ignore[misc]


@pytest.mark.parametrize("payload, estimate", [
    pytest.param(orjson.dumps(reading("lab-1", 0)), 1, id="one object"),
    pytest.param(orjson.dumps([reading("lab-1", i) for i in range(5)]), 5, id="an array of five"),
    pytest.param(b"[]", 1, id="an empty array counts one"),
    pytest.param(b"", 1, id="nothing counts one"),
])
def test_estimate_readings_counts_the_readings_of_an_array(payload, estimate):
    assert estimate_readings(payload) == estimate


def test_readings_are_the_lines_the_pure_cores_give():
    messages = [readings_msg("lab-1", i, mid=i) for i in range(3)] + [readings_msg("lab-2", 0, mid=9)]
    p = run(messages)

    columns, dead = decode([(m.topic, m.payload) for m in messages], latest_ts=NOW + MAX_FUTURE_S)
    assert not dead
    assert p.lines == encode(Cleaner().clean(columns, now=NOW))
    assert (p.readings, p.station_points, p.dead) == (4, 0, [])
    assert p.messages == messages  # every message, in the order received: they are acknowledged so
    assert p.newest_ts == T0 + 2 * 60


def test_meta_and_status_become_station_points_after_the_readings():
    messages = [held(contract.meta_topic("lab-1"), META), readings_msg("lab-1", 0),
                held(contract.status_topic("lab-1"), b"online")]
    p = run(messages)
    lines = p.lines.splitlines()
    assert (p.readings, p.station_points, len(lines)) == (1, 2, 3)
    assert lines[0].startswith(b"pm,station=lab-1,")
    assert lines[1].startswith(b'station,station=lab-1 name="Lab roof",') and lines[1].endswith(f" {NOW}".encode())
    assert lines[2] == f'station,station=lab-1 status="online" {NOW}'.encode()


def test_an_empty_retained_message_is_neither_written_nor_a_dead_letter():
    p = run([held(contract.meta_topic("lab-1"), b""), held(contract.status_topic("lab-1"), b"")])
    assert (p.lines, p.readings, p.station_points, p.dead) == (b"", 0, 0, [])


@pytest.mark.parametrize("topic, payload, words", [
    pytest.param("civicair/v1/lab-1/colour", b"red", "not a civicair/v1 readings, meta or status topic",
                 id="unknown topic kind"),
    pytest.param("civicair/v1/lab-1/status", b"on fire", "online", id="bad status"),
    pytest.param("civicair/v1/lab-1/meta", b"{broken", "not valid JSON", id="bad meta"),
    pytest.param("civicair/v1/lab-1/readings", b"{broken", "not valid JSON", id="bad readings"),
    pytest.param("civicair/v1/lab-1/readings", orjson.dumps({**reading("lab-1", 0), "colour": "red"}),
                 "unknown field 'colour'", id="readings off the contract"),
])
def test_what_breaks_the_contract_is_a_dead_letter_with_its_reason_and_the_rest_is_kept(topic, payload, words):
    p = run([readings_msg("lab-1", 1), held(topic, payload), readings_msg("lab-2", 1)])
    (dead,) = p.dead
    assert (dead.topic, dead.payload) == (topic, payload)
    assert words in dead.reason
    assert p.readings == 2 and len(p.lines.splitlines()) == 2
    assert len(p.messages) == 3  # the dead letter is acknowledged with its batch


def test_how_far_ahead_a_reading_may_be():
    ahead = NOW - T0  # seq of a reading stamped ``now``
    hour = readings_msg("lab-1", ahead // 60 + 60)  # an hour ahead: stored, flagged, not the newest live
    live = readings_msg("lab-2", ahead // 60)
    days = readings_msg("lab-3", ahead // 60 + 2 * 1440)  # two days ahead: a dead letter
    p = run([hour, live, days])
    assert p.readings == 2 and [d.topic for d in p.dead] == [days.topic]
    assert p.newest_ts == NOW <= NOW + FUTURE_TOLERANCE_S
    assert p.flagged["future_timestamp"] == 1


def test_flag_counts_count_each_bit_of_the_batch():
    p = run([readings_msg("lab-1", 0, synced=False), readings_msg("lab-2", 0, rh=90.0),
             readings_msg("lab-3", 0, synced=False, rh=95.0)])
    assert p.flagged == {"clock_unsynced": 2, "high_humidity": 2}
    assert set(p.flagged) <= set(FLAG_BITS) == {f.name.lower() for f in Flag if f.name}
    assert flag_counts(None) == {} and flag_counts(np.zeros(0, dtype=np.int64)) == {}


def test_an_ab_pair_split_across_batches_amends_and_counts_the_first_half():
    cleaner = Cleaner()
    a = held(contract.readings_topic("lab-1"), {**reading("lab-1", 0), "pm25_cf1": 5.0})
    b = held(contract.readings_topic("lab-1"), {**reading("lab-1", 0), "channel": "b", "pm25_cf1": 40.0})
    first = run([a], cleaner)
    assert "ab_disagreement" not in first.flagged
    second = run([b], cleaner)
    assert second.flagged["ab_disagreement"] == 2  # its own reading and the amended first half
    amendment = second.lines.splitlines()[-1]
    assert amendment.startswith(b"pm,station=lab-1,sensor=pms5003,channel=a qc=")
    assert second.readings == 1


def test_the_cleaner_given_is_the_only_state():
    messages = [readings_msg("lab-1", i) for i in range(12)]
    assert run(messages).lines == run(messages).lines
    cleaner = Cleaner()
    run(messages[:6], cleaner)
    assert run(messages[6:], cleaner).lines == b"".join(run(messages).lines.splitlines(keepends=True)[6:])


class _FailsOn(Cleaner):
    """A cleaner with a bug that one station's readings trigger (the fault the fallback is for)."""

    def clean(self, batch, now=None):
        if "lab-bug" in batch.station.tolist():
            raise ZeroDivisionError("division by zero")
        return super().clean(batch, now)


def test_a_bug_in_a_core_dead_letters_the_message_that_triggers_it_and_keeps_the_rest():
    messages = [readings_msg("lab-1", 0), readings_msg("lab-bug", 0),
                held(contract.status_topic("lab-1"), b"online"), readings_msg("lab-2", 0)]
    with pytest.raises(ZeroDivisionError):
        prepare(messages, _FailsOn(), NOW, MAX_FUTURE_S)
    p = prepare_one_by_one(messages, _FailsOn(), NOW, MAX_FUTURE_S)
    (dead,) = p.dead
    assert dead.topic == contract.readings_topic("lab-bug")
    assert dead.reason == "internal error: ZeroDivisionError: division by zero"
    assert (p.readings, p.station_points, len(p.lines.splitlines())) == (2, 1, 3)
    assert p.messages == messages and p.newest_ts == T0
