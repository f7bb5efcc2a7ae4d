"""The simulated Plantower answers host commands byte for byte as the manual says and streams
when the real sensor would."""

from __future__ import annotations

import pytest

from firmware_bridge.sensors import plantower
from firmware_bridge.sensors.plantower_sim import PlantowerBehaviour

H = bytes.fromhex


PMS_VALUES = {"pm1_atm": 4, "pm25_atm": 11, "pm10_atm": 14, "n0_3": 1203}
PMS_FRAME = plantower.encode_frame("pms5003", PMS_VALUES)


def pms(**kw):
    return PlantowerBehaviour("pms5003", lambda: PMS_VALUES, **kw)


def test_plantower_streams_once_per_period_when_active():
    sensor = pms(rate_hz=10)
    sent = [f for t in (0.0, 0.05, 0.1, 0.15, 0.2) for f in sensor.poll(t)]
    assert sent == [PMS_FRAME] * 3
    assert sensor.frames == 3
    assert sensor.next_due() == pytest.approx(0.3)


@pytest.mark.parametrize("command, ack", [
    ("passive_mode", "424d0004e1000174"),  # 42+4D+04+E1 = 0x174
    ("active_mode", "424d0004e1010175"),
    ("sleep", "424d0004e4000177"),
])
def test_plantower_acknowledges_mode_and_sleep_with_the_8_byte_frame(command, ack):
    assert pms().on_bytes(plantower.COMMANDS[command], 0.0) == [H(ack)]


def test_plantower_passive_mode_stops_the_stream_and_answers_reads():
    sensor = pms()
    sensor.poll(0.0)
    sensor.on_bytes(plantower.COMMANDS["passive_mode"], 0.1)
    assert sensor.poll(5.0) == [] and sensor.next_due() is None
    assert sensor.on_bytes(plantower.COMMANDS["passive_read"], 5.1) == [PMS_FRAME]
    sensor.on_bytes(plantower.COMMANDS["active_mode"], 6.0)
    assert sensor.poll(6.5) == [] and sensor.poll(7.0) == [PMS_FRAME]


def test_plantower_sleeps_silently_and_wakes_without_an_ack():
    sensor = pms()
    sensor.poll(0.0)
    sensor.on_bytes(plantower.COMMANDS["sleep"], 0.5)
    assert sensor.poll(10.0) == []
    assert sensor.on_bytes(plantower.COMMANDS["passive_read"], 10.5) == []  # asleep: no answer
    assert sensor.on_bytes(plantower.COMMANDS["wake"], 11.0) == []
    assert sensor.poll(11.5) == [] and sensor.poll(12.0) == [PMS_FRAME]


def test_plantower_ignores_bad_commands_and_finds_good_ones_in_noise():
    sensor = pms()
    bad = plantower.COMMANDS["sleep"][:-1] + b"\x00"
    assert sensor.on_bytes(bad, 0.0) == []
    assert sensor.awake
    split = b"\x42\x42\x00" + plantower.COMMANDS["passive_mode"]
    replies = [r for i in range(len(split)) for r in sensor.on_bytes(split[i : i + 1], 0.0)]
    assert replies == [H("424d0004e1000174")]
