"""Sensirion SHT4x (SHT40/41/43/45) over I²C: a sans-IO codec.

Reference: Sensirion, *Datasheet SHT4x*, version 6.x (2021-2023): measure T & RH with
high precision (high repeatability), command 0xFD, at most 8.3 ms; soft reset 0x94,
at most 1 ms; serial number 0x89 (two words). Words and CRC-8 as the SHT3x
(polynomial 0x31, init 0xFF; CRC(0xBEEF) = 0x92). "Conversion of Signal Output"::

    T  = -45 + 175 * S_T  / (2^16 - 1)   [°C]
    RH =  -6 + 125 * S_RH / (2^16 - 1)   [%], cropped to 0..100 as the data sheet advises

Addresses: 0x44 (SHT4x-A), 0x45 (-B), 0x46 (-C).
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware_bridge.climate.base import ClimateSample, Plan, Transfer, Wait, check_replies, sensirion_words

MODELS = ("sht4x",)
ADDRESSES = (0x44, 0x45, 0x46)

MEASURE_HIGH = bytes((0xFD,))
SOFT_RESET = bytes((0x94,))
READ_SERIAL = bytes((0x89,))
MEASURE_S = 0.009
RESET_S = 0.002
SERIAL_S = 0.002


def temperature(word: int) -> float:
    """°C from the raw temperature word."""
    return -45.0 + 175.0 * word / 65535.0


def humidity(word: int) -> float:
    """%RH from the raw humidity word, cropped to 0..100."""
    return min(100.0, max(0.0, -6.0 + 125.0 * word / 65535.0))


class Codec:
    """SHT4x codec: soft reset and serial number once, then high-precision measurements."""

    INIT_PLAN: Plan = (Transfer(SOFT_RESET), Wait(RESET_S), Transfer(READ_SERIAL), Wait(SERIAL_S),
                       Transfer(read=6))
    MEASURE_PLAN: Plan = (Transfer(MEASURE_HIGH), Wait(MEASURE_S), Transfer(read=6))

    def __init__(self, model: str = "sht4x") -> None:
        if model not in MODELS:
            raise ValueError(f"not an SHT4x model: {model!r}")
        self.model = model
        self.serial: int | None = None

    def init_plan(self) -> Plan:
        return self.INIT_PLAN

    def accept_init(self, replies: Sequence[bytes]) -> None:
        check_replies(self.INIT_PLAN, replies, "SHT4x serial number")
        high, low = sensirion_words(replies[0], "SHT4x serial number")
        self.serial = high << 16 | low

    def measure_plan(self) -> Plan:
        return self.MEASURE_PLAN

    def decode(self, replies: Sequence[bytes]) -> ClimateSample:
        check_replies(self.MEASURE_PLAN, replies, "SHT4x measurement")
        t_word, rh_word = sensirion_words(replies[0], "SHT4x measurement")
        return ClimateSample(model=self.model, temp=round(temperature(t_word), 3),
                             rh=round(humidity(rh_word), 3))
