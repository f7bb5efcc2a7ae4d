"""Line protocol: exact text, escaping, NaN left out; the same bytes as a plain reference
encoder for any batch; and a round trip through InfluxDB."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.columns import INTEGERS, Batch, to_columns
from ingest.lineprotocol import encode, escape_string_field, escape_tag

R = {"v": 1, "station": "lab-1", "sensor": "pms5003", "channel": "a", "ts": 1_800_000_060,
     "window": 60, "n": 58, "seq": 3, "boot": 1, "synced": True, "pm25_cf1": 12.5, "pm25_atm": 11.0}


def test_exact_line():
    batch = to_columns([R])
    batch.derived["qc"] = np.array([5], dtype=np.int64)
    batch.derived["pm25_method"] = np.array(['say "hi"'], dtype=object)
    assert encode(batch) == (
        b'pm,station=lab-1,sensor=pms5003,channel=a pm25_cf1=12.5,pm25_atm=11.0,qc=5i,'
        b'pm25_method="say \\"hi\\"",n=58i,seq=3i,boot=1i,window=60i,synced=true 1800000060\n'
    )


def test_tag_escaping():
    got = escape_tag(np.array(["a b", "a,b", "a=b", "a\\b"], dtype=object)).tolist()
    assert got == ["a\\ b", "a\\,b", "a\\=b", "a\\\\b"]


def test_a_value_that_is_only_a_special_character_is_escaped_whole():
    # np.strings.replace (numpy 2.4) turned "," into "\\" in a one-character array.
    assert escape_tag(np.array([",", " ", "=", "\\"], dtype=object)).tolist() == ["\\,", "\\ ", "\\=", "\\\\"]
    assert escape_string_field(np.array(['"', "\\"], dtype=object)).tolist() == ['\\"', "\\\\"]


def test_missing_values_are_left_out():
    batch = to_columns([R, {**R, "pm25_cf1": None, "seq": 4}])
    lines = encode(batch).decode().splitlines()
    assert "pm25_cf1" in lines[0] and "pm25_cf1" not in lines[1]


def test_empty_batch_is_no_bytes():
    assert encode(to_columns([])) == b""


# -- against a plain reference encoder -----------------------------------------------------

def _tag(value) -> str:
    text = str(value)
    for ch in ("\\", ",", " ", "="):
        text = text.replace(ch, "\\" + ch)
    return text


def reference_encode(batch: Batch, measurement: str = "pm") -> bytes:
    """One reading at a time, the obvious way."""
    lines = []
    for i in range(len(batch)):
        tags = f"station={_tag(batch.station[i])},sensor={_tag(batch.sensor[i])},channel={_tag(batch.channel[i])}"
        fields = []
        for name, col in [*batch.values.items(), *batch.derived.items()]:
            value = col[i]
            if col.dtype.kind == "f":
                if not math.isnan(value):
                    fields.append(f"{name}={float(value)!r}")  # repr: reads back to the same float
            elif col.dtype.kind in "iu":
                fields.append(f"{name}={int(value)}i")
            else:
                text = str(value).replace("\\", "\\\\").replace('"', '\\"')
                fields.append(f'{name}="{text}"')
        fields += [f"{name}={int(batch.ints[name][i])}i" for name in ("n", "seq", "boot", "window")]
        fields.append(f"synced={'true' if batch.synced[i] else 'false'}")
        lines.append(f"{measurement},{tags} {','.join(fields)} {int(batch.ints['ts'][i])}\n")
    return "".join(lines).encode()


# Tag and string values full of what must be escaped (no NUL: numpy strings cannot end in one).
texts = st.text(st.sampled_from(list(' ,=\\"\'a1é-')) | st.characters(blacklist_categories=("Cs",),
                                                                     blacklist_characters="\0"), max_size=6)
# Gaps, both signs, the large and the tiny, integers as floats, repr's switch to exponents.
floats = (st.floats(allow_infinity=False, width=64)
          | st.sampled_from([math.nan, -0.0, 5e-324, 1e-5, 1e-4, 0.1, 1e15, 1e16, 1.7976931348623157e308,
                             -123.456, 2.0**53 + 2]))


@st.composite
def batches(draw) -> Batch:
    n = draw(st.integers(1, 12))

    def column(elements, dtype) -> np.ndarray:
        return np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=dtype)

    names = draw(st.lists(st.sampled_from(["pm25_cf1", "pm25_atm", "rh", "temp", "n0_3", "pm25_atm_min"]),
                          unique=True, max_size=6))
    values = {name: column(floats, np.float64) for name in names}
    if draw(st.booleans()):  # all missing: left out entirely
        values["hcho"] = np.full(n, np.nan)
    derived = {}
    if draw(st.booleans()):  # what cleaning adds
        derived = {"pm25": column(floats, np.float64), "pm25_method": column(texts, object),
                   "qc": column(st.integers(-(2**63), 2**63 - 1), np.int64)}
    return Batch(station=column(texts, object), sensor=column(texts, object), channel=column(texts, object),
                 ints={k: column(st.integers(-(2**63), 2**63 - 1), np.int64) for k in INTEGERS},
                 synced=column(st.booleans(), bool), values=values, derived=derived)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_encode_matches_the_reference(batch):
    assert encode(batch) == reference_encode(batch)


# -- InfluxDB accepts it -------------------------------------------------------------------

def test_round_trip_through_influxdb_with_escaped_tags(influx):
    batch = to_columns([R, {**R, "ts": R["ts"] + 60, "pm25_atm": 7.25}])
    batch.station = np.array(["we ird,st=ation", "lab-1"], dtype=object)
    influx.write(encode(batch))
    (res,) = influx.query('SELECT "pm25_atm", "n", "synced" FROM "pm" GROUP BY "station"')
    got = {s["tags"]["station"]: s["values"] for s in res["series"]}
    assert got == {"we ird,st=ation": [[R["ts"], 11.0, 58, True]], "lab-1": [[R["ts"] + 60, 7.25, 58, True]]}


def test_round_trip_keeps_every_value_exactly(influx):
    tricky = [0.1, -0.0, 5e-324, 1e-5, 123456.789, 1.7976931348623157e308, -2.5e-300, 2.0**53 + 2]
    readings = [{**R, "ts": R["ts"] + 60 * i, "seq": i, "pm25_atm": x, "rh": None if i % 3 else 40.0 + i}
                for i, x in enumerate(tricky)]
    batch = to_columns(readings)
    batch.station = np.array(["a\\b c,d=e"] * len(readings), dtype=object)
    batch.sensor = np.array([","] * len(readings), dtype=object)
    batch.derived["pm25_method"] = np.array(['q"uo\\te'] * len(readings), dtype=object)
    batch.derived["qc"] = np.arange(len(readings), dtype=np.int64) - 3
    influx.write(encode(batch))
    (res,) = influx.query('SELECT "pm25_atm", "rh", "pm25_method", "qc", "seq" FROM "pm" '
                          'GROUP BY "station", "sensor"')
    (series,) = res["series"]
    # InfluxDB (1.6 here) unescapes comma, space and equals sign in a tag value, not a
    # backslash: the two written for one are stored as two. (Doubling is still what lets a
    # value end in a backslash.) Contract tags (station ids, sensors, channels) have none.
    assert series["tags"] == {"station": "a\\\\b c,d=e", "sensor": ","}
    rows = series["values"]
    assert [row[1] for row in rows] == tricky
    assert [row[2] for row in rows] == [40.0 + i if i % 3 == 0 else None for i in range(len(tricky))]
    assert {row[3] for row in rows} == {'q"uo\\te'}
    assert [row[4] for row in rows] == [i - 3 for i in range(len(tricky))]


def test_rewriting_the_same_reading_is_idempotent(influx):
    batch = to_columns([R])
    influx.write(encode(batch))
    influx.write(encode(batch))
    (res,) = influx.query('SELECT count("n") FROM "pm"')
    assert res["series"][0]["values"][0][1] == 1
