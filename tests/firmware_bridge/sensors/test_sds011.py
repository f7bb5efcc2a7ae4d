"""SDS011 parser and commands: golden frames, three ways of feeding, garbage, hypothesis,
and the flash-kind setting helper."""

from __future__ import annotations

import pytest

from firmware_bridge.sensors import sds011
from firmware_bridge.sensors.base import CommandReply, Measurement
from tests.firmware_bridge.feeding import feeds
from tests.firmware_bridge.sensors.frames_sds011 import (
    GOLDEN,
    GOLDEN_VALUES,
    QUERY_EXAMPLE,
    QUERY_VALUES,
    REPLY_FIRMWARE,
    REPLY_PERIOD_1_SET,
    REPLY_PERIOD_GET_5,
    REPLY_QUERY_MODE_SET,
    REPLY_REPORT_MODE_ACTIVE,
    REPLY_SLEEP_SET,
)


def test_golden_frames_hold_their_own_checksums():
    for frame in (QUERY_EXAMPLE, GOLDEN, REPLY_QUERY_MODE_SET, REPLY_REPORT_MODE_ACTIVE,
                  REPLY_SLEEP_SET, REPLY_PERIOD_1_SET, REPLY_PERIOD_GET_5, REPLY_FIRMWARE):
        assert sum(frame[2:8]) & 0xFF == frame[8], frame.hex()


# AA alone, AA C0 starting a frame that cannot end well, AB: heads and tails in the noise.
FEEDS = feeds(b"\x00\xaa\xab\xaa\xc0\x01\xff", b"\xaa\xc0\x00\xab\xaa")


@FEEDS
@pytest.mark.parametrize("frame, values", [
    pytest.param(QUERY_EXAMPLE, QUERY_VALUES, id="sds011 protocol query example"),
    pytest.param(GOLDEN, GOLDEN_VALUES, id="sds011 data frame"),
    pytest.param(bytes.fromhex("aa c0 00 00 00 00 ff ff fe ab"), {"pm25_atm": 0.0, "pm10_atm": 0.0},
                 id="sds011 clean air, broadcast id"),
    pytest.param(bytes.fromhex("aa c0 0f 27 0f 27 a1 60 6d ab"), {"pm25_atm": 999.9, "pm10_atm": 999.9},
                 id="sds011 top of range"),
])
def test_golden_data_frame_decodes_to_datasheet_values(feed, frame, values):
    parser = sds011.Parser()
    (event,) = feed(parser, frame)
    assert event == Measurement("sds011", values, 0)
    assert parser.stats.frames == 1


@FEEDS
@pytest.mark.parametrize("frame, command, data", [
    pytest.param(REPLY_QUERY_MODE_SET, sds011.REPORT_MODE, bytes.fromhex("010100a160"),
                 id="sds011 reply set query mode"),
    pytest.param(REPLY_SLEEP_SET, sds011.SLEEP_WORK, bytes.fromhex("010000a160"),
                 id="sds011 reply set sleep"),
    pytest.param(REPLY_PERIOD_1_SET, sds011.WORKING_PERIOD, bytes.fromhex("010100a160"),
                 id="sds011 reply set working period 1 min"),
    pytest.param(REPLY_FIRMWARE, sds011.FIRMWARE, bytes.fromhex("0f070aa160"),
                 id="sds011 reply firmware 15-7-10"),
])
def test_golden_reply_is_a_command_reply_not_an_error(feed, frame, command, data):
    parser = sds011.Parser()
    (event,) = feed(parser, frame)
    assert event == CommandReply("sds011", command, data)
    assert parser.stats.replies == 1
    if not feed.garbage:
        assert not parser.stats.errors and not parser.stats.skipped_bytes


@pytest.mark.parametrize("frame, reason", [
    pytest.param(GOLDEN[:8] + bytes([GOLDEN[8] ^ 1]) + GOLDEN[9:], "bad checksum",
                 id="sds011 bad checksum"),
    pytest.param(GOLDEN[:9] + b"\xac", "bad tail", id="sds011 bad tail"),
    pytest.param(GOLDEN[:2] + b"\x00" + GOLDEN[3:], "bad checksum", id="sds011 corrupted pm byte"),
    pytest.param(GOLDEN[:9], "bad tail", id="sds011 truncated frame"),
])
def test_corrupt_frame_is_counted_and_the_next_one_read(frame, reason):
    parser = sds011.Parser()
    events = parser.feed(frame + GOLDEN)
    assert events == [Measurement("sds011", GOLDEN_VALUES)]
    assert parser.stats.errors[reason] >= 1
    assert parser.stats.skipped_bytes >= 1


def test_unknown_command_byte_after_head_is_noise_not_a_frame():
    parser = sds011.Parser()
    events = parser.feed(bytes.fromhex("aa c1 7b 00 c8 01 a1 60 45 ab") + GOLDEN)
    assert events == [Measurement("sds011", GOLDEN_VALUES)]
    assert not parser.stats.errors  # not even a frame: skipped, not counted
    assert parser.stats.skipped_bytes == 10


# -- commands --------------------------------------------------------------------------
@pytest.mark.parametrize("name, frame", [
    # Broadcast (FF FF); checksum = low byte of the sum of data bytes 1..15.
    pytest.param("active_mode", "aa b4 02 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 01 ab",
                 id="sds011 set active mode"),
    pytest.param("passive_mode", "aa b4 02 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab",
                 id="sds011 set query mode"),
    pytest.param("get_report_mode", "aa b4 02 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 00 ab",
                 id="sds011 get report mode"),
    pytest.param("passive_read", "aa b4 04 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab",
                 id="sds011 query data"),
    pytest.param("sleep", "aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab",
                 id="sds011 set sleep"),
    pytest.param("wake", "aa b4 06 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab",
                 id="sds011 set work"),
    pytest.param("get_working_period", "aa b4 08 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab",
                 id="sds011 get working period"),
    pytest.param("continuous", "aa b4 08 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 07 ab",
                 id="sds011 set continuous"),
    pytest.param("firmware_version", "aa b4 07 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab",
                 id="sds011 firmware version"),
])
def test_commands_match_the_protocol(name, frame):
    assert sds011.COMMANDS[name] == bytes.fromhex(frame)


def test_commands_addressed_to_one_device_carry_its_id():
    # The protocol's example: set the sensor with id A160 to query mode.
    assert sds011.set_report_mode(sds011.MODE_QUERY, 0xA160) == bytes.fromhex(
        "aa b4 02 01 01 00 00 00 00 00 00 00 00 00 00 a1 60 05 ab")
    # Set id A160 -> A001: new id in data bytes 12, 13, target in 14, 15.
    assert sds011.set_device_id(0xA001, 0xA160) == bytes.fromhex(
        "aa b4 05 00 00 00 00 00 00 00 00 00 00 a0 01 a1 60 a7 ab")


def test_every_init_command_is_in_the_table_and_writes_no_flash():
    for name in sds011.INIT_SEQUENCE:
        frame = sds011.COMMANDS[name]
        cmd = sds011.decode_command(frame)
        assert cmd is not None
        writes_flash = cmd.cmd in (sds011.REPORT_MODE, sds011.WORKING_PERIOD) and cmd.params[0] == 1
        assert not writes_flash, name


def test_host_frame_decoding_refuses_bad_checksum_and_tail():
    good = sds011.COMMANDS["sleep"]
    assert sds011.decode_command(good) == sds011.HostCommand(6, bytes((1, 0)) + bytes(10), 0xFFFF)
    assert sds011.decode_command(good[:17] + b"\x06" + good[18:]) is None
    assert sds011.decode_command(good[:18] + b"\xac") is None
    assert sds011.decode_command(good[:18]) is None


@pytest.mark.parametrize("builder, bad", [
    (sds011.set_report_mode, 2), (sds011.set_working_period, 31), (sds011.set_working_period, -1),
])
def test_setting_builders_refuse_values_the_sensor_cannot_hold(builder, bad):
    with pytest.raises(ValueError):
        builder(bad)


# -- flash-kept settings: written only when they differ ---------------------------------------
def reply(frame):
    (event,) = sds011.Parser().feed(frame)
    return event


def test_read_setting_decodes_get_and_set_replies():
    assert sds011.read_setting(reply(REPLY_REPORT_MODE_ACTIVE)) == sds011.Setting(
        "report_mode", sds011.MODE_ACTIVE, written=False, device_id=0xA160)
    assert sds011.read_setting(reply(REPLY_QUERY_MODE_SET)) == sds011.Setting(
        "report_mode", sds011.MODE_QUERY, written=True, device_id=0xA160)
    assert sds011.read_setting(reply(REPLY_PERIOD_GET_5)) == sds011.Setting(
        "working_period", 5, written=False, device_id=0xA160)
    assert sds011.read_setting(reply(REPLY_SLEEP_SET)).name == "work_state"
    assert sds011.read_setting(reply(REPLY_FIRMWARE)) is None
    assert sds011.read_setting(reply(GOLDEN)) is None


@pytest.mark.parametrize("frame, wanted, needed", [
    pytest.param(REPLY_REPORT_MODE_ACTIVE, sds011.MODE_ACTIVE, False, id="active, want active"),
    pytest.param(REPLY_REPORT_MODE_ACTIVE, sds011.MODE_QUERY, True, id="active, want query"),
    pytest.param(REPLY_QUERY_MODE_SET, sds011.MODE_QUERY, False, id="set reply, already query"),
    pytest.param(REPLY_PERIOD_GET_5, 5, False, id="period 5, want 5"),
    pytest.param(REPLY_PERIOD_GET_5, 0, True, id="period 5, want continuous"),
])
def test_write_needed_only_when_the_sensor_holds_another_value(frame, wanted, needed):
    assert sds011.write_needed(reply(frame), wanted) is needed


@pytest.mark.parametrize("frame, wanted", [
    pytest.param(REPLY_SLEEP_SET, 1, id="sleep/work is not kept in flash"),
    pytest.param(REPLY_FIRMWARE, 0, id="firmware is no setting"),
    pytest.param(GOLDEN, 0, id="a measurement is no reply"),
    pytest.param(REPLY_REPORT_MODE_ACTIVE, 2, id="report mode out of range"),
    pytest.param(REPLY_PERIOD_GET_5, 31, id="working period out of range"),
])
def test_write_needed_refuses_what_is_not_a_flash_setting_question(frame, wanted):
    with pytest.raises(ValueError):
        sds011.write_needed(reply(frame), wanted)


def test_firmware_version_reads_the_date():
    assert sds011.firmware_version(reply(REPLY_FIRMWARE)) == (15, 7, 10)
    assert sds011.firmware_version(reply(REPLY_SLEEP_SET)) is None


# -- encoder and registry -------------------------------------------------------------------
def test_encode_frame_builds_the_golden_frame():
    assert sds011.encode_frame("sds011", GOLDEN_VALUES, device_id=0xA160) == GOLDEN


@pytest.mark.parametrize("values, expected", [
    ({"pm25_atm": 7.04, "pm10_atm": 7.06}, {"pm25_atm": 7.0, "pm10_atm": 7.1}),
    ({"pm25_atm": -1.0}, {"pm25_atm": 0.0, "pm10_atm": 0.0}),
    ({"pm25_atm": 1e9, "pm10_atm": 6553.5}, {"pm25_atm": 6553.5, "pm10_atm": 6553.5}),
], ids=["rounded to 0.1", "negative and missing as 0", "clamped to the word"])
def test_encode_rounds_and_clamps_like_the_wire(values, expected):
    (event,) = sds011.Parser().feed(sds011.encode_frame("sds011", values))
    assert event.values == expected


# Why the recovery property (test_families.py) holds for *any* garbage: a false frame that begins in the
# garbage and runs into GOLDEN ends at one of GOLDEN's first nine bytes, and it is
# accepted only if that byte is the AB tail. GOLDEN holds no AB before its own tail,
# so no false frame can swallow GOLDEN's head; GOLDEN is complete when its last byte
# arrives, so what follows cannot matter.
def test_recovery_property_precondition():
    assert sds011.TAIL not in GOLDEN[:9]
