"""Decoding payloads to columns, and the dead letter for everything else."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civicair.schema import contract
from civicair.schema.errors import ContractError
from ingest.columns import INTEGERS, MEASURED, Batch, DeadLetter, decode

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


def test_a_reading_stamped_after_2100_goes_to_the_dead_letter():
    batch, dead = decode([(TOPIC, orjson.dumps({**R, "ts": 4_102_444_801})), (TOPIC, orjson.dumps(R))])
    assert len(batch) == 1
    assert [d.reason for d in dead] == ["ts 4102444801 is after 2100-01-01 (InfluxDB cannot store times past 2262)"]


def test_bad_messages_in_a_large_batch_are_found_and_reported_in_order():
    good = [(TOPIC, orjson.dumps([{**R, "seq": 100 * i + k} for k in range(3)])) for i in range(400)]
    bad = {7: (TOPIC, orjson.dumps([R, {**R, "pm25_atm": "x"}])), 8: (TOPIC, b"{"),
           200: ("civicair/v1/lab-2/readings", orjson.dumps(R)), 399: (TOPIC, orjson.dumps({**R, "v": 2}))}
    messages = [bad.get(i, m) for i, m in enumerate(good)]
    batch, dead = decode(messages)
    assert len(batch) == 3 * (400 - len(bad))
    assert [d.payload for d in dead] == [m[1] for _, m in sorted(bad.items())]
    assert ["finite number" in dead[0].reason, "not valid JSON" in dead[1].reason,
            "differs from topic" in dead[2].reason, "unsupported contract version" in dead[3].reason] == [True] * 4
    seqs = batch.ints["seq"].reshape(-1, 3)[:, 0].tolist()
    assert seqs == [100 * i for i in range(400) if i not in bad]  # the good ones, in order


# -- against a plain reference: every message, every reading, one at a time -------------

def reference_decode(messages):
    """The ingest's decoding written the obvious way (as it was before it was made fast)."""
    readings, dead = [], []
    for topic, payload in messages:
        try:
            station = contract.station_from_topic(topic)
            doc = orjson.loads(payload)
        except ContractError as exc:
            dead.append(DeadLetter(topic, payload, str(exc)))
            continue
        except orjson.JSONDecodeError as exc:
            dead.append(DeadLetter(topic, payload, f"not valid JSON: {exc}"))
            continue
        items = doc if isinstance(doc, list) else [doc]
        if not items:
            dead.append(DeadLetter(topic, payload, "empty array"))
            continue
        try:
            good = [contract.validate_reading(item, station) for item in items]
        except ContractError as exc:
            dead.append(DeadLetter(topic, payload, str(exc)))
            continue
        readings.extend(good)
    return reference_columns(readings), dead


def reference_columns(readings):
    n = len(readings)
    values = {}
    for name in MEASURED:
        col = np.array([math.nan if r.get(name) is None else float(r[name]) for r in readings], dtype=np.float64)
        if n and not np.isnan(col).all():
            values[name] = col
    for stat in contract.STAT_KEYS:
        for name in sorted({k for r in readings for k in r.get(stat, {})}):
            values[f"{name}_{stat}"] = np.array([float(r.get(stat, {}).get(name, math.nan)) for r in readings])
    return Batch(station=np.array([r["station"] for r in readings], dtype=object),
                 sensor=np.array([r["sensor"] for r in readings], dtype=object),
                 channel=np.array([r["channel"] for r in readings], dtype=object),
                 ints={k: np.array([r[k] for r in readings], dtype=np.int64) for k in INTEGERS},
                 synced=np.array([r["synced"] for r in readings], dtype=bool), values=values)


def assert_same_batch(got: Batch, want: Batch) -> None:
    assert len(got) == len(want)
    for name in ("station", "sensor", "channel"):
        assert getattr(got, name).dtype == object and getattr(got, name).tolist() == getattr(want, name).tolist()
    assert list(got.ints) == list(want.ints)
    for name, col in want.ints.items():
        assert got.ints[name].dtype == np.int64 and got.ints[name].tolist() == col.tolist()
    assert got.synced.dtype == bool and got.synced.tolist() == want.synced.tolist()
    assert list(got.values) == list(want.values)  # same columns, same order
    for name, col in want.values.items():
        assert got.values[name].dtype == np.float64
        np.testing.assert_array_equal(got.values[name], col)  # NaN where NaN


STATIONS = ["lab-1", "lab-2"]
numbers = (st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**64 - 1) | st.none())
anything = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
            | st.text(max_size=5) | st.sampled_from([*contract.SENSORS, "b", "lab-2", contract.LATEST_TS + 1])
            | st.lists(st.integers(0, 9), max_size=2) | st.dictionaries(st.sampled_from(["rh", "pm25_atm", "x"]),
                                                                   numbers, max_size=2))


@st.composite
def readings(draw, station: str) -> dict:
    r = {"v": 1, "station": station, "sensor": draw(st.sampled_from(contract.SENSORS)),
         "channel": draw(st.sampled_from(contract.CHANNELS)),
         "ts": draw(st.integers(contract.EARLIEST_TS, contract.LATEST_TS)), "window": draw(st.integers(1, 3600)),
         "n": draw(st.integers(0, 100)), "seq": draw(st.integers(0, 2**63 - 1)), "boot": draw(st.integers(0, 9)),
         "synced": draw(st.booleans())}
    for name in draw(st.lists(st.sampled_from(MEASURED), min_size=1, max_size=8, unique=True)):
        r[name] = draw(numbers)
    for stat in draw(st.lists(st.sampled_from(contract.STAT_KEYS), unique=True)):
        r[stat] = draw(st.dictionaries(st.sampled_from(["pm25_atm", "rh", "temp"]),
                                       st.floats(allow_nan=False, allow_infinity=False), max_size=3))
    if not draw(st.integers(0, 6)):  # now and then, break something (or not)
        key = draw(st.sampled_from([*contract.HEADER_FIELDS, *MEASURED[:4], "min", "extra"]))
        if draw(st.booleans()):
            r.pop(key, None)
        else:
            r[key] = draw(anything)
    return r


@st.composite
def messages(draw) -> tuple[str, bytes]:
    station = draw(st.sampled_from(STATIONS))
    topic = contract.readings_topic(station)
    kind = draw(st.integers(0, 20))
    if kind == 0:
        return topic, draw(st.sampled_from([b"{", b"[]", b"42", b'"x"', b"[1]", b"[{}, 2]", b"null"]))
    if kind == 1:
        return draw(st.sampled_from(["civicair/v1/Bad/readings", "x/y", TOPIC])), orjson.dumps(R)
    if kind <= 12:
        return topic, orjson.dumps(draw(readings(station)))
    return topic, orjson.dumps(draw(st.lists(readings(station), min_size=1, max_size=4)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), max_size=30))
def test_decode_matches_the_reference(batch):
    got, got_dead = decode(batch)
    want, want_dead = reference_decode(batch)
    assert got_dead == want_dead  # same messages, same reasons, same order
    assert_same_batch(got, want)
