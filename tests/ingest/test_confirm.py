"""Stored confirmations of a written batch: coalesced ranges per station, channel, boot."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from civicair.schema import contract
from ingest import confirm
from ingest.columns import decode
from ingest.lineprotocol import encode


def columns(rows):
    station, channel, boot, seq = zip(*rows, strict=True)
    return (np.array(station, dtype=object), np.array(channel, dtype=object),
            np.array(boot, dtype=np.int64), np.array(seq, dtype=np.int64))


def test_ranges_coalesce_per_station_channel_and_boot_in_any_order():
    rows = [("s-1", "a", 2, 5), ("s-1", "a", 2, 3), ("s-1", "a", 2, 4), ("s-1", "a", 2, 7),
            ("s-1", "b", 2, 4), ("s-1", "a", 1, 9), ("s-2", "a", 1, 0), ("s-1", "a", 2, 4)]  # a repeat
    assert confirm.stored_ranges(*columns(rows)) == {
        "s-1": {("a", 1): [(9, 9)], ("a", 2): [(3, 5), (7, 7)], ("b", 2): [(4, 4)]},
        "s-2": {("a", 1): [(0, 0)]},
    }


def test_an_excluded_reading_splits_its_range_and_keeps_the_others():
    rows = [("s-1", "a", 1, s) for s in range(6)]
    assert confirm.stored_ranges(*columns(rows), exclude=[("s-1", "a", 1, 2)]) == {
        "s-1": {("a", 1): [(0, 1), (3, 5)]}}
    assert confirm.stored_ranges(*columns(rows[:1]), exclude=[("s-1", "a", 1, 0)]) == {}


def test_empty_batch_confirms_nothing():
    empty = np.array([], dtype=object)
    assert confirm.stored_ranges(empty, empty, np.array([], np.int64), np.array([], np.int64)) == {}
    assert confirm.messages({}) == []


@given(st.lists(st.tuples(st.sampled_from(["s-1", "s-2", "x"]), st.sampled_from("ab"),
                          st.integers(0, 3), st.integers(0, 60)), min_size=1, max_size=200))
def test_ranges_cover_exactly_the_batch(rows):
    ranges = confirm.stored_ranges(*columns(rows))
    covered = {(s, ch, b, q) for s, per in ranges.items() for (ch, b), spans in per.items()
               for lo, hi in spans for q in range(lo, hi + 1)}
    assert covered == set(rows)
    for per in ranges.values():  # each list is what the contract accepts: ascending, not touching
        for spans in per.values():
            assert all(b[0] > a[1] + 1 for a, b in zip(spans, spans[1:], strict=False))


def test_one_message_per_station_that_the_contract_decodes():
    rows = [("s-1", "a", 1, 0), ("s-1", "a", 1, 1), ("s-2", "b", 4, 9)]
    msgs = dict(confirm.messages(confirm.stored_ranges(*columns(rows))))
    assert set(msgs) == {"civicair/v1/s-1/stored", "civicair/v1/s-2/stored"}
    assert contract.decode_stored(msgs["civicair/v1/s-1/stored"], "s-1") == {("a", 1): [(0, 1)]}
    assert contract.decode_stored(msgs["civicair/v1/s-2/stored"], "s-2") == {("b", 4): [(9, 9)]}


def test_a_station_with_too_many_ranges_for_one_message_gets_several():
    rows = [("s-1", "a", 1, 2 * i) for i in range(7)] + [("s-1", "b", 1, 2 * i) for i in range(3)]
    msgs = confirm.messages(confirm.stored_ranges(*columns(rows)), max_ranges=3)
    decoded = [contract.decode_stored(p, "s-1") for _, p in msgs]
    assert all(sum(map(len, d.values())) <= 3 for d in decoded)
    union = {(key, span) for d in decoded for key, spans in d.items() for span in spans}
    assert union == {(("a", 1), (2 * i, 2 * i)) for i in range(7)} | {(("b", 1), (2 * i, 2 * i)) for i in range(3)}


def reading(station, seq, **extra):
    return {"v": 1, "station": station, "sensor": "pms5003", "channel": "a", "ts": 1_735_689_600 + 60 * seq,
            "window": 60, "n": 10, "seq": seq, "boot": 2, "synced": True, "pm25_atm": 5.0, **extra}


def test_a_line_influxdb_refused_is_read_back_to_its_reading():
    batch, dead = decode([(contract.readings_topic("s-1"), orjson.dumps([reading("s-1", 7), reading("s-1", 8)]))])
    assert not dead
    lines = encode(batch).splitlines()
    assert confirm.rejected_reading(lines[0]) == ("s-1", "a", 2, 7)
    assert confirm.rejected_reading(b"pm,station=s-1,sensor=pms5003,channel=a qc=1i 1800000000") is None
    assert confirm.rejected_reading(b"station,station=s-1 status=\"online\" 1800000000") is None
    assert confirm.rejected_reading(b"pm,station=s-1,sensor=x,channel=a seq=oops 1") == "s-1"
    keys = (batch.station, batch.channel, batch.ints["boot"], batch.ints["seq"])
    got = confirm.for_batch(keys, [lines[1]])
    assert [(t, contract.decode_stored(p)) for t, p in got] == [("civicair/v1/s-1/stored", {("a", 2): [(7, 7)]})]
    # A refused reading line that cannot be read back: nothing of that station is confirmed.
    assert confirm.for_batch(keys, [b"pm,station=s-1,sensor=x,channel=a seq=oops 1"]) == []


def test_a_batch_prepared_message_by_message_keeps_the_keys_of_every_reading():
    """The batch step's fallback after a bug in a pure core (each message on its own) must
    confirm the same readings as the whole batch would have."""
    from ingest.batch import Held, prepare, prepare_one_by_one
    from ingest.clean import Cleaner

    held = [Held(contract.readings_topic(s), orjson.dumps(reading(s, q)), 1, 1, 1, 1)
            for s, q in (("s-1", 1), ("s-2", 5), ("s-1", 2))]
    now = 1_735_689_600 + 3600
    whole = prepare(held, Cleaner(), now, 86400)
    split = prepare_one_by_one(held, Cleaner(), now, 86400)
    assert whole.keys is not None and split.keys is not None
    assert confirm.for_batch(split.keys) == confirm.for_batch(whole.keys)
    assert dict(confirm.for_batch(split.keys)) == {
        "civicair/v1/s-1/stored": contract.encode_stored("s-1", {("a", 2): [(1, 2)]}),
        "civicair/v1/s-2/stored": contract.encode_stored("s-2", {("a", 2): [(5, 5)]})}
    assert prepare([Held(contract.meta_topic("s-1"), b"{}", 1, 1, 1, 1)], Cleaner(), now, 86400).keys is None


def test_dead_lettered_readings_that_name_themselves_are_confirmed_with_the_stored_ones():
    good = reading("s-1", 3)
    bad = {**reading("s-1", 4), "channel": "c"}  # no channel a reading can have: not confirmed
    clock = {**reading("s-1", 5), "ts": 4_000_000_000}  # far ahead: dead letter, names itself
    dead = confirm.dead_readings([
        (contract.readings_topic("s-1"), orjson.dumps([clock, bad])),
        (contract.readings_topic("s-1"), b"not json"),
        (contract.readings_topic("s-2"), orjson.dumps(reading("s-1", 9))),  # another station's topic
        (contract.meta_topic("s-1"), orjson.dumps({"seq": 1, "boot": 1, "channel": "a", "station": "s-1"})),
        ("elsewhere", orjson.dumps(reading("s-1", 8))),
    ])
    assert dead == [("s-1", "a", 2, 5)]
    batch, _ = decode([(contract.readings_topic("s-1"), orjson.dumps(good))])
    keys = (batch.station, batch.channel, batch.ints["boot"], batch.ints["seq"])
    [(topic, payload)] = confirm.for_batch(keys, dead=dead)
    assert contract.decode_stored(payload, "s-1") == {("a", 2): [(3, 3), (5, 5)]}
    [(topic, payload)] = confirm.for_batch(None, dead=dead)
    assert contract.decode_stored(payload, "s-1") == {("a", 2): [(5, 5)]}
    assert confirm.for_batch(None) == []
