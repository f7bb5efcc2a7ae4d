"""meta_to_line: the station metadata line the ingest writes, and what the API reads back."""

from __future__ import annotations

import pytest

from api.stationmeta import StationMeta, meta_from_row, online_status
from civicair import influxql
from civicair.influx import series
from civicair.schema.storage import MetaError, meta_to_line
from tests.api.conftest import T0

BRIDGE_META = {"name": "Lab 1", "lat": 52.09071, "lon": 5.12142, "sensors": {"a": "pms5003"},
               "software": "civicair 0.1.0"}


def test_bridge_meta_becomes_one_line_with_rounded_position():
    assert meta_to_line("lab-1", BRIDGE_META, T0) == (
        b'station,station=lab-1 name="Lab 1",lat=52.091,lon=5.121,exact_location=false,'
        b'sensors_a="pms5003",software="civicair 0.1.0" 1767225600\n'
    )


def test_exact_location_opt_in_keeps_every_decimal():
    line = meta_to_line("lab-1", {**BRIDGE_META, "exact_location": True}, T0)
    assert b"lat=52.09071,lon=5.12142,exact_location=true" in line


def test_strings_are_escaped_and_control_characters_flattened():
    line = meta_to_line("lab-1", {"name": 'The "Lab"\nroof \\ east', "firmware": "v1\t2"}, T0)
    assert line == (b'station,station=lab-1 name="The \\"Lab\\" roof \\\\ east",exact_location=false,'
                    b'firmware="v1 2" 1767225600\n')


def test_defaults_and_sensor_shapes():
    assert b'name="lab-2"' in meta_to_line("lab-2", {}, T0)
    two = meta_to_line("lab-2", {"sensors": ["sds011", "pms5003"]}, T0)
    assert b'sensors_a="sds011",sensors_b="pms5003"' in two
    assert b'sensors_a="sps30"' in meta_to_line("lab-2", {"sensors": "sps30"}, T0)


def test_unknown_keys_are_ignored():
    assert b"colour" not in meta_to_line("lab-1", {**BRIDGE_META, "colour": "blue"}, T0)


@pytest.mark.parametrize(("station", "meta"), [
    ("Lab 1", BRIDGE_META),
    ("lab-1", {"lat": 91.0, "lon": 0.0}),
    ("lab-1", {"lat": 10.0}),
    ("lab-1", {"lat": True, "lon": 1.0}),
    ("lab-1", {"lat": float("nan"), "lon": 1.0}),
    ("lab-1", {"name": 5}),
    ("lab-1", {"name": "x" * 201}),
    ("lab-1", {"sensors": {"c": "pms5003"}}),
    ("lab-1", {"sensors": {"a": "PMS 5003"}}),
    ("lab-1", {"exact_location": "yes"}),
    ("lab-1", ["not", "an", "object"]),
    ("lab-1", {"duty_period": -60}),
    ("lab-1", {"duty_period": 1.5}),
    ("lab-1", {"duty_period": 10**9}),
    ("lab-1", {"laser_hours": {"c": 1.0}}),
    ("lab-1", {"laser_hours": {"a": -1.0}}),
    ("lab-1", {"laser_hours": 5}),
], ids=["bad id", "lat out of range", "lat without lon", "bool lat", "nan lat", "name not text",
        "name too long", "unknown channel", "model with space", "exact not bool", "not an object",
        "negative duty period", "fractional duty period", "duty period beyond a day",
        "laser hours of an unknown channel", "negative laser hours", "laser hours not a mapping"])
def test_invalid_meta_is_refused_with_a_reason(station, meta):
    with pytest.raises(MetaError):
        meta_to_line(station, meta, T0)


def test_line_round_trips_through_influxdb_and_status_points_do_not_hide_it(influx):
    influx.write(meta_to_line("lab-1", BRIDGE_META, T0))
    influx.write(b'station,station=lab-1 status="offline" 1767225700\n')  # as ingest/meta.py writes it
    (result,) = influx.query(influxql.station_meta())
    (s,) = series(result)
    meta = meta_from_row(s["tags"]["station"], s["columns"], s["values"][0])
    assert meta == StationMeta("lab-1", "Lab 1", 52.091, 5.121, False, (("a", "pms5003"),), None,
                               "civicair 0.1.0", None)
    assert meta.published_position() == (52.091, 5.121)


def test_published_position_rounds_unless_exact():
    assert StationMeta("x", lat=52.09071, lon=5.12149).published_position() == (52.091, 5.121)
    assert StationMeta("x", lat=52.09071, lon=5.12149, exact_location=True).published_position() == (
        52.09071, 5.12149)
    assert StationMeta("x").published_position() == (None, None)


@pytest.mark.parametrize(("last_seen", "window", "status", "status_time", "expected"), [
    (None, None, None, None, "unknown"),
    (None, None, "offline", 900, "offline"),
    (1000 - 599, 60, None, None, "online"),  # within 10 min (3 × 60 s is shorter)
    (1000 - 601, 60, None, None, "offline"),
    (1000 - 1700, 600, None, None, "online"),  # 3 × 600 s = 30 min
    (990, 60, "offline", 995, "offline"),  # the bridge's last will came after the last reading
    (990, 60, "offline", 980, "online"),  # ... or before it: the bridge is back
])
def test_online_status(last_seen, window, status, status_time, expected):
    assert online_status(last_seen, window, status, status_time, 1000, windows=3, min_s=600) == expected


def test_laser_hours_are_stored_with_the_share_of_the_models_rated_life():
    line = meta_to_line("lab-1", {"sensors": {"a": "sds011", "b": "unknown-model"},
                                  "laser_hours": {"a": 2000, "b": 10.0}}, T0).decode()
    assert "laser_hours_a=2000.0,life_used_a=25.0,laser_hours_b=10.0 " in line  # no rating known for b
