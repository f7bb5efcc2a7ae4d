"""What every temperature/humidity codec shares: command plans, samples, errors, CRC-8.

A codec never touches a bus. It hands the I/O shell (:mod:`firmware_bridge.climate.i2c`)
a *plan*, a tuple of :class:`Transfer` and :class:`Wait` steps, and gets back the bytes
each reading transfer returned, in order. A :class:`Transfer` with both a write and a
read is one combined I²C transaction (repeated start, as a register read needs); a
:class:`Wait` between two transfers is the conversion time the datasheet asks for.

No module in this package except ``i2c`` and ``iio`` does I/O; none imports a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from civicair.schema.errors import FatalError, RecoverableError
from firmware_bridge.errors import ChecksumError


class ClimateError(RecoverableError):
    """A reading that cannot be used (bad bytes, not ready, implausible): skip and count it."""


class ClimateChecksumError(ChecksumError, ClimateError):
    """A Sensirion/TE word whose CRC-8 does not match."""


class WrongDevice(FatalError):
    """The device at the configured address is not the configured kind (or cannot serve)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """One I²C transaction: write ``write`` (may be empty), then read ``read`` bytes."""

    write: bytes = b""
    read: int = 0

    def __post_init__(self) -> None:
        if not self.write and self.read <= 0:
            raise ValueError("a transfer writes, reads, or both")
        if self.read < 0:
            raise ValueError(f"cannot read {self.read} bytes")


@dataclass(frozen=True, slots=True)
class Wait:
    """Let the device convert: at least ``seconds`` before the next transfer."""

    seconds: float


Step = Transfer | Wait
Plan = tuple[Step, ...]


def reads_in(plan: Plan) -> list[int]:
    """How many bytes each reading transfer of ``plan`` expects, in order."""
    return [s.read for s in plan if isinstance(s, Transfer) and s.read]


def check_replies(plan: Plan, replies: Sequence[bytes], what: str) -> None:
    """Raise :class:`ClimateError` unless ``replies`` match the reads ``plan`` asked for."""
    want = reads_in(plan)
    got = [len(r) for r in replies]
    if got != want:
        raise ClimateError(f"{what}: expected replies of {want} bytes, got {got}")


@dataclass(frozen=True, slots=True)
class ClimateSample:
    """One reading of a temperature/humidity companion.

    ``temp`` in °C, ``rh`` in % (relative humidity over water), ``pressure`` in Pa
    (BME280 only). ``model`` is the configured kind (``bme280``, ``sht3x``, ``dht22``…).
    """

    model: str
    temp: float | None
    rh: float | None
    pressure: float | None = None


def crc8(data: bytes, polynomial: int = 0x31, init: int = 0xFF) -> int:
    """CRC-8, MSB first, no reflection, no final XOR.

    Sensirion SHT3x/SHT4x: polynomial 0x31 (x^8 + x^5 + x^4 + 1), init 0xFF; the
    SHT3x datasheet's example: CRC(0xBEEF) = 0x92. TE HTU21D and Silicon Labs Si7021
    use the same polynomial (written 0x131 with its x^8 term) with init 0x00.
    """
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ polynomial) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def sensirion_words(data: bytes, what: str) -> list[int]:
    """16-bit big-endian words, each followed by its CRC-8 (0x31, init 0xFF)."""
    if len(data) % 3:
        raise ClimateError(f"{what}: {len(data)} bytes is not a whole number of word+CRC triplets")
    words = []
    for i in range(0, len(data), 3):
        word, crc = data[i : i + 2], data[i + 2]
        if crc8(word) != crc:
            raise ClimateChecksumError(
                f"{what}: CRC of word {word.hex()} is {crc8(word):#04x}, the sensor sent {crc:#04x}")
        words.append(int.from_bytes(word, "big"))
    return words
