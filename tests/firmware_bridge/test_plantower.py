"""Plantower parser: golden frames, three ways of feeding, garbage, hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.sensors import plantower
from firmware_bridge.sensors.base import CommandReply, Measurement
from tests.firmware_bridge.feeding import feeds

# Hand-built from the PMS5003 manual: header 42 4D, length 28, 13 words, checksum.
# Words: pm1_cf1=5 pm25_cf1=12 pm10_cf1=15 pm1_atm=4 pm25_atm=11 pm10_atm=14
#        n0_3=1203 n0_5=350 n1_0=60 n2_5=8 n5_0=2 n10_0=1 reserved=0x9100
GOLDEN = bytes.fromhex(
    "424d001c" "0005" "000c" "000f" "0004" "000b" "000e"
    "04b3" "015e" "003c" "0008" "0002" "0001" "9100" "02d6"
)
GOLDEN_VALUES = {
    "pm1_cf1": 5, "pm25_cf1": 12, "pm10_cf1": 15, "pm1_atm": 4, "pm25_atm": 11, "pm10_atm": 14,
    "n0_3": 1203, "n0_5": 350, "n1_0": 60, "n2_5": 8, "n5_0": 2, "n10_0": 1,
}
ACK_PASSIVE = bytes.fromhex("424d0004e1000174")  # reply to "passive mode", from the manual


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


def test_random_bytes_between_frames_are_skipped():
    import random

    rng = random.Random(7)
    stream = b""
    for _ in range(50):
        stream += rng.randbytes(rng.randint(0, 40)) + GOLDEN
    parser = plantower.Parser("pms5003")
    measurements = [e for e in parser.feed(stream) if isinstance(e, Measurement)]
    # Random bytes may by chance hold a header; they can never hold a valid frame
    # with our values, so exactly the 50 real frames come out.
    assert len(measurements) == 50
    assert all(m.values == GOLDEN_VALUES for m in measurements)
    assert parser.stats.skipped_bytes > 0


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


def test_buffer_stays_capped_on_endless_header_fragments():
    parser = plantower.Parser("pms5003")
    for _ in range(1000):
        parser.feed(b"\x42\x4d\x00")
    assert len(parser._buf) <= plantower.MAX_BUFFER


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.binary(max_size=400), st.integers(1, 64))
def test_parser_never_raises_and_recovers_at_the_next_frame(before, after, chunk):
    parser = plantower.Parser("pms5003")
    # Padding longer than any frame ends whatever partial frame the garbage began.
    stream = before + bytes(plantower.MAX_BUFFER) + GOLDEN + after
    events = []
    for i in range(0, len(stream), chunk):
        events += parser.feed(stream[i : i + chunk])
    assert any(isinstance(e, Measurement) and e.values == GOLDEN_VALUES for e in events)
