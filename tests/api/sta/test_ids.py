"""Ids users can type: Things numbered 1, 2, … (assign), the rest derived from them, all\nwithin int64 and reversible."""

from __future__ import annotations

import pytest

from api.sta import ids


def test_thing_1_has_the_small_ids():
    assert [ids.datastream_id(1, "a", p) for p in range(6)] == [1, 2, 3, 4, 5, 6]
    assert ids.datastream_id(1, "b", 0) == 9 and ids.datastream_id(2, "a", 0) == 17
    assert ids.location_id(1, 0) == 1 and ids.location_id(2, 0) == 2
    assert ids.location_id(1, 1) == 2**27 + 1 and ids.split_location(2**27 + 1) == (1, 1)


def test_every_datastream_id_round_trips_and_the_gaps_are_refused():
    for thing in (1, 2, 3, 1000, ids.MAX_THING_ID):
        for channel in ids.CHANNELS:
            for prop in range(ids.PROPERTIES):
                ds = ids.datastream_id(thing, channel, prop)
                assert ids.split_datastream(ds) == (thing, channel, prop)
                assert 0 < ds < 2**31
    # property slots 7 and 8 of each channel, 0, negatives and beyond the last Thing
    for bad in (0, -1, 7, 8, 15, 16, 23, 24, 31, 32, ids.MAX_THING_ID * 16 + 1, ids.MAX_ID):
        with pytest.raises(ValueError):
            ids.split_datastream(bad)


def test_observation_and_location_ids_fit_in_int64():
    ds = ids.datastream_id(ids.MAX_THING_ID, "b", 5)
    oid = ids.observation_id(ds, 2**32 - 1)
    assert oid <= ids.MAX_ID and ids.split_observation(oid) == (ds, 2**32 - 1)
    assert ids.location_id(ids.MAX_THING_ID, 255) <= ids.MAX_ID
    assert ids.split_location(ids.location_id(ids.MAX_THING_ID, 255)) == (ids.MAX_THING_ID, 255)


def test_assign_numbers_new_stations_after_the_largest_in_sorted_order():
    assert ids.assign({}, ["lab-2", "lab-1", "lab-3"]) == {"lab-1": 1, "lab-2": 2, "lab-3": 3}
    # existing ids kept, whatever their order; new ones after the largest, in sorted order
    existing = {"zz-1": 1, "aa-1": 2}
    assert ids.assign(existing, ["zz-1", "aa-1", "mm-2", "bb-0"]) == {"zz-1": 1, "aa-1": 2, "bb-0": 3, "mm-2": 4}
    # gaps are not refilled: a later station never takes an earlier one's number
    assert ids.assign({"a": 5}, ["b"]) == {"a": 5, "b": 6}
    # stations in the table but no longer seen keep their id (and it stays taken)
    assert ids.assign({"gone": 7}, []) == {"gone": 7}


def test_assign_is_deterministic_whatever_the_input_order():
    stations = [f"s-{i}" for i in range(200)]
    first = ids.assign({"s-150": 1}, stations)
    assert first == ids.assign({"s-150": 1}, reversed(stations)) == ids.assign({"s-150": 1}, set(stations))
    assert sorted(first.values()) == list(range(1, 201))


def test_assign_heals_a_broken_table():
    # two stations on one id (two writers raced): the first in sorted order keeps it
    assert ids.assign({"b": 1, "a": 1}, ["a", "b"]) == {"a": 1, "b": 2}
    # ids outside 1 … MAX_THING_ID are read as missing
    assert ids.assign({"a": 0, "b": -3, "c": 2**27, "d": 4}, ["a", "b", "c", "d"]) == \
        {"d": 4, "a": 5, "b": 6, "c": 7}
    # a station id the contract does not allow gets no Thing id
    assert ids.assign({}, ["ok-1", "Not Valid", ""]) == {"ok-1": 1}


def test_assign_refuses_to_run_out_of_thing_ids():
    with pytest.raises(ValueError, match="no Thing id left"):
        ids.assign({"last": ids.MAX_THING_ID}, ["next"])


def test_humidity_datastreams_follow_the_data_not_only_the_model():
    """A plain PMS5003 with a climate companion (rh and temp in its readings) gets
    Relative humidity and Temperature Datastreams; one without gets none."""
    from api.settings import ApiSettings
    from api.sta import model

    def result(rows):
        return {"series": [{"name": "pm", "tags": tags, "columns": cols, "values": [values]}
                           for tags, cols, values in rows]}

    seen = [({"station": s, "sensor": "pms5003", "channel": "a"}, ["time", "window"], [100, 60])
            for s in ("with-bme", "plain")]
    first = [({"station": s, "channel": "a"}, ["time", "n"], [40, 20]) for s in ("with-bme", "plain")]
    climate = [({"station": "with-bme", "channel": "a"}, ["time", "value"], [100, 55.0])]
    stations = model.parse([result([]), result([]), result(seen), result(first), result(climate),
                            result(climate)])
    cat = model.build(stations, ApiSettings())
    names = {s: sorted(d.props["name"] for d in cat.datastreams_of(s)) for s in ("with-bme", "plain")}
    assert names["plain"] == ["PM1", "PM10", "PM2.5", "PM2.5 (raw)"]
    assert names["with-bme"] == sorted(names["plain"] + ["Relative humidity", "Temperature"])
    sensor = cat.get("Sensor", model.sensor_id("pms5003"))
    assert sensor is not None and sensor.props["properties"]["family"] == "plantower"
