"""Sensirion SHT3x (SHT30/31/35) over I²C: a sans-IO codec.

Reference: Sensirion, *Datasheet SHT3x-DIS* (version 7, 2022, and earlier): single
shot measurement without clock stretching, high repeatability, command 0x2400
("Measurement Commands for Single Shot Data Acquisition Mode"), at most 15.5 ms (15 ms
in earlier versions; "Timing Specifications"); soft reset 0x30A2, at most 1.5 ms;
status register 0xF32D. Every 16-bit word comes with a CRC-8 ("Checksum
Calculation"): polynomial 0x31, init 0xFF, no final XOR, example CRC(0xBEEF) = 0x92.
"Conversion of Signal Output"::

    T  = -45 + 175 * S_T  / (2^16 - 1)   [°C]
    RH =       100 * S_RH / (2^16 - 1)   [%]

Reading before the conversion is over is answered with a NACK: the I/O shell sees an
I/O error, counts it and tries the next time.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware_bridge.climate.base import (
    ClimateError,
    ClimateSample,
    Plan,
    Transfer,
    Wait,
    check_replies,
    sensirion_words,
)

MODELS = ("sht3x",)
#: ADDR pin low: 0x44; high: 0x45.
ADDRESSES = (0x44, 0x45)

MEASURE_HIGH = bytes((0x24, 0x00))  # single shot, high repeatability, no clock stretching
SOFT_RESET = bytes((0x30, 0xA2))
READ_STATUS = bytes((0xF3, 0x2D))
MEASURE_S = 0.016
RESET_S = 0.002

STATUS_ALERT = 1 << 15
STATUS_HEATER = 1 << 13
STATUS_RESET_DETECTED = 1 << 4
STATUS_COMMAND_FAILED = 1 << 1
STATUS_WRITE_CRC_FAILED = 1 << 0


def temperature(word: int) -> float:
    """°C from the raw temperature word."""
    return -45.0 + 175.0 * word / 65535.0


def humidity(word: int) -> float:
    """%RH from the raw humidity word."""
    return 100.0 * word / 65535.0


class Codec:
    """SHT3x codec: soft reset and a status read once, then single-shot measurements."""

    INIT_PLAN: Plan = (Transfer(SOFT_RESET), Wait(RESET_S), Transfer(READ_STATUS), Transfer(read=3))
    MEASURE_PLAN: Plan = (Transfer(MEASURE_HIGH), Wait(MEASURE_S), Transfer(read=6))

    def __init__(self, model: str = "sht3x") -> None:
        if model not in MODELS:
            raise ValueError(f"not an SHT3x model: {model!r}")
        self.model = model
        self.status: int | None = None

    def init_plan(self) -> Plan:
        return self.INIT_PLAN

    def accept_init(self, replies: Sequence[bytes]) -> None:
        check_replies(self.INIT_PLAN, replies, "SHT3x status")
        (self.status,) = sensirion_words(replies[0], "SHT3x status")
        if self.status & STATUS_HEATER:
            # A heater left on (a previous program) warms the sensor: RH reads low.
            raise ClimateError("SHT3x heater is on after a soft reset: the sensor did not reset")

    def measure_plan(self) -> Plan:
        return self.MEASURE_PLAN

    def decode(self, replies: Sequence[bytes]) -> ClimateSample:
        check_replies(self.MEASURE_PLAN, replies, "SHT3x measurement")
        t_word, rh_word = sensirion_words(replies[0], "SHT3x measurement")
        return ClimateSample(model=self.model, temp=round(temperature(t_word), 3),
                             rh=round(humidity(rh_word), 3))
