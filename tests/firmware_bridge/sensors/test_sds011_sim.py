"""The simulated SDS011 answers host frames byte for byte as the V1.3 protocol says, keeps its
flash settings and streams when the real sensor would."""

from __future__ import annotations

import pytest

from firmware_bridge.sensors import sds011
from firmware_bridge.sensors.sds011_sim import Sds011Behaviour

H = bytes.fromhex


SDS_VALUES = {"pm25_atm": 12.3, "pm10_atm": 45.6}
SDS_FRAME = H("aa c0 7b 00 c8 01 a1 60 45 ab")  # device id A160


def sds(**kw):
    return Sds011Behaviour(values=lambda: SDS_VALUES, **kw)


def test_sds011_streams_in_active_continuous_mode():
    sensor = sds(rate_hz=1)
    assert [f for t in (0.0, 0.5, 1.0, 2.0) for f in sensor.poll(t)] == [SDS_FRAME] * 3


@pytest.mark.parametrize("command, reply", [
    pytest.param(sds011.set_report_mode(sds011.MODE_QUERY, 0xA160), "aa c5 02 01 01 00 a1 60 05 ab",
                 id="set query mode, to A160"),
    pytest.param(sds011.COMMANDS["get_report_mode"], "aa c5 02 00 00 00 a1 60 03 ab",
                 id="get report mode"),
    pytest.param(sds011.COMMANDS["sleep"], "aa c5 06 01 00 00 a1 60 08 ab", id="set sleep"),
    pytest.param(sds011.COMMANDS["get_work_state"], "aa c5 06 00 01 00 a1 60 08 ab",
                 id="get work state"),
    pytest.param(sds011.set_working_period(1), "aa c5 08 01 01 00 a1 60 0b ab",
                 id="set working period 1"),
    pytest.param(sds011.COMMANDS["get_working_period"], "aa c5 08 00 00 00 a1 60 09 ab",
                 id="get working period"),
    pytest.param(sds011.set_device_id(0xA001, 0xA160), "aa c5 05 00 00 00 a0 01 a6 ab",
                 id="set device id A160 -> A001"),
    pytest.param(sds011.COMMANDS["firmware_version"], "aa c5 07 0f 07 0a a1 60 28 ab",
                 id="firmware version"),
    pytest.param(sds011.COMMANDS["passive_read"], "aa c0 7b 00 c8 01 a1 60 45 ab", id="query data"),
])
def test_sds011_answers_each_command_byte_for_byte(command, reply):
    assert sds().on_bytes(command, 0.0) == [H(reply)]


def test_sds011_query_mode_stops_the_stream_until_asked():
    sensor = sds()
    sensor.poll(0.0)
    sensor.on_bytes(sds011.COMMANDS["passive_mode"], 0.1)
    assert sensor.poll(10.0) == []
    assert sensor.on_bytes(sds011.COMMANDS["passive_read"], 10.0) == [SDS_FRAME]
    sensor.on_bytes(sds011.COMMANDS["active_mode"], 11.0)
    assert sensor.poll(12.0) == [SDS_FRAME]


def test_sds011_asleep_hears_only_set_work():
    sensor = sds()
    sensor.on_bytes(sds011.COMMANDS["sleep"], 0.0)
    assert sensor.poll(5.0) == []
    for name in ("get_report_mode", "passive_read", "get_work_state", "firmware_version", "sleep"):
        assert sensor.on_bytes(sds011.COMMANDS[name], 5.0) == [], name
    assert sensor.on_bytes(sds011.COMMANDS["wake"], 6.0) == [H("aa c5 06 01 01 00 a1 60 09 ab")]
    assert sensor.poll(6.5) == [] and sensor.poll(7.0) == [SDS_FRAME]


def test_sds011_working_period_sends_one_frame_every_n_minutes():
    sensor = sds()
    assert sensor.poll(0.0) == [SDS_FRAME]
    sensor.on_bytes(sds011.set_working_period(2), 0.5)
    sent = [t for t in range(1, 400) for _ in sensor.poll(t + 0.5)]
    assert sent == [120, 240, 360]


def test_sds011_ignores_commands_to_another_id_and_bad_frames():
    sensor = sds()
    assert sensor.on_bytes(sds011.set_report_mode(sds011.MODE_QUERY, 0x1234), 0.0) == []
    bad = sds011.COMMANDS["passive_mode"][:17] + b"\x00\xab"
    assert sensor.on_bytes(bad, 0.0) == []
    assert sensor.report_mode == sds011.MODE_ACTIVE and sensor.flash_writes == 0


def test_sds011_finds_a_command_split_and_wrapped_in_noise():
    sensor = sds()
    stream = b"\xaa\xb4\x00\xaa" + sds011.COMMANDS["firmware_version"] + b"\xaa"
    replies = [r for i in range(len(stream)) for r in sensor.on_bytes(stream[i : i + 1], 0.0)]
    assert replies == [H("aa c5 07 0f 07 0a a1 60 28 ab")]


def test_sds011_new_device_id_is_used_in_later_frames():
    sensor = sds()
    sensor.on_bytes(sds011.set_device_id(0xA001), 0.0)
    assert sensor.on_bytes(sds011.COMMANDS["passive_read"], 1.0) == [H("aa c0 7b 00 c8 01 a0 01 e5 ab")]
    assert sensor.on_bytes(sds011.set_report_mode(0, 0xA160), 1.0) == []  # the old id is gone


def host_session(sensor, wanted_mode, wanted_period, now):
    """What the bridge does after opening the port: INIT_SEQUENCE, then writes only what differs."""
    parser = sds011.Parser()
    replies = [r for name in sds011.INIT_SEQUENCE for r in sensor.on_bytes(sds011.COMMANDS[name], now)]
    events = [e for r in replies for e in parser.feed(r)]
    wanted = {"report_mode": (wanted_mode, sds011.set_report_mode),
              "working_period": (wanted_period, sds011.set_working_period)}
    for event in events:
        setting = sds011.read_setting(event)
        if setting and setting.name in wanted:
            value, build = wanted[setting.name]
            if sds011.write_needed(event, value):
                sensor.on_bytes(build(value), now)


def test_sds011_flash_settings_are_written_once_then_never_again():
    sensor = sds(report_mode=sds011.MODE_QUERY, working_period=0)
    sensor.working = False  # left asleep by the last run: INIT_SEQUENCE wakes it first
    host_session(sensor, sds011.MODE_ACTIVE, 0, now=0.0)
    assert (sensor.report_mode, sensor.working_period, sensor.flash_writes) == (0, 0, 1)
    for restart in range(1, 4):
        host_session(sensor, sds011.MODE_ACTIVE, 0, now=float(restart))
    assert sensor.flash_writes == 1
