"""TE HTU21D(F) and Silicon Labs Si7021 over I²C: one sans-IO codec (same commands).

References: TE Connectivity, *HTU21D(F) Sensor Digital Relative Humidity &
Temperature Sensor*, HPC199_6 (2017); Silicon Labs, *Si7021-A20*, rev. 1.2.
Fixed address 0x40. No-hold-master measurements (the sensor NACKs reads until it is
done, so the I²C adapter never has to tolerate clock stretching): humidity 0xF5,
temperature 0xF3; soft reset 0xFE (at most 15 ms); user register read 0xE7.

Each result is MSB, LSB, checksum. The checksum is a CRC-8 with polynomial
x^8 + x^5 + x^4 + 1 (0x131; 0x31 without its x^8 term) and init 0x00 (HTU21D
example: 0xDC -> 0x79; 0x683A -> 0x7C; 0x4E85 -> 0x6B). The two LSBs of a word are
status bits, cleared before conversion: bit 1 says which measurement it is
(1: humidity, 0: temperature; Si7021: "XXXXXX10" / "XXXXXX00"). Conversion::

    RH = -6 + 125 * S_RH / 2^16          [%], limited to 0..100 (Si7021 5.1.1)
    T  = -46.85 + 175.72 * S_T / 2^16    [°C]

Conversion time (12-bit RH, 14-bit T): HTU21D 16 + 50 ms; Si7021 12 + 10.8 ms for RH
(a humidity measurement also measures temperature) and 10.8 ms for T.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware_bridge.climate.base import (
    ClimateChecksumError,
    ClimateError,
    ClimateSample,
    Plan,
    Transfer,
    Wait,
    check_replies,
    crc8,
)

MODELS = ("htu21d", "si7021")
ADDRESSES = (0x40,)

MEASURE_RH_NO_HOLD = bytes((0xF5,))
MEASURE_T_NO_HOLD = bytes((0xF3,))
SOFT_RESET = bytes((0xFE,))
READ_USER_REGISTER = bytes((0xE7,))
RH_S = 0.025
T_S = 0.051
RESET_S = 0.015

STATUS_MASK = 0x0003
STATUS_IS_HUMIDITY = 0x0002
#: User register bits 5:3 are reserved: the Si7021 reads them as 1 (reset value 0x3A),
#: the HTU21D as 0 (reset value 0x02). Only a hint: both kinds use this codec.
RESERVED_BITS = 0b0011_1000


def crc(data: bytes) -> int:
    """CRC-8, polynomial 0x131, init 0x00."""
    return crc8(data, polynomial=0x31, init=0x00)


def word(reply: bytes, humidity_expected: bool, model: str) -> int:
    """The 16-bit result of a 3-byte reply, CRC and status bits checked, status bits cleared."""
    if len(reply) != 3:
        raise ClimateError(f"{model}: expected 3 bytes (MSB, LSB, CRC), got {len(reply)}")
    if crc(reply[:2]) != reply[2]:
        raise ClimateChecksumError(f"{model}: CRC of {reply[:2].hex()} is {crc(reply[:2]):#04x}, "
                                   f"the sensor sent {reply[2]:#04x}")
    raw = int.from_bytes(reply[:2], "big")
    is_humidity = bool(raw & STATUS_IS_HUMIDITY)
    if is_humidity != humidity_expected:
        asked, got = ("humidity", "temperature") if humidity_expected else ("temperature", "humidity")
        raise ClimateError(f"{model}: asked for {asked}, the status bits say {got}")
    return raw & ~STATUS_MASK


def humidity(word: int) -> float:
    return min(100.0, max(0.0, -6.0 + 125.0 * word / 65536.0))


def temperature(word: int) -> float:
    return -46.85 + 175.72 * word / 65536.0


def kind_hint(user_register: int) -> str:
    """``si7021`` or ``htu21d`` from the reserved bits of the user register."""
    return "si7021" if user_register & RESERVED_BITS == RESERVED_BITS else "htu21d"


class Codec:
    """HTU21D/Si7021 codec: soft reset and user register once, then RH and T no-hold."""

    INIT_PLAN: Plan = (Transfer(SOFT_RESET), Wait(RESET_S), Transfer(READ_USER_REGISTER, 1))
    MEASURE_PLAN: Plan = (Transfer(MEASURE_RH_NO_HOLD), Wait(RH_S), Transfer(read=3),
                          Transfer(MEASURE_T_NO_HOLD), Wait(T_S), Transfer(read=3))

    def __init__(self, model: str = "htu21d") -> None:
        if model not in MODELS:
            raise ValueError(f"not an HTU21D/Si7021 model: {model!r}")
        self.model = model
        self.user_register: int | None = None

    def init_plan(self) -> Plan:
        return self.INIT_PLAN

    def accept_init(self, replies: Sequence[bytes]) -> None:
        check_replies(self.INIT_PLAN, replies, f"{self.model} user register")
        self.user_register = replies[0][0]

    def measure_plan(self) -> Plan:
        return self.MEASURE_PLAN

    def decode(self, replies: Sequence[bytes]) -> ClimateSample:
        check_replies(self.MEASURE_PLAN, replies, f"{self.model} measurement")
        rh = humidity(word(replies[0], True, self.model))
        temp = temperature(word(replies[1], False, self.model))
        return ClimateSample(model=self.model, temp=round(temp, 3), rh=round(rh, 3))
