"""SHT3x, SHT4x and HTU21D/Si7021 codecs: data sheet CRC examples and conversions, bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicair.schema.errors import CivicairError
from firmware_bridge.climate import htu21d, sht3x, sht4x
from firmware_bridge.climate.base import ClimateChecksumError, ClimateError, crc8, sensirion_words
from firmware_bridge.climate.i2c import I2cCompanion
from firmware_bridge.climate.simulated import (
    FakeClock,
    SimHtu21d,
    SimSht3x,
    SimSht4x,
    SimulatedBus,
    sensirion_triplets,
)


def test_sensirion_crc_example_from_the_datasheet():
    # SHT3x-DIS data sheet, "Checksum Calculation": CRC-8 (0x31, init 0xFF) of 0xBEEF is 0x92.
    assert crc8(bytes.fromhex("beef")) == 0x92


@pytest.mark.parametrize("data, crc", [("dc", 0x79), ("683a", 0x7C), ("4e85", 0x6B)])
def test_htu21d_crc_examples_from_the_datasheet(data, crc):
    # HTU21D(F) data sheet, "CRC checksum" examples (polynomial 0x131, init 0x00).
    assert htu21d.crc(bytes.fromhex(data)) == crc


def test_sht3x_conversion_by_hand():
    # T = -45 + 175 * 26214 / 65535 = -45 + 70 = 25 °C (26214 / 65535 = 0.4);
    # RH = 100 * 45875 / 65535 = 70.0008 %.
    codec = sht3x.Codec()
    sample = codec.decode([bytes.fromhex("6666") + bytes((crc8(bytes.fromhex("6666")),))
                           + bytes.fromhex("b333") + bytes((crc8(bytes.fromhex("b333")),))])
    assert sample.temp == pytest.approx(25.0, abs=1e-3)
    assert sample.rh == pytest.approx(70.0008, abs=1e-3)
    assert sht3x.temperature(0) == -45 and sht3x.temperature(65535) == 130


def test_sht4x_conversion_by_hand_and_cropping():
    # RH = -6 + 125 * 32768 / 65535 = 56.501 %; the raw extremes crop to 0 and 100 %.
    assert sht4x.humidity(32768) == pytest.approx(56.501, abs=1e-3)
    assert sht4x.humidity(0) == 0.0 and sht4x.humidity(65535) == 100.0
    codec = sht4x.Codec()
    sample = codec.decode([sensirion_triplets(0x6666, 0x8000)])
    assert sample.temp == pytest.approx(25.0, abs=1e-3) and sample.rh == pytest.approx(56.501, abs=1e-3)


def test_htu21d_conversions_by_hand():
    # Status bits cleared first. T = -46.85 + 175.72 * 0x6838 / 65536
    # = -46.85 + 175.72 * 0.4071044921875 = 24.6864 °C;
    # RH = -6 + 125 * 0x4E84 / 65536 = -6 + 125 * 0.30670166015625 = 32.3377 %.
    assert htu21d.temperature(0x6838) == pytest.approx(24.6864, abs=1e-4)
    assert htu21d.humidity(0x4E84) == pytest.approx(32.3377, abs=1e-4)
    # Limited to 0..100 % (Si7021 data sheet 5.1.1): the raw extremes would be -6 and 119 %.
    assert htu21d.humidity(0) == 0.0 and htu21d.humidity(0xFFFC) == 100.0


def htu_reply(word: int) -> bytes:
    raw = word.to_bytes(2, "big")
    return raw + bytes((htu21d.crc(raw),))


def test_htu21d_decode_checks_status_bits_and_crc():
    codec = htu21d.Codec("si7021")
    sample = codec.decode([htu_reply(0x4E86), htu_reply(0x6838)])
    assert sample.rh == pytest.approx(32.3377, abs=1e-3) and sample.temp == pytest.approx(24.6864, abs=1e-3)
    with pytest.raises(ClimateError, match="asked for humidity, the status bits say temperature"):
        codec.decode([htu_reply(0x4E84), htu_reply(0x6838)])
    bad = bytearray(htu_reply(0x4E86))
    bad[2] ^= 0xFF
    with pytest.raises(ClimateChecksumError, match="CRC"):
        codec.decode([bytes(bad), htu_reply(0x6838)])


def test_sensirion_words_refuse_a_bad_crc_and_a_partial_word():
    with pytest.raises(ClimateChecksumError, match="0x92"):
        sensirion_words(bytes.fromhex("beef93"), "test")
    with pytest.raises(ClimateError, match="triplets"):
        sensirion_words(bytes.fromhex("beef92be"), "test")


@pytest.mark.parametrize("module", [sht3x, sht4x, htu21d])
@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.binary(max_size=8), max_size=3))
def test_arbitrary_bytes_give_a_sample_or_a_clear_error(module, data):
    codec = module.Codec(module.MODELS[0])
    try:
        codec.accept_init(data)
    except CivicairError as exc:
        assert str(exc)
    try:
        sample = codec.decode(data)
    except CivicairError as exc:
        assert str(exc)
        return
    assert -47 <= sample.temp <= 130 and 0 <= sample.rh <= 100


@pytest.mark.parametrize("module", [sht3x, sht4x, htu21d])
@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=6, max_size=6))
def test_arbitrary_bytes_of_the_right_length(module, data):
    codec = module.Codec(module.MODELS[0])
    replies = [data] if module is not htu21d else [data[:3], data[3:]]
    try:
        codec.decode(replies)
    except CivicairError:
        pass


def on_bus(kind, device, address):
    clock = FakeClock()
    bus = SimulatedBus({address: device}, clock=clock)
    return I2cCompanion(kind, bus, address, sleep=clock.sleep), clock


@pytest.mark.parametrize("kind, device, address", [
    ("sht3x", SimSht3x(temp=-5.2, rh=88.8), 0x44),
    ("sht4x", SimSht4x(temp=30.1, rh=12.3), 0x45),
    ("htu21d", SimHtu21d(temp=18.0, rh=45.5), 0x40),
    ("si7021", SimHtu21d(temp=18.0, rh=45.5, model="si7021"), 0x40),
])
def test_simulated_parts_read_back_through_the_shell(kind, device, address):
    c, _ = on_bus(kind, device, address)
    sample = c.read()
    assert sample is not None and sample.model == kind
    assert sample.temp == pytest.approx(device.temp, abs=0.01)
    assert sample.rh == pytest.approx(device.rh, abs=0.01)
    assert not c.errors


def test_sht3x_init_soft_resets_and_reads_the_status():
    device = SimSht3x()
    c, _ = on_bus("sht3x", device, 0x44)
    c.start()
    assert c.codec.status == 0x0010  # "reset detected", heater off, alert cleared


def test_sht4x_init_reads_the_serial_number():
    c, _ = on_bus("sht4x", SimSht4x(serial=0x12345678), 0x44)
    c.start()
    assert c.codec.serial == 0x12345678


def test_a_corrupted_word_is_counted_and_the_next_reading_is_fine():
    device = SimSht3x(temp=20.0, rh=50.0)
    c, _ = on_bus("sht3x", device, 0x44)
    c.start()
    device.corrupt_next = 1
    assert c.read() is None and c.errors == {"ClimateChecksumError": 1}
    assert c.read() is not None and c.samples == 1


def test_reading_before_the_conversion_ends_is_a_nack_counted_as_an_io_error():
    device = SimHtu21d(model="htu21d")
    c, clock = on_bus("htu21d", device, 0x40)
    c.start()
    device_slow = 0.2
    original = device.write

    def slow_write(data):
        original(data)
        device.ready_at = clock.now + device_slow

    device.write = slow_write  # type: ignore[method-assign]
    assert c.read() is None and c.errors == {"EREMOTEIO": 1}


def test_wrong_kind_at_an_address_does_not_start():
    c, _ = on_bus("sht3x", SimSht4x(), 0x44)
    with pytest.raises(ClimateError, match="no answer"):
        c.start()
    assert c.read() is None and sum(c.errors.values()) == 1


def test_htu21d_and_si7021_are_told_apart_by_the_user_register():
    assert htu21d.kind_hint(0x3A) == "si7021" and htu21d.kind_hint(0x02) == "htu21d"


@pytest.mark.parametrize("kind, make, address", [
    ("sht3x", SimSht3x, 0x44), ("sht4x", SimSht4x, 0x44), ("htu21d", SimHtu21d, 0x40)])
@settings(max_examples=40, deadline=None)
@given(temp=st.floats(-39.0, 84.0), rh=st.floats(0.0, 100.0))
def test_simulated_parts_round_trip_any_weather(kind, make, address, temp, rh):
    c, _ = on_bus(kind, make(temp=temp, rh=rh), address)
    sample = c.read()
    assert sample is not None, c.last_error
    # One raw step: 175/65535 °C and 125/65535 %RH (the HTU21D's 14/12-bit words are coarser).
    step_t, step_rh = (0.011, 0.008) if kind == "htu21d" else (0.003, 0.002)
    assert sample.temp == pytest.approx(temp, abs=step_t)
    assert sample.rh == pytest.approx(rh, abs=step_rh)
