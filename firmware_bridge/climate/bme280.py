"""Bosch BME280 (temperature, humidity, pressure) over I²C: a sans-IO codec.

Reference: Bosch Sensortec, *BME280 data sheet*, BST-BME280-DS002, rev. 1.6 (2018-09):
register map (section 5.3/5.4), trimming parameter readout (4.2.2, table 16) and the
integer compensation formulas (4.2.3: 32-bit temperature and humidity, 64-bit
pressure; the 32-bit pressure alternative of 8.2 is not used). Temperature and
pressure compensation are the BMP280's (BMP280 data sheet, section 3.11.3), whose
section 3.12 works an example through them; the tests check against it.

Measurement: forced mode, oversampling x1 for T, P and RH, IIR filter off, the data
sheet's "weather monitoring" setting (section 3.5.1); one conversion takes at most
9.3 ms (section 9.1). The chip id (register 0xD0) must read 0x60: a BMP280 (0x58,
samples 0x56/0x57) has no humidity sensor and is refused, a BME680 (0x61) speaks
another register map.

Sans-IO: plans and byte decoding only (see :mod:`firmware_bridge.climate.base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

from firmware_bridge.climate.base import (
    ClimateError,
    ClimateSample,
    Plan,
    Transfer,
    Wait,
    WrongDevice,
    check_replies,
)

MODELS = ("bme280",)
#: SDO to GND: 0x76; SDO to VDDIO: 0x77 (most breakout boards: 0x76 or a jumper).
ADDRESSES = (0x76, 0x77)

REG_CALIB_TP = 0x88  # 0x88..0xA1: dig_T1..dig_P9, reserved 0xA0, dig_H1 at 0xA1
CALIB_TP_LEN = 26
REG_CALIB_H = 0xE1  # 0xE1..0xE7: dig_H2..dig_H6
CALIB_H_LEN = 7
REG_ID = 0xD0
REG_RESET = 0xE0
RESET_WORD = 0xB6
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
#: Burst read from status (0xF3) to hum_lsb (0xFE): status, ctrl_meas, config, a
#: reserved byte, press[3], temp[3], hum[2].
BURST_LEN = 12

CHIP_ID = 0x60
OTHER_CHIPS = {
    0x56: "a BMP280 (engineering sample)",
    0x57: "a BMP280 (engineering sample)",
    0x58: "a BMP280",
    0x61: "a BME680",
}

OSRS_H_X1 = 0b001
#: ctrl_meas: osrs_t x1 (bits 7:5), osrs_p x1 (bits 4:2), mode forced (bits 1:0 = 01).
CTRL_MEAS_FORCED_X1 = (0b001 << 5) | (0b001 << 2) | 0b01
#: Data sheet section 9.1: 1.25 + 2.3 + (2.3 + 0.575) + (2.3 + 0.575) = 9.3 ms, max.
MEASURE_S = 0.010
STATUS_MEASURING = 0x08
#: What the data registers hold when a measurement was skipped (oversampling 0) or
#: none ran since reset.
SKIPPED_20BIT = 0x80000
SKIPPED_16BIT = 0x8000

#: Operating range (data sheet table 1): outside it the part is not specified, so a
#: value there means corrupt calibration or raw bytes, not weather.
TEMP_RANGE_C = (-40.0, 85.0)
PRESSURE_RANGE_PA = (30_000.0, 110_000.0)
HUMIDITY_MAX_Q10 = 419430400  # 100 %RH in the humidity formula's Q22.10 << 12


@dataclass(frozen=True, slots=True)
class Calibration:
    """The trimming parameters ("dig_*") of data sheet table 16."""

    T1: int
    T2: int
    T3: int
    P1: int
    P2: int
    P3: int
    P4: int
    P5: int
    P6: int
    P7: int
    P8: int
    P9: int
    H1: int
    H2: int
    H3: int
    H4: int
    H5: int
    H6: int


def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


def parse_calibration(tp: bytes, h: bytes) -> Calibration:
    """Table 16: 0x88..0xA1 (``tp``, 26 bytes) and 0xE1..0xE7 (``h``, 7 bytes)."""
    if len(tp) != CALIB_TP_LEN or len(h) != CALIB_H_LEN:
        raise ClimateError(f"BME280 calibration: expected {CALIB_TP_LEN} + {CALIB_H_LEN} bytes, "
                           f"got {len(tp)} + {len(h)}")
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = (
        int.from_bytes(tp[i : i + 2], "little", signed=i not in (0, 6)) for i in range(0, 24, 2))
    cal = Calibration(
        T1=t1, T2=t2, T3=t3, P1=p1, P2=p2, P3=p3, P4=p4, P5=p5, P6=p6, P7=p7, P8=p8, P9=p9,
        H1=tp[25],
        H2=int.from_bytes(h[0:2], "little", signed=True),
        H3=h[2],
        # dig_H4: 0xE4 holds bits 11:4, 0xE5 bits 3:0; dig_H5: 0xE5 bits 7:4 hold its
        # bits 3:0, 0xE6 bits 11:4. Both are signed 12-bit values.
        H4=_s8(h[3]) * 16 | (h[4] & 0x0F),
        H5=_s8(h[5]) * 16 | (h[4] >> 4),
        H6=_s8(h[6]),
    )
    if cal.T1 == 0 or cal.P1 == 0 or len(set(tp[:24])) == 1:
        raise ClimateError(f"BME280 calibration reads as {tp[:4].hex()}…: the NVM was not read "
                           "(bus error or not a BME280)")
    return cal


def calibration_bytes(cal: Calibration) -> tuple[bytes, bytes]:
    """The inverse of :func:`parse_calibration` (for the simulated device)."""
    words = astuple(cal)[:12]
    tp = b"".join(w.to_bytes(2, "little", signed=i not in (0, 3)) for i, w in enumerate(words))
    tp += b"\x00" + bytes((cal.H1,))
    h4, h5 = cal.H4 & 0xFFF, cal.H5 & 0xFFF
    h = cal.H2.to_bytes(2, "little", signed=True) + bytes((cal.H3, h4 >> 4, (h4 & 0x0F) | ((h5 & 0x0F) << 4),
                                                          h5 >> 4, cal.H6 & 0xFF))
    return tp, h


# -- the data sheet's integer compensation (section 4.2.3) -------------------------------
# Python integers do not overflow; ``>>`` is an arithmetic shift as in the data sheet's
# C on every platform Bosch targets. The one division truncates toward zero as C does.
def t_fine(cal: Calibration, adc_t: int) -> int:
    var1 = (((adc_t >> 3) - (cal.T1 << 1)) * cal.T2) >> 11
    var2 = (((((adc_t >> 4) - cal.T1) * ((adc_t >> 4) - cal.T1)) >> 12) * cal.T3) >> 14
    return var1 + var2


def compensate_t(cal: Calibration, adc_t: int) -> int:
    """BME280_compensate_T_int32: temperature in 0.01 °C ("5123" is 51.23 °C)."""
    return (t_fine(cal, adc_t) * 5 + 128) >> 8


def _div_trunc(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def compensate_p(cal: Calibration, adc_p: int, fine: int) -> int:
    """BME280_compensate_P_int64: pressure in Pa as Q24.8 ("24674867" is 96386.2 Pa); 0 when
    the calibration makes it undefined (the data sheet's division-by-zero guard)."""
    var1 = fine - 128000
    var2 = var1 * var1 * cal.P6
    var2 = var2 + ((var1 * cal.P5) << 17)
    var2 = var2 + (cal.P4 << 35)
    var1 = ((var1 * var1 * cal.P3) >> 8) + ((var1 * cal.P2) << 12)
    var1 = (((1 << 47) + var1) * cal.P1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _div_trunc(((p << 31) - var2) * 3125, var1)
    var1 = (cal.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.P7 << 4)


def compensate_h(cal: Calibration, adc_h: int, fine: int) -> int:
    """bme280_compensate_H_int32: relative humidity in %RH as Q22.10 ("47445" is 46.333 %RH)."""
    v = fine - 76800
    v = ((((adc_h << 14) - (cal.H4 << 20) - (cal.H5 * v)) + 16384) >> 15) * (
        ((((((v * cal.H6) >> 10) * (((v * cal.H3) >> 11) + 32768)) >> 10) + 2097152) * cal.H2 + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal.H1) >> 4)
    v = min(max(v, 0), HUMIDITY_MAX_Q10)
    return v >> 12


@dataclass(frozen=True, slots=True)
class Raw:
    """The three ADC words of one burst read."""

    adc_p: int
    adc_t: int
    adc_h: int


def parse_burst(data: bytes) -> Raw:
    """The 12 bytes from 0xF3: status must say the conversion is over; no skipped value."""
    if len(data) != BURST_LEN:
        raise ClimateError(f"BME280 data: expected {BURST_LEN} bytes from 0xF3, got {len(data)}")
    if data[0] & STATUS_MEASURING:
        raise ClimateError("BME280 still measuring: the conversion took longer than the data sheet's maximum")
    adc_p = (data[4] << 12) | (data[5] << 4) | (data[6] >> 4)
    adc_t = (data[7] << 12) | (data[8] << 4) | (data[9] >> 4)
    adc_h = (data[10] << 8) | data[11]
    if adc_t == SKIPPED_20BIT or adc_p == SKIPPED_20BIT or adc_h == SKIPPED_16BIT:
        raise ClimateError("BME280 data registers hold their reset value: no measurement ran "
                           "(the forced-mode write did not reach the sensor)")
    return Raw(adc_p, adc_t, adc_h)


def compensate(cal: Calibration, raw: Raw, model: str = "bme280") -> ClimateSample:
    """Temperature, humidity and pressure from raw words; implausible results raise."""
    fine = t_fine(cal, raw.adc_t)
    temp = compensate_t(cal, raw.adc_t) / 100
    if not TEMP_RANGE_C[0] <= temp <= TEMP_RANGE_C[1]:
        raise ClimateError(f"BME280 temperature {temp:.2f} °C is outside the part's range "
                           f"{TEMP_RANGE_C[0]:g}..{TEMP_RANGE_C[1]:g} °C: calibration or raw data corrupt")
    pressure = compensate_p(cal, raw.adc_p, fine) / 256
    if not PRESSURE_RANGE_PA[0] <= pressure <= PRESSURE_RANGE_PA[1]:
        raise ClimateError(f"BME280 pressure {pressure:.0f} Pa is outside the part's range "
                           "300..1100 hPa: calibration or raw data corrupt")
    rh = compensate_h(cal, raw.adc_h, fine) / 1024
    return ClimateSample(model=model, temp=temp, rh=round(rh, 3), pressure=round(pressure, 2))


class Codec:
    """BME280 codec: ``init_plan``/``accept_init`` once, then ``measure_plan``/``decode``."""

    #: Read chip id first, then both calibration blocks (register reads only: nothing
    #: is written to a device that may turn out not to be a BME280).
    INIT_PLAN: Plan = (
        Transfer(bytes((REG_ID,)), 1),
        Transfer(bytes((REG_CALIB_TP,)), CALIB_TP_LEN),
        Transfer(bytes((REG_CALIB_H,)), CALIB_H_LEN),
    )
    #: ctrl_hum must be written before ctrl_meas (a ctrl_hum change takes effect only
    #: with the next ctrl_meas write, section 5.4.3); one write of register/value pairs.
    MEASURE_PLAN: Plan = (
        Transfer(bytes((REG_CTRL_HUM, OSRS_H_X1, REG_CTRL_MEAS, CTRL_MEAS_FORCED_X1))),
        Wait(MEASURE_S),
        Transfer(bytes((REG_STATUS,)), BURST_LEN),
    )

    def __init__(self, model: str = "bme280") -> None:
        if model not in MODELS:
            raise ValueError(f"not a BME280 model: {model!r}")
        self.model = model
        self.calibration: Calibration | None = None

    def init_plan(self) -> Plan:
        return self.INIT_PLAN

    def accept_init(self, replies: Sequence[bytes]) -> None:
        check_replies(self.INIT_PLAN, replies, "BME280 init")
        chip = replies[0][0]
        if chip != CHIP_ID:
            if chip in OTHER_CHIPS:
                extra = (" It measures pressure and temperature but has no humidity sensor, which the "
                         "PM corrections need: use a BME280 (chip id 0x60) or an SHT3x/SHT4x."
                         if chip in (0x56, 0x57, 0x58) else " Its register map differs: not supported.")
                raise WrongDevice(f"chip id {chip:#04x}: this is {OTHER_CHIPS[chip]}, not a BME280.{extra}")
            raise WrongDevice(f"chip id {chip:#04x} is not a BME280's (0x60): another device answers "
                              "at this address")
        self.calibration = parse_calibration(replies[1], replies[2])

    def measure_plan(self) -> Plan:
        return self.MEASURE_PLAN

    def decode(self, replies: Sequence[bytes]) -> ClimateSample:
        if self.calibration is None:
            raise ClimateError("BME280: calibration not read yet (run the init plan first)")
        check_replies(self.MEASURE_PLAN, replies, "BME280 measurement")
        return compensate(self.calibration, parse_burst(replies[0]), self.model)
