"""Plantower PMS5003 / PMS7003 / PMSA003 / PMS5003T / PMS5003ST over UART.

Frame (datasheet "PMS5003 series data manual", appendix I)::

    0x42 0x4D  len_hi len_lo  data words (big-endian u16) ...  chk_hi chk_lo

``len`` counts the bytes after itself, checksum included; the checksum is the
16-bit sum of every byte before it. Data frames are 32 bytes (len 28, 13 words)
or 40 bytes for the PMS5003ST (len 36, 17 words); a command is acknowledged by
an 8-byte frame (len 4) that echoes the command.

Sans-IO: :class:`Parser` only buffers and decodes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from civicair.schema import sensors as schema_sensors
from firmware_bridge.sensors.base import CommandReply, Event, Measurement, ParserStats
from firmware_bridge.sensors.framing import FrameReader

BAUD_RATE = 9600
#: The models of this family, as the schema lists them (``civicair.schema.sensors``).
MODELS: tuple[str, ...] = schema_sensors.FAMILIES["plantower"]
HEADER = b"\x42\x4d"

#: Data-word layouts, by model. ``None`` marks a reserved word. Temperatures
#: and humidities are sent ×10 (temperature as a signed word), HCHO ×1000 mg/m³.
_PM = ("pm1_cf1", "pm25_cf1", "pm10_cf1", "pm1_atm", "pm25_atm", "pm10_atm")
_COUNTS = ("n0_3", "n0_5", "n1_0", "n2_5", "n5_0", "n10_0")
LAYOUTS: dict[str, tuple[str | None, ...]] = {
    "pms5003": _PM + _COUNTS + (None,),
    "pms7003": _PM + _COUNTS + (None,),
    "pmsa003": _PM + _COUNTS + (None,),
    "pms5003t": _PM + _COUNTS[:4] + ("temp", "rh", None),
    "pms5003st": _PM + _COUNTS + ("hcho", "temp", "rh", None, None),
}
_SCALE = {"temp": 10.0, "rh": 10.0, "hcho": 1000.0}
_SIGNED = {"temp"}

#: Frame lengths (the ``len`` field) this family sends; anything else is noise.
_DATA_LEN = {"pms5003st": 36}
_ACK_LEN = 4
_KNOWN_LENS = frozenset({4, 28, 36})
_MAX_FRAME = 4 + 36
#: Keep at most this much unparsed input (h11's habit: cap the buffer).
MAX_BUFFER = 4 * _MAX_FRAME

# Command codes and their data words.
CMD_READ = 0xE2
CMD_MODE = 0xE1
CMD_SLEEP = 0xE4
MODE_PASSIVE, MODE_ACTIVE = 0, 1
SLEEP, WAKE = 0, 1


def command(code: int, data: int = 0) -> bytes:
    """A 7-byte host command: header, code, data word, 16-bit sum of the rest."""
    body = HEADER + bytes((code, (data >> 8) & 0xFF, data & 0xFF))
    return body + struct.pack(">H", sum(body) & 0xFFFF)


COMMANDS: dict[str, bytes] = {
    "passive_mode": command(CMD_MODE, MODE_PASSIVE),
    "active_mode": command(CMD_MODE, MODE_ACTIVE),
    "passive_read": command(CMD_READ),
    "sleep": command(CMD_SLEEP, SLEEP),
    "wake": command(CMD_SLEEP, WAKE),
}

#: Sent after every (re)open of the port: wake the fan and laser, report actively.
INIT_SEQUENCE: tuple[str, ...] = ("wake", "active_mode")
#: In active mode the sensor streams by itself: nothing to poll.
POLL: tuple[str, float] | None = None


def reconcile(event: Event) -> bytes | None:
    """Part of the family contract: a Plantower keeps no setting the bridge must correct."""
    return None


def data_length(model: str) -> int:
    return _DATA_LEN.get(model, 28)


def encode_frame(model: str, values: Mapping[str, float], status: int = 0) -> bytes:
    """The data frame a ``model`` sensor sends for ``values`` (missing ones as 0)."""
    layout = LAYOUTS[model]
    words = []
    for name in layout:
        if name is None:
            words.append(0)
            continue
        raw = round(float(values.get(name, 0.0)) * _SCALE.get(name, 1.0))
        if name in _SIGNED:
            raw &= 0xFFFF
        words.append(max(0, min(0xFFFF, raw)))
    if layout[-1] is None:
        words[-1] = status & 0xFFFF  # last word: version (high byte) + error code
    length = 2 * len(words) + 2
    body = HEADER + struct.pack(f">H{len(words)}H", length, *words)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


def encode_ack(code: int, data: int = 0) -> bytes:
    """The 8-byte acknowledgement a sensor sends after a mode or sleep command."""
    body = HEADER + bytes((0, _ACK_LEN, code, data & 0xFF))
    return body + struct.pack(">H", sum(body) & 0xFFFF)


def _decode(model: str, frame: bytes) -> Measurement:
    layout = LAYOUTS[model]
    words = struct.unpack(f">{len(layout)}H", frame[4 : 4 + 2 * len(layout)])
    values: dict[str, float] = {}
    for name, raw in zip(layout, words, strict=True):
        if name is None:
            continue
        if name in _SIGNED and raw & 0x8000:
            raw -= 0x10000
        scale = _SCALE.get(name)
        values[name] = raw / scale if scale else float(raw)
    return Measurement(sensor=model, values=values, status=words[-1] & 0xFF)


class Parser:
    """Stream parser: ``feed(bytes) -> list[Event]``; resyncs on the header.

    It never raises on input: bad frames are counted in :attr:`stats` and the
    search for the next header goes on one byte further (:class:`FrameReader`).
    """

    def __init__(self, model: str = "pms5003") -> None:
        if model not in LAYOUTS:
            raise ValueError(f"not a Plantower model: {model!r}; one of {', '.join(MODELS)}")
        self.model = model
        self._data_len = data_length(model)
        self.stats = ParserStats()
        self._reader = FrameReader((HEADER,), prefix=4, length=self._frame_length, check=_checksum_error,
                                   max_buffer=MAX_BUFFER, errors=self.stats.errors)

    @property
    def _buf(self) -> bytearray:  # the same name in every family, for the tests
        return self._reader._buf

    def _frame_length(self, prefix: bytes) -> int | str:
        length = (prefix[2] << 8) | prefix[3]
        if length not in _KNOWN_LENS or (length != _ACK_LEN and length != self._data_len):
            return "bad length"
        return 4 + length

    def feed(self, data: bytes) -> list[Event]:
        reader = self._reader
        before = reader.skipped_bytes
        events: list[Event] = []
        for frame in reader.feed(data):
            if len(frame) == 4 + _ACK_LEN:
                self.stats.replies += 1
                events.append(CommandReply(self.model, frame[4], frame[5:6]))
            else:
                self.stats.frames += 1
                events.append(_decode(self.model, frame))
        self.stats.skipped_bytes += reader.skipped_bytes - before
        return events


def _checksum_error(frame: bytes) -> str | None:
    """The 16-bit sum of every byte before the checksum, against the checksum."""
    return None if sum(frame[:-2]) & 0xFFFF == (frame[-2] << 8) | frame[-1] else "bad checksum"
