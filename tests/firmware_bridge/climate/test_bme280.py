"""BME280 codec: the data sheet's compensation, calibration layout, chip id, bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicair.schema.errors import CivicairError
from firmware_bridge.climate import bme280
from firmware_bridge.climate.base import ClimateError, WrongDevice
from firmware_bridge.climate.i2c import I2cCompanion
from firmware_bridge.climate.simulated import EXAMPLE_CALIBRATION, FakeClock, SimBme280, SimulatedBus

CAL = EXAMPLE_CALIBRATION


def test_datasheet_worked_example_temperature_and_pressure():
    # BMP280 data sheet, section 3.12 (the BME280 shares these formulas): dig_T1..dig_P9
    # = 27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000;
    # adc_T = 519888 gives t_fine = 128422 and T = 25.08 °C; adc_P = 415148 gives
    # p = 100653.27 Pa with the floating-point formula.
    assert bme280.t_fine(CAL, 519888) == 128422
    assert bme280.compensate_t(CAL, 519888) == 2508
    p_q24_8 = bme280.compensate_p(CAL, 415148, 128422)
    # The 64-bit integer formula, run as C (gcc, the data sheet's code verbatim),
    # returns 25767233, i.e. 100653.25 Pa: 0.02 Pa from the floating-point result.
    assert p_q24_8 == 25767233
    assert p_q24_8 / 256 == pytest.approx(100653.27, abs=0.05)


@pytest.mark.parametrize("adc_t, adc_p, t, p", [(519888, 415148, 2508, 25767233), (400000, 300000, -1264, 29090514)])
def test_integer_compensation_matches_the_datasheet_c_code(adc_t, adc_p, t, p):
    # Expected values from the data sheet's C functions compiled with gcc on x86-64
    # (BME280_compensate_T_int32, BME280_compensate_P_int64, bme280_compensate_H_int32).
    fine = bme280.t_fine(CAL, adc_t)
    assert bme280.compensate_t(CAL, adc_t) == t
    assert bme280.compensate_p(CAL, adc_p, fine) == p


@pytest.mark.parametrize("adc_t, humidity_words, expected", [
    (519888, (20000, 25000, 30000, 32768, 38000, 45000), (0, 27726, 56317, 72045, 101578, 102400)),
    (400000, (20000, 25000, 30000, 32768, 38000, 45000), (2118, 28496, 54678, 69088, 96161, 102400)),
])
def test_humidity_matches_the_datasheet_c_code(adc_t, humidity_words, expected):
    fine = bme280.t_fine(CAL, adc_t)
    assert tuple(bme280.compensate_h(CAL, h, fine) for h in humidity_words) == expected


def humidity_double(cal: bme280.Calibration, adc_h: int, fine: int) -> float:
    """The data sheet's floating-point humidity formula (section 8.1), written out here
    independently of the integer one."""
    var_h = fine - 76800.0
    var_h = (adc_h - (cal.H4 * 64.0 + cal.H5 / 16384.0 * var_h)) * (
        cal.H2 / 65536.0 * (1.0 + cal.H6 / 67108864.0 * var_h * (1.0 + cal.H3 / 67108864.0 * var_h)))
    var_h = var_h * (1.0 - cal.H1 * var_h / 524288.0)
    return min(100.0, max(0.0, var_h))


@pytest.mark.parametrize("adc_t", [400000, 470000, 519888, 560000])
@pytest.mark.parametrize("adc_h", [24000, 28000, 31000, 34000, 37000])
def test_integer_humidity_agrees_with_the_floating_point_formula(adc_t, adc_h):
    fine = bme280.t_fine(CAL, adc_t)
    assert bme280.compensate_h(CAL, adc_h, fine) / 1024 == pytest.approx(humidity_double(CAL, adc_h, fine), abs=0.05)


def test_calibration_nibbles_of_dig_h4_and_dig_h5():
    # Table 16: dig_H4 = 0xE4 [11:4] | 0xE5 [3:0]; dig_H5 = 0xE6 [11:4] | 0xE5 [7:4].
    tp, _ = bme280.calibration_bytes(CAL)
    h = bytes((0x6A, 0x01, 0x00, 0x13, 0x2D, 0x03, 0x1E))  # 0xE1..0xE7
    cal = bme280.parse_calibration(tp, h)
    assert (cal.H2, cal.H3, cal.H4, cal.H5, cal.H6) == (362, 0, 0x13D, 0x032, 30)
    negative = bme280.parse_calibration(tp, bytes((0, 0x80, 0, 0xF0, 0x0F, 0xFF, 0xE2)))
    assert (negative.H2, negative.H4, negative.H5, negative.H6) == (-32768, -241, -16, -30)  # 0xFF << 4 | 0x0 = -16


def test_calibration_round_trips_through_the_register_bytes():
    assert bme280.parse_calibration(*bme280.calibration_bytes(CAL)) == CAL


def test_calibration_of_zeros_is_refused():
    with pytest.raises(ClimateError, match="NVM was not read"):
        bme280.parse_calibration(bytes(26), bytes(7))


def companion(device, address=0x76):
    clock = FakeClock()
    bus = SimulatedBus({address: device}, clock=clock)
    return I2cCompanion("bme280", bus, address, sleep=clock.sleep), clock


def test_simulated_bme280_reads_back_through_the_shell():
    device = SimBme280(temp=23.4, rh=61.0, pressure=98_000)
    c, clock = companion(device)
    start = clock.now
    sample = c.read()
    assert sample is not None and sample.model == "bme280"
    assert sample.temp == pytest.approx(23.4, abs=0.01)
    assert sample.rh == pytest.approx(61.0, abs=0.01)
    assert sample.pressure == pytest.approx(98_000, abs=1)
    assert clock.now - start == pytest.approx(bme280.MEASURE_S)  # the one conversion wait
    assert device.conversions == 1 and not c.errors


@pytest.mark.parametrize("chip, message", [
    (0x58, "BMP280, not a BME280.*no humidity sensor"),
    (0x61, "BME680"),
    (0x42, "not a BME280's"),
])
def test_other_chips_are_refused_with_a_clear_message(chip, message):
    c, _ = companion(SimBme280(chip_id=chip))
    with pytest.raises(WrongDevice, match=message):
        c.start()
    with pytest.raises(WrongDevice):
        c.read()  # a wrong device is a configuration error, not a skipped reading


def test_a_conversion_still_running_is_a_counted_error_not_a_value():
    device = SimBme280()
    device.CONVERSION_S = 0.05  # slower than the data sheet's maximum
    c, clock = companion(device)
    assert c.read() is None
    assert c.errors == {"ClimateError": 1} and "still measuring" in c.last_error
    device.CONVERSION_S = 0.008  # a healthy part again: the next cycle reads
    assert c.read() is not None and c.samples == 1


def test_reset_values_in_the_data_registers_are_refused():
    burst = bytes((0, 0, 0, 0, 0x80, 0, 0, 0x80, 0, 0, 0x80, 0))
    with pytest.raises(ClimateError, match="reset value"):
        bme280.parse_burst(burst)


def test_decode_before_init_says_so():
    with pytest.raises(ClimateError, match="calibration not read"):
        bme280.Codec().decode([bytes(12)])


def test_reply_lengths_are_checked():
    codec = bme280.Codec()
    with pytest.raises(ClimateError, match="expected replies"):
        codec.accept_init([b"\x60", bytes(20), bytes(7)])


@settings(max_examples=300, deadline=None)
@given(chip=st.sampled_from([0x60, 0x58, 0x00, 0xFF]), tp=st.binary(min_size=26, max_size=26),
       h=st.binary(min_size=7, max_size=7), burst=st.binary(min_size=12, max_size=12))
def test_arbitrary_register_bytes_give_a_plausible_sample_or_a_clear_error(chip, tp, h, burst):
    codec = bme280.Codec()
    try:
        codec.accept_init([bytes((chip,)), tp, h])
        sample = codec.decode([burst])
    except CivicairError as exc:
        assert str(exc)
        return
    assert -40 <= sample.temp <= 85 and 0 <= sample.rh <= 100 and 30_000 <= sample.pressure <= 110_000


@settings(max_examples=200, deadline=None)
@given(replies=st.lists(st.binary(max_size=30), max_size=4))
def test_arbitrary_reply_shapes_never_crash(replies):
    codec = bme280.Codec()
    for step in (codec.accept_init, codec.decode):
        try:
            step(replies)
        except CivicairError:
            pass


@settings(max_examples=60, deadline=None)
@given(temp=st.floats(-39.0, 84.0), rh=st.floats(1.0, 99.0), pressure=st.floats(31_000.0, 109_000.0))
def test_simulated_register_map_round_trips_any_weather(temp, rh, pressure):
    c, _ = companion(SimBme280(temp=temp, rh=rh, pressure=pressure))
    sample = c.read()
    assert sample is not None, c.last_error
    # Within one ADC step: 0.01 °C; up to 0.012 %RH with this calibration (hot and dry).
    assert sample.temp == pytest.approx(temp, abs=0.011)
    assert sample.rh == pytest.approx(rh, abs=0.015)
    assert sample.pressure == pytest.approx(pressure, abs=2)
