"""Wire contract v1: what ingest accepts, and the reason it gives when it refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicair.schema import contract
from civicair.schema.errors import ContractError

GOOD = {"v": 1, "station": "lab-1", "sensor": "pms5003", "channel": "a", "ts": 1_800_000_000,
        "window": 60, "n": 58, "seq": 3, "boot": 1, "synced": True, "pm25_atm": 11.0, "rh": None}


def test_good_reading_passes():
    assert contract.validate_reading(dict(GOOD), "lab-1")["pm25_atm"] == 11.0


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"station": "other"}, "differs from topic"),
        ({"station": "Bad Id"}, "must match"),
        ({"v": 2}, "unsupported contract version"),
        ({"sensor": "dylos"}, "unknown sensor"),
        ({"channel": "c"}, "channel"),
        ({"ts": 1000}, "before 2020"),
        ({"ts": contract.LATEST_TS + 1}, "after 2100-01-01"),
        ({"ts": 2**63}, "after 2100-01-01"),
        ({"seq": 2**63}, "must fit 64 bits"),
        ({"n": 2**64 - 1}, "must fit 64 bits"),
        ({"ts": "1800000000"}, "must be an integer"),
        ({"n": True}, "must be an integer"),
        ({"synced": 1}, "must be bool"),
        ({"pm25_atm": "12"}, "finite number"),
        ({"pm25_atm": float("inf")}, "finite number"),
        ({"pm99": 1.0}, "unknown field"),
        ({"window": 0}, "window must be > 0"),
        ({"n": -1}, "n, seq and boot must be >= 0"),
        ({"seq": -1}, "n, seq and boot must be >= 0"),
        ({"boot": -1}, "n, seq and boot must be >= 0"),
        ({"synced": None}, "must be bool"),
        ({"pm25_atm": True}, "finite number"),
        ({"pm25_atm": None, "rh": None}, "n > 0 carries no measured value"),
        ({"min": {"pm25_atm": "1"}}, "min.pm25_atm must be a finite number"),
        ({"max": {"pm99": 1.0}}, "unknown field 'pm99' in 'max'"),
        ({"max": [1.0]}, "must be an object"),
    ],
)
def test_contract_breaks_are_refused_with_a_reason(change, reason):
    with pytest.raises(ContractError, match=reason):
        contract.validate_reading({**GOOD, **change}, "lab-1")
    # and the ingest's whole-batch check refuses it too, beside a good reading
    assert not contract.readings_keep_contract([dict(GOOD), {**GOOD, **change}], ["lab-1", "lab-1"])


def test_a_bad_station_id_is_refused_even_on_its_own_topic():
    bad = {**GOOD, "station": "Bad Id"}
    with pytest.raises(ContractError, match="must match"):
        contract.validate_reading(bad, "Bad Id")
    assert not contract.readings_keep_contract([bad], ["Bad Id"])


def test_missing_field_is_named():
    bad = dict(GOOD)
    del bad["seq"]
    with pytest.raises(ContractError, match="missing field 'seq'"):
        contract.validate_reading(bad)


@pytest.mark.parametrize("topic", ["civicair/v1/lab-1/readings/x", "other/v1/lab-1/readings",
                                   "civicair/v1/LAB/readings", "civicair/v1//readings"])
def test_bad_topics_are_refused(topic):
    with pytest.raises(ContractError):
        contract.station_from_topic(topic)


def test_topics():
    assert contract.readings_topic("lab-1") == "civicair/v1/lab-1/readings"
    assert contract.station_from_topic("civicair/v1/lab-1/status") == "lab-1"
    with pytest.raises(ContractError):
        contract.readings_topic("+")


def test_timestamps_up_to_2100_are_accepted():
    assert contract.validate_reading({**GOOD, "ts": contract.LATEST_TS}, "lab-1")["ts"] == 4102444800
    assert contract.readings_keep_contract([{**GOOD, "ts": contract.LATEST_TS}], ["lab-1"])
    assert not contract.readings_keep_contract([{**GOOD, "ts": contract.LATEST_TS + 1}], ["lab-1"])


def test_a_receiver_may_bound_ts_tighter_and_both_checks_agree():
    """The ingest passes its clock plus a day: a station with a clock years ahead would
    otherwise make InfluxDB open a shard per week it claims."""
    limit = GOOD["ts"] + 86400
    assert contract.validate_reading({**GOOD, "ts": limit}, "lab-1", latest_ts=limit)
    assert contract.readings_keep_contract([{**GOOD, "ts": limit}], ["lab-1"], latest_ts=limit)
    with pytest.raises(ContractError, match="ahead of the receiver's clock"):
        contract.validate_reading({**GOOD, "ts": limit + 1}, "lab-1", latest_ts=limit)
    assert not contract.readings_keep_contract([{**GOOD, "ts": limit + 1}], ["lab-1"], latest_ts=limit)


# -- the whole-batch check (readings_keep_contract) against the reading-by-reading one ---

FULL = {**GOOD, "pm25_cf1": 12.0, "rh": 40.5, "temp": -3.25,
        "min": {"pm25_atm": 9.0, "rh": 38}, "max": {"pm25_atm": 14.5, "rh": 44}}
FIELDS = [*contract.HEADER_FIELDS, *contract.MEASURED_FIELDS, "min", "max", "extra"]
edges = st.sampled_from([0, -1, 1, 60, 2**63 - 1, 2**63, 2**64 - 1, contract.EARLIEST_TS - 1,
                         contract.EARLIEST_TS, contract.LATEST_TS, contract.LATEST_TS + 1])
# JSON values, as orjson gives them. Floats stay below 1e300 so that no sum of one
# reading's values overflows (the one kind of valid reading the batch check leaves to
# validate_reading): the two checks must then agree exactly.
scalars = (st.none() | st.booleans() | edges | st.integers(-(2**63), 2**64 - 1)
           | st.floats(min_value=-1e300, max_value=1e300) | st.text(max_size=6)
           | st.sampled_from([*contract.SENSORS, *contract.CHANNELS, "lab-1", "lab-2", "Bad Id"]))
stats = st.dictionaries(st.sampled_from(["pm25_atm", "rh", "pm99"]), scalars, max_size=3)
values = scalars | stats | st.lists(scalars, max_size=2)


@st.composite
def mutated(draw) -> Any:
    """Mostly a valid reading; else one with a rule or two broken (or not), or not an object."""
    if not draw(st.integers(0, 20)):
        return draw(values)
    r = dict(draw(st.sampled_from([GOOD, FULL, {**GOOD, "n": 0, "pm25_atm": None, "rh": None}])))
    if draw(st.integers(0, 3)):  # most readings of a batch are left valid
        return r
    for _ in range(draw(st.integers(1, 2))):
        change = draw(st.sampled_from(["set", "header", "value", "edge", "drop", "unknown", "no values", "stats"]))
        if change == "set":
            r[draw(st.sampled_from(FIELDS))] = draw(values)
        elif change == "header":
            r[draw(st.sampled_from(list(contract.HEADER_FIELDS)))] = draw(scalars)
        elif change == "value":
            r[draw(st.sampled_from(list(contract.MEASURED_FIELDS)))] = draw(scalars)
        elif change == "edge":
            r[draw(st.sampled_from(["ts", "window", "n", "seq", "boot", "pm25_atm"]))] = draw(edges)
        elif change == "drop":
            r.pop(draw(st.sampled_from(FIELDS)), None)
        elif change == "unknown":
            r[draw(st.sampled_from(["extra", "pm99", "Min"]))] = draw(values)
        elif change == "no values":
            r = {k: v for k, v in r.items() if k not in contract.MEASURED_FIELDS}
        else:
            r[draw(st.sampled_from(contract.STAT_KEYS))] = draw(stats)
    return r


def _each_valid(readings: list, stations: list[str]) -> bool:
    try:
        for r, s in zip(readings, stations, strict=True):
            contract.validate_reading(r, s)
    except ContractError:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(readings=st.lists(mutated(), max_size=6), data=st.data())
def test_batch_check_agrees_with_validate_reading(readings, data):
    readings = orjson.loads(orjson.dumps(readings))  # as the ingest gets them
    # Mostly the station the reading names (valid or not), as a topic that matches it.
    stations = [r["station"] if isinstance(r, dict) and isinstance(r.get("station"), str)
                and data.draw(st.integers(0, 5)) else data.draw(st.sampled_from(["lab-1", "lab-2", "Bad Id"]))
                for r in readings]
    assert contract.readings_keep_contract(readings, stations) == _each_valid(readings, stations)


@pytest.mark.parametrize(
    "reading",
    [
        pytest.param({**GOOD, "pm25_atm": float("nan")}, id="NaN"),
        pytest.param({**GOOD, "pm25_atm": float("-inf")}, id="-inf"),
        pytest.param({**GOOD, "min": {"rh": float("inf")}}, id="inf extreme"),
        pytest.param({**GOOD, "min": None}, id="null extremes"),
        pytest.param({**GOOD, "min": {"rh": None}}, id="null extreme"),
        pytest.param({**GOOD, "pm25_atm": None, "n": 3}, id="n > 0 without values"),
        pytest.param({k: v for k, v in GOOD.items() if k not in ("pm25_atm", "rh")}, id="n > 0, no value fields"),
    ],
)
def test_batch_check_refuses_what_json_cannot_say_too(reading):
    # Python callers can pass NaN and infinities, which JSON cannot carry.
    assert not contract.readings_keep_contract([dict(GOOD), reading], ["lab-1", "lab-1"])
    with pytest.raises(ContractError):
        contract.validate_reading(reading, "lab-1")


def test_batch_check_leaves_valid_but_unusual_readings_to_validate_reading():
    class Count(int):
        pass

    unusual = [{**GOOD, "n": Count(3)}, {**GOOD, "pm25_atm": 1e308, "pm25_cf1": 1e308}]
    for r in unusual:
        assert contract.validate_reading(r, "lab-1") is r
        assert not contract.readings_keep_contract([r], ["lab-1"])
