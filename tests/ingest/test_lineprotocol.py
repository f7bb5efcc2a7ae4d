"""Line protocol: exact text, escaping, NaN left out; and a round trip through InfluxDB."""

from __future__ import annotations

import numpy as np

from ingest.columns import to_columns
from ingest.lineprotocol import encode, escape_tag

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


def test_missing_values_are_left_out():
    batch = to_columns([R, {**R, "pm25_cf1": None, "seq": 4}])
    lines = encode(batch).decode().splitlines()
    assert "pm25_cf1" in lines[0] and "pm25_cf1" not in lines[1]


def test_round_trip_through_influxdb_with_escaped_tags(influx):
    batch = to_columns([R, {**R, "ts": R["ts"] + 60, "pm25_atm": 7.25}])
    batch.station = np.array(["we ird,st=ation", "lab-1"], dtype=object)
    influx.write(encode(batch))
    (res,) = influx.query('SELECT "pm25_atm", "n", "synced" FROM "pm" GROUP BY "station"')
    got = {s["tags"]["station"]: s["values"] for s in res["series"]}
    assert got == {"we ird,st=ation": [[R["ts"], 11.0, 58, True]], "lab-1": [[R["ts"] + 60, 7.25, 58, True]]}


def test_rewriting_the_same_reading_is_idempotent(influx):
    batch = to_columns([R])
    influx.write(encode(batch))
    influx.write(encode(batch))
    (res,) = influx.query('SELECT count("n") FROM "pm"')
    assert res["series"][0]["values"][0][1] == 1
