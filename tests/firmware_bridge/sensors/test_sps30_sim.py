"""The simulated SPS30 answers SHDLC frames byte for byte as the datasheet says, in each of its
modes, with its status register and sleeping UART."""

from __future__ import annotations

import pytest

from firmware_bridge.sensors import sps30
from firmware_bridge.sensors.sps30_sim import Sps30Behaviour

H = bytes.fromhex


SPS_VALUES = {"pm1_atm": 1.5, "pm25_atm": 2.5, "pm4_atm": 3.0, "pm10_atm": 3.25, "nc0_5": 10.0,
              "nc1_0": 12.0, "nc2_5": 12.5, "nc4_0": 12.625, "nc10_0": 12.75, "tps": 0.5}
SPS_FRAME = H("7e 00 03 00 28 3fc00000 40200000 40400000 40500000 41200000 41400000 41480000"
              " 414a0000 414c0000 3f000000 a3 7e")
C = sps30.COMMANDS
START_OK = H("7e 00 00 00 00 ff 7e")
STOP_OK = H("7e 00 01 00 00 fe 7e")
READ_EMPTY = H("7e 00 03 00 00 fc 7e")
SLEEP_OK = H("7e 00 10 00 00 ef 7e")
WAKE_OK = H("7e 00 7d 31 00 00 ee 7e")  # 0x11 stuffed
FAN_CLEANING_OK = H("7e 00 56 00 00 a9 7e")
RESET_OK = H("7e 00 d3 00 00 2c 7e")


def sensor_sps(**kw):
    return Sps30Behaviour(values=lambda: SPS_VALUES, **kw)


def measuring(**kw):
    sensor = sensor_sps(**kw)
    assert sensor.on_bytes(C["start"], 0.0) == [START_OK]
    return sensor


def test_sps30_starts_idle_and_refuses_to_read_until_started():
    sensor = sensor_sps()
    assert sensor.on_bytes(C["read_values"], 0.0) == [H("7e 00 03 43 00 b9 7e")]  # 03+43 -> ~46
    assert sensor.on_bytes(C["stop"], 0.0) == [H("7e 00 01 43 00 bb 7e")]
    assert sensor.on_bytes(C["fan_cleaning"], 0.0) == [H("7e 00 56 43 00 66 7e")]


def test_sps30_new_reading_every_second_and_empty_answers_between():
    sensor = measuring()
    assert sensor.on_bytes(C["read_values"], 0.5) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 1.0) == [SPS_FRAME]
    assert sensor.on_bytes(C["read_values"], 1.4) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 3.7) == [SPS_FRAME]  # the latest, once
    assert sensor.on_bytes(C["read_values"], 3.9) == [READ_EMPTY]
    assert sensor.frames == 2
    assert sensor.poll(10.0) == [] and sensor.next_due() is None  # it never streams


def test_sps30_start_while_measuring_is_not_allowed():
    sensor = measuring()
    assert sensor.on_bytes(C["start"], 1.0) == [H("7e 00 00 43 00 bc 7e")]


@pytest.mark.parametrize("command, reply", [
    pytest.param(sps30.mosi(sps30.START, b"\x01"), "7e 00 00 01 00 fe 7e", id="start, wrong length"),
    pytest.param(sps30.mosi(sps30.START, b"\x01\x04"), "7e 00 00 04 00 fb 7e",
                 id="start, illegal format"),
    pytest.param(sps30.mosi(0x42), "7e 00 42 02 00 bb 7e", id="unknown command"),
    pytest.param(sps30.mosi(sps30.DEVICE_INFO, b"\x01"), "7e 00 d0 04 00 2b 7e",
                 id="device info, reserved subcommand"),
    pytest.param(sps30.mosi(sps30.DEVICE_STATUS, b"\x02"), "7e 00 d2 04 00 29 7e",
                 id="status, illegal clear flag"),
])
def test_sps30_execution_errors_in_the_state_byte(command, reply):
    assert sensor_sps().on_bytes(command, 0.0) == [H(reply)]


def test_sps30_ignores_frames_it_cannot_read():
    sensor = sensor_sps()
    bad_checksum = C["start"][:-2] + b"\x00\x7e"
    other_address = H("7e 01 00 02 01 03 f8 7e")  # a valid start for ADR 1: the SPS30 is 0
    assert sensor.on_bytes(bad_checksum + other_address + b"\x00\x13", 0.0) == []
    assert sensor.mode == sensor.IDLE


def test_sps30_stop_then_sleep_then_wake_with_the_low_pulse():
    sensor = measuring()
    assert sensor.on_bytes(C["enter_sleep"], 1.0) == [H("7e 00 10 43 00 ac 7e")]  # only from idle
    assert sensor.on_bytes(C["stop"], 1.0) == [STOP_OK]
    assert sensor.on_bytes(C["enter_sleep"], 1.0) == [SLEEP_OK]
    assert sensor.on_bytes(C["read_values"], 2.0) == []  # UART off
    assert sensor.on_bytes(b"\xff" + C["wake_up"], 3.0) == [WAKE_OK]
    assert sensor.mode == sensor.IDLE


def test_sps30_wake_up_sent_twice_wakes_on_the_second():
    sensor = sensor_sps()
    sensor.on_bytes(C["enter_sleep"], 0.0)
    assert sensor.on_bytes(C["wake_up"], 1.0) == []  # enables the UART only
    assert sensor.on_bytes(C["wake_up"], 1.05) == [WAKE_OK]


def test_sps30_uart_closes_again_100_ms_after_the_pulse():
    sensor = sensor_sps()
    sensor.on_bytes(C["enter_sleep"], 0.0)
    assert sensor.on_bytes(b"\xff", 1.0) == []
    assert sensor.on_bytes(C["read_values"], 1.05) == []  # heard, but only wake-up counts
    assert sensor.on_bytes(C["wake_up"], 1.2) == []  # too late: this one is the new pulse
    assert sensor.mode == sensor.SLEEPING


def test_sps30_family_verbs_sleep_and_wake_round_trip():
    sensor = measuring()
    assert sensor.on_bytes(C["sleep"], 1.0) == [STOP_OK, SLEEP_OK]
    assert sensor.mode == sensor.SLEEPING
    assert sensor.on_bytes(C["wake"], 5.0) == [WAKE_OK, START_OK]
    assert sensor.mode == sensor.MEASURING
    assert sensor.on_bytes(C["read_values"], 6.0) == [SPS_FRAME]


def test_sps30_fan_cleaning_freezes_readings_for_10_seconds():
    sensor = measuring()
    assert sensor.on_bytes(C["fan_cleaning"], 1.5) == [FAN_CLEANING_OK]
    assert sensor.on_bytes(C["read_values"], 5.0) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 11.4) == [READ_EMPTY]
    assert sensor.on_bytes(C["read_values"], 11.6) == [SPS_FRAME]


def test_sps30_device_information_and_version():
    sensor = sensor_sps()
    # Product type: the datasheet's frame, with the checksum the rule gives (0x9E).
    assert sensor.on_bytes(C["product_type"], 0.0) == [
        H("7e 00 d0 00 09 30 30 30 38 30 30 30 30 00 9e 7e")]
    assert sensor.on_bytes(C["serial_number"], 0.0) == [
        sps30.miso(sps30.DEVICE_INFO, b"SIMULATED-SPS30\x00")]
    assert sensor.on_bytes(C["read_version"], 0.0) == [
        H("7e 00 d1 00 07 02 02 00 07 00 02 00 1a 7e")]  # firmware 2.2, hardware 7, SHDLC 2.0


def test_sps30_status_register_reports_injected_faults_and_clears():
    flags = sps30.StatusFlag.FAN_FAILURE | sps30.StatusFlag.FAN_SPEED_WARNING
    sensor = sensor_sps(faults=flags)
    assert sensor.on_bytes(C["read_status"], 0.0) == [H("7e 00 d2 00 05 00 00 00 00 00 28 7e")]
    sensor.on_bytes(C["start"], 0.0)
    # Measuring, the faults show; FAN is an error flag, so every state byte has bit 7.
    read = sensor.on_bytes(C["read_values"], 1.0)
    assert read == [sps30.encode_frame("sps30", SPS_VALUES, sps30.ERROR_FLAG)]
    assert sensor.on_bytes(C["read_status"], 1.0) == [H("7e 00 d2 80 05 00 20 00 10 00 78 7e")]
    sensor.on_bytes(C["stop"], 2.0)
    # Read and clear: the answer still holds the register as it was; then it is clear.
    assert sensor.on_bytes(C["read_and_clear_status"], 2.0) == [
        H("7e 00 d2 80 05 00 20 00 10 00 78 7e")]
    assert sensor.on_bytes(C["read_status"], 2.0) == [H("7e 00 d2 00 05 00 00 00 00 00 28 7e")]


def test_sps30_reset_returns_to_idle_after_answering():
    sensor = measuring()
    assert sensor.on_bytes(C["reset"], 1.0) == [RESET_OK]
    assert sensor.mode == sensor.IDLE


def test_sps30_auto_cleaning_interval_read_and_written_to_flash():
    sensor = sensor_sps()
    # 604 800 s = 0x00093A80: 80+04+09+3A+80 = 0x147 -> ~47 = B8.
    assert sensor.on_bytes(C["read_cleaning_interval"], 0.0) == [H("7e 00 80 00 04 00 09 3a 80 b8 7e")]
    assert sensor.on_bytes(sps30.write_cleaning_interval(0), 0.0) == [H("7e 00 80 00 00 7f 7e")]
    assert sensor.on_bytes(C["read_cleaning_interval"], 0.0) == [H("7e 00 80 00 04 00 00 00 00 7b 7e")]
    assert sensor.flash_writes == 1


def test_sps30_uint16_format_round_trips_through_the_parser():
    sensor = sensor_sps()
    sensor.on_bytes(C["start_uint16"], 0.0)
    (frame,) = sensor.on_bytes(C["read_values"], 1.0)
    (event,) = sps30.Parser().feed(frame)
    assert event.values == {**{k: float(round(v)) for k, v in SPS_VALUES.items()}, "tps": 0.5}
