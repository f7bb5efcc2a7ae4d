"""Plantower parser: golden frames, three ways of feeding, garbage, hypothesis."""

from __future__ import annotations

import pytest

from firmware_bridge.sensors import plantower
from firmware_bridge.sensors.base import CommandReply, Measurement
from tests.firmware_bridge.feeding import feeds
from tests.firmware_bridge.sensors.frames_plantower import (
    ACK_PASSIVE,
    GOLDEN,
    GOLDEN_VALUES,
)


def test_golden_checksum_is_the_sum_of_the_bytes():
    assert sum(GOLDEN[:-2]) == int.from_bytes(GOLDEN[-2:], "big")


FEEDS = feeds(b"\x00\x42\xff\x4d\x42", b"\x42\x4d\x00")


@FEEDS
def test_golden_frame_decodes_to_datasheet_values(feed):
    parser = plantower.Parser("pms5003")
    (event,) = feed(parser, GOLDEN)
    assert isinstance(event, Measurement)
    assert event.values == GOLDEN_VALUES
    assert event.status == 0x00  # error code byte of the reserved word


@pytest.mark.parametrize(
    "frame, reason",
    [
        pytest.param(GOLDEN[:-1] + bytes([GOLDEN[-1] ^ 1]), "bad checksum", id="pms5003 bad checksum"),
        pytest.param(GOLDEN[:3] + b"\x1d" + GOLDEN[4:], "bad length", id="pms5003 bad length"),
    ],
)
def test_corrupt_frame_is_counted_and_the_next_one_read(frame, reason):
    parser = plantower.Parser("pms5003")
    events = parser.feed(frame + GOLDEN)
    assert [e.values for e in events] == [GOLDEN_VALUES]
    assert parser.stats.errors[reason] >= 1


def test_command_acknowledgement_is_recognised_not_an_error():
    parser = plantower.Parser("pms5003")
    events = parser.feed(ACK_PASSIVE + GOLDEN)
    assert events[0] == CommandReply("pms5003", plantower.CMD_MODE, b"\x00")
    assert isinstance(events[1], Measurement)
    assert not parser.stats.errors


def test_commands_match_the_manual():
    assert plantower.COMMANDS["passive_read"] == bytes.fromhex("424de200000171")
    assert plantower.COMMANDS["passive_mode"] == bytes.fromhex("424de100000170")
    assert plantower.COMMANDS["active_mode"] == bytes.fromhex("424de100010171")
    assert plantower.COMMANDS["sleep"] == bytes.fromhex("424de400000173")
    assert plantower.COMMANDS["wake"] == bytes.fromhex("424de400010174")


@pytest.mark.parametrize("model", plantower.MODELS)
def test_encode_then_parse_round_trips_every_model(model):
    values = {"pm25_cf1": 40, "pm25_atm": 35, "pm10_atm": 50, "temp": -3.5, "rh": 61.2, "hcho": 0.012}
    layout = [n for n in plantower.LAYOUTS[model] if n]
    (event,) = plantower.Parser(model).feed(plantower.encode_frame(model, values))
    for name in layout:
        assert event.values[name] == pytest.approx(values.get(name, 0.0))
