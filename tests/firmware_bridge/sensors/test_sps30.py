"""SPS30 over SHDLC: byte stuffing, checksum, golden frames from the datasheet, three ways
of feeding, garbage, hypothesis, the device status register."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.sensors import sps30
from firmware_bridge.sensors.base import CommandReply, Measurement
from firmware_bridge.sensors.sps30 import StatusFlag
from tests.firmware_bridge.feeding import chunked, feeds
from tests.firmware_bridge.sensors.frames_sps30 import (
    FAN_CLEANING_OK,
    GOLDEN,
    GOLDEN_VALUES,
    INTERVAL_WRITE_OK,
    INTERVAL_ZERO,
    NOT_ALLOWED,
    PRODUCT_TYPE,
    READ_EMPTY,
    READ_ZEROS,
    RESET_OK,
    SERIAL_ZEROS,
    SLEEP_OK,
    START_OK,
    STATUS_CLEAR,
    STATUS_SPEED_FAN,
    STOP_OK,
    STUFFED,
    STUFFED_VALUES,
    VERSION_2_1,
    WAKE_OK_AS_PRINTED,
)


def test_golden_frames_hold_their_own_checksums():
    for frame in (START_OK, READ_ZEROS, GOLDEN, STUFFED, STATUS_SPEED_FAN, PRODUCT_TYPE,
                  SERIAL_ZEROS, VERSION_2_1, NOT_ALLOWED, INTERVAL_ZERO):
        content = sps30.unstuff(frame[1:-1])
        assert sps30.checksum(content[:-1]) == content[-1], frame.hex()


# -- framing ----------------------------------------------------------------------------------
def test_stuffing_matches_the_datasheet_example():
    assert sps30.stuff(bytes([0x43, 0x11, 0x7F])) == bytes([0x43, 0x7D, 0x31, 0x7F])


@pytest.mark.parametrize("byte, stuffed", [(0x7E, b"\x7d\x5e"), (0x7D, b"\x7d\x5d"),
                                           (0x11, b"\x7d\x31"), (0x13, b"\x7d\x33")])
def test_each_special_byte_is_stuffed_and_unstuffed(byte, stuffed):
    assert sps30.stuff(bytes([byte])) == stuffed
    assert sps30.unstuff(stuffed) == bytes([byte])


@given(st.binary(max_size=300))
def test_unstuff_inverts_stuff_and_stuffed_data_has_no_flag(data):
    stuffed = sps30.stuff(data)
    assert sps30.FLAG not in stuffed
    assert sps30.unstuff(stuffed) == data


@pytest.mark.parametrize("raw", [b"\x7d", b"\x00\x7d\x00", b"\x7d\x7e"],
                         ids=["escape at the end", "escape of 0x00", "escape of a flag"])
def test_unstuff_refuses_escapes_that_stuffing_cannot_make(raw):
    assert sps30.unstuff(raw) is None


def test_checksum_matches_the_datasheet_example():
    assert sps30.checksum(bytes([0x00, 0x00, 0x02, 0x01, 0x03])) == 0xF9


# -- commands -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, frame", [
    pytest.param("start", "7e 00 00 02 01 03 f9 7e", id="sps30 start measurement float"),
    pytest.param("stop", "7e 00 01 00 fe 7e", id="sps30 stop measurement"),
    pytest.param("read_values", "7e 00 03 00 fc 7e", id="sps30 read measured values"),
    pytest.param("enter_sleep", "7e 00 10 00 ef 7e", id="sps30 sleep"),
    pytest.param("fan_cleaning", "7e 00 56 00 a9 7e", id="sps30 start fan cleaning"),
    # The checksum of this one is 0x7E: the datasheet shows it stuffed.
    pytest.param("read_cleaning_interval", "7e 00 80 01 00 7d 5e 7e",
                 id="sps30 read auto cleaning interval"),
    pytest.param("product_type", "7e 00 d0 01 00 2e 7e", id="sps30 device info product type"),
    pytest.param("serial_number", "7e 00 d0 01 03 2b 7e", id="sps30 device info serial number"),
    pytest.param("read_version", "7e 00 d1 00 2e 7e", id="sps30 read version"),
    pytest.param("read_status", "7e 00 d2 01 00 2c 7e", id="sps30 read device status register"),
    pytest.param("reset", "7e 00 d3 00 2c 7e", id="sps30 device reset"),
])
def test_commands_match_the_datasheet(name, frame):
    assert sps30.COMMANDS[name] == bytes.fromhex(frame)


def test_wake_up_command_stuffs_its_0x11():
    # The datasheet prints 7E 00 11 00 EE 7E, but 0x11 is one of the stuffed bytes
    # ("if this byte occurs anywhere else in the frame, it must be replaced"), and
    # Sensirion's own driver stuffs the command byte too.
    assert sps30.COMMANDS["wake_up"] == bytes.fromhex("7e 00 7d 31 00 ee 7e")


def test_write_cleaning_interval_matches_the_datasheet():
    assert sps30.write_cleaning_interval(0) == bytes.fromhex("7e 00 80 05 00 00 00 00 00 7a 7e")
    with pytest.raises(ValueError):
        sps30.write_cleaning_interval(-1)


def test_family_verbs_compose_the_datasheet_sequences():
    c = sps30.COMMANDS
    assert c["sleep"] == c["stop"] + c["enter_sleep"]  # Sleep-Mode only from Idle-Mode
    assert c["wake"] == b"\xff" + c["wake_up"] + c["start"]  # low pulse, wake-up, measure
    assert c["passive_read"] == c["read_values"]
    assert all(name in c for name in sps30.INIT_SEQUENCE)
    assert sps30.POLL[0] in c and 0 < sps30.POLL[1] <= 1.0


# -- parser: golden frames ---------------------------------------------------------------------
# A flag opening a frame that ends where the real one starts, an escape, noise, and
# a frame opened after it that never closes.
FEEDS = feeds(b"\x13\x7e\x01\x7d\x02\x11", b"\x00\x7e\x00\x03")


@FEEDS
@pytest.mark.parametrize("frame, values", [
    pytest.param(GOLDEN, GOLDEN_VALUES, id="sps30 read values float"),
    pytest.param(STUFFED, STUFFED_VALUES, id="sps30 read values with stuffed bytes"),
    pytest.param(READ_ZEROS, dict.fromkeys(sps30.VALUE_NAMES, 0.0), id="sps30 datasheet zeros"),
])
def test_golden_read_values_decode_to_measurements(feed, frame, values):
    parser = sps30.Parser()
    (event,) = feed(parser, frame)
    assert event == Measurement("sps30", values, 0)
    assert parser.stats.frames == 1


@FEEDS
@pytest.mark.parametrize("frame, command, data, state", [
    pytest.param(START_OK, sps30.START, b"", 0, id="sps30 start answer"),
    pytest.param(STOP_OK, sps30.STOP, b"", 0, id="sps30 stop answer"),
    pytest.param(READ_EMPTY, sps30.READ_VALUES, b"", 0, id="sps30 read with nothing new"),
    pytest.param(SLEEP_OK, sps30.SLEEP, b"", 0, id="sps30 sleep answer"),
    pytest.param(WAKE_OK_AS_PRINTED, sps30.WAKE_UP, b"", 0, id="sps30 wake-up answer unstuffed"),
    pytest.param(sps30.miso(sps30.WAKE_UP), sps30.WAKE_UP, b"", 0, id="sps30 wake-up answer stuffed"),
    pytest.param(FAN_CLEANING_OK, sps30.FAN_CLEANING, b"", 0, id="sps30 fan cleaning answer"),
    pytest.param(INTERVAL_WRITE_OK, sps30.CLEANING_INTERVAL, b"", 0, id="sps30 interval written"),
    pytest.param(INTERVAL_ZERO, sps30.CLEANING_INTERVAL, bytes(4), 0, id="sps30 interval 0"),
    pytest.param(PRODUCT_TYPE, sps30.DEVICE_INFO, b"00080000\x00", 0, id="sps30 product type"),
    pytest.param(SERIAL_ZEROS, sps30.DEVICE_INFO, b"0" * 20 + b"\x00", 0, id="sps30 serial number"),
    pytest.param(VERSION_2_1, sps30.READ_VERSION, bytes.fromhex("02010006000200"), 0,
                 id="sps30 version"),
    pytest.param(STATUS_CLEAR, sps30.DEVICE_STATUS, bytes(5), 0, id="sps30 status clear"),
    pytest.param(RESET_OK, sps30.RESET, b"", 0, id="sps30 reset answer"),
    pytest.param(NOT_ALLOWED, sps30.START, b"", 0x43, id="sps30 not allowed in current state"),
])
def test_golden_answers_are_command_replies_with_their_state(feed, frame, command, data, state):
    parser = sps30.Parser()
    (event,) = feed(parser, frame)
    assert event == CommandReply("sps30", command, data, state)
    if not feed.garbage:
        assert not parser.stats.errors and not parser.stats.skipped_bytes


def test_answers_decode_to_their_meaning():
    assert sps30.decode_text(PRODUCT_TYPE[5:-2]) == sps30.PRODUCT_TYPE
    assert sps30.decode_version(VERSION_2_1[5:-2]) == sps30.Version((2, 1), 6, (2, 0))


def test_uint16_format_is_decoded_with_typical_size_in_nm():
    data = struct.pack(">10H", 2, 3, 4, 5, 10, 12, 13, 14, 15, 550)
    (event,) = sps30.Parser().feed(sps30.miso(sps30.READ_VALUES, data))
    assert event.values == {"pm1_atm": 2.0, "pm25_atm": 3.0, "pm4_atm": 4.0, "pm10_atm": 5.0,
                            "nc0_5": 10.0, "nc1_0": 12.0, "nc2_5": 13.0, "nc4_0": 14.0,
                            "nc10_0": 15.0, "tps": 0.55}


# -- parser: the device status register -------------------------------------------------------
def test_status_register_bits_are_decoded():
    status = sps30.DeviceStatus.from_register(0x00200010)
    assert (status.fan_speed_warning, status.laser_failure, status.fan_failure) == (True, False, True)
    assert status.error
    assert status.flags == StatusFlag.FAN_SPEED_WARNING | StatusFlag.FAN_FAILURE
    laser = sps30.DeviceStatus.from_register(1 << 5)
    assert laser.laser_failure and laser.error and not laser.fan_speed_warning
    warning_only = sps30.DeviceStatus.from_register(1 << 21)
    assert warning_only.fan_speed_warning and not warning_only.error


def test_reserved_bits_are_ignored():
    status = sps30.DeviceStatus.from_register(0xFFDF_FFCF)  # every bit but the documented ones
    assert not (status.fan_speed_warning or status.laser_failure or status.fan_failure)
    assert status.flags == StatusFlag(0)


def test_measurement_status_carries_the_last_register_read():
    parser = sps30.Parser()
    (before,) = parser.feed(GOLDEN)
    assert before.status == 0
    (reply,) = parser.feed(STATUS_SPEED_FAN)
    assert reply == CommandReply("sps30", sps30.DEVICE_STATUS, bytes.fromhex("0020001000"), 0x80)
    assert parser.device_error  # bit 7 of the state byte: an error flag is set
    assert parser.device_status == sps30.DeviceStatus.from_register(0x00200010)
    (after,) = parser.feed(GOLDEN)
    assert after.status == 0x00200010
    parser.feed(STATUS_CLEAR + READ_EMPTY)
    assert parser.device_status.raw == 0 and not parser.device_error


# -- parser: corrupt input -------------------------------------------------------------------------
def corrupt_checksum(frame):
    return frame[:-2] + bytes([frame[-2] ^ 0x01]) + frame[-1:]


@pytest.mark.parametrize("frame, reason", [
    pytest.param(corrupt_checksum(GOLDEN), "bad checksum", id="sps30 bad checksum"),
    pytest.param(GOLDEN[:4] + b"\x27" + GOLDEN[5:], "bad length", id="sps30 length off by one"),
    pytest.param(GOLDEN[:20] + GOLDEN[21:], "bad length", id="sps30 dropped byte"),
    pytest.param(b"\x7e\x00\x03\x7d\x00\xfc\x7e", "bad stuffing", id="sps30 bad escape"),
    pytest.param(sps30.miso(sps30.READ_VALUES).replace(b"\x7e\x00", b"\x7e\x01", 1)[:-2] + b"\xfb\x7e",
                 "bad address", id="sps30 address not 0"),
    pytest.param(sps30.miso(sps30.READ_VALUES, bytes(12)), "bad length", id="sps30 12 value bytes"),
    pytest.param(sps30.miso(sps30.READ_VALUES, struct.pack(">10f", *[float("nan")] * 10)),
                 "bad value", id="sps30 NaN values"),
    pytest.param(b"\x7e\x00\x03\x00", "bad length", id="sps30 too short"),
])
def test_corrupt_frame_is_counted_and_the_next_one_read(frame, reason):
    parser = sps30.Parser()
    events = parser.feed(frame + GOLDEN)
    assert events == [Measurement("sps30", GOLDEN_VALUES)]
    assert parser.stats.errors[reason] == 1
    assert parser.stats.skipped_bytes > 0


def test_truncated_frame_shares_its_end_with_the_next_frame_start():
    # A frame cut short has no closing flag: the next frame's opening flag closes it,
    # and is then reused to open that next frame.
    parser = sps30.Parser()
    assert parser.feed(GOLDEN[:30] + GOLDEN) == [Measurement("sps30", GOLDEN_VALUES)]
    assert parser.stats.errors["bad length"] == 1


def test_overlong_frame_is_dropped_and_the_buffer_stays_capped():
    parser = sps30.Parser()
    parser.feed(b"\x7e")  # opens a frame that never closes
    for _ in range(100):
        parser.feed(bytes(range(0x20, 0x70)) * 3)  # no flag among them
        assert len(parser._buf) <= sps30.MAX_BUFFER
    assert parser.stats.errors["too long"] >= 1
    assert parser.feed(GOLDEN) == [Measurement("sps30", GOLDEN_VALUES)]


def one(frame):
    (event,) = sps30.Parser().feed(frame)
    return event


# -- encoder and registry -------------------------------------------------------------------------
def test_encode_frame_builds_the_golden_frames():
    assert sps30.encode_frame("sps30", GOLDEN_VALUES) == GOLDEN
    assert sps30.encode_frame("sps30", STUFFED_VALUES) == STUFFED


def test_encode_then_parse_round_trips_to_float32():
    values = {"pm1_atm": 4.1, "pm25_atm": 7.3, "pm4_atm": 9.9, "pm10_atm": 11.2, "nc0_5": 33.3,
              "nc1_0": 40.1, "nc2_5": 41.0, "nc4_0": 41.2, "nc10_0": 41.3, "tps": 0.61}
    for fmt, tolerance in ((sps30.FORMAT_FLOAT, 1e-6), (sps30.FORMAT_UINT16, 0.5)):
        (event,) = sps30.Parser().feed(sps30.encode_frame("sps30", values, fmt=fmt))
        for name, value in values.items():
            assert event.values[name] == pytest.approx(value, rel=tolerance, abs=tolerance), (fmt, name)


# -- hypothesis (the properties every family shares are in test_families.py) -------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\x7e", b"\x7d", b"\x11", b"\x00", b"\xff", b"\x03"]), max_size=200),
       st.integers(1, 64))
def test_parser_never_raises_on_flag_and_escape_soup(parts, chunk):
    chunked(sps30.Parser(), b"".join(parts), chunk)
