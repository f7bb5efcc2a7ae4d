"""Sensirion SPS30 over UART (115200 8N1), SHDLC framing.

Frames (Sensirion "Datasheet SPS30", section 5: SHDLC frame layer)::

    host -> sensor (MOSI)   7E  ADR CMD L      data  CHK  7E
    sensor -> host (MISO)   7E  ADR CMD STATE L data  CHK  7E

``ADR`` is always 0. ``L`` counts the data bytes before stuffing. ``CHK`` is the
inverted low byte of the sum of every byte between the flags, before stuffing.
Between the flags, 0x7E 0x7D 0x11 0x13 are sent as 0x7D followed by the byte
XOR 0x20. The ``STATE`` byte holds the execution error code in bits 0-6 and, in
bit 7, "at least one error flag is set in the Device Status Register".

The sensor never streams: after "start measurement" it makes a new reading
every second, and the host polls "read measured values" (``POLL``); a poll
with nothing new gets an empty answer. Readings in the float format are
ten big-endian IEEE754 floats: mass PM1, PM2.5, PM4, PM10 (µg/m³), number
concentration PM0.5, PM1, PM2.5, PM4, PM10 (#/cm³), typical particle size (µm).

Sans-IO: :class:`Deframer` splits a byte stream at the flags, :class:`Parser`
decodes what the sensor sends.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from civicair.schema import sensors as schema_sensors
from firmware_bridge.sensors.base import CommandReply, Event, Measurement, ParserStats

BAUD_RATE = 115200
#: The models of this family, as the schema lists them (``civicair.schema.sensors``).
MODELS: tuple[str, ...] = schema_sensors.FAMILIES["sps30"]

FLAG = 0x7E
ESCAPE = 0x7D
_STUFFED = frozenset({0x7E, 0x7D, 0x11, 0x13})
ADDRESS = 0x00
#: Longest frame content, stuffed: ADR CMD STATE L, 255 data bytes, CHK, each doubled.
MAX_CONTENT = 2 * (4 + 255 + 1)
#: Keep at most this much unparsed input (h11's habit: cap the buffer).
MAX_BUFFER = 2 + MAX_CONTENT

# Commands (datasheet table 7).
START = 0x00
STOP = 0x01
READ_VALUES = 0x03
SLEEP = 0x10
WAKE_UP = 0x11
FAN_CLEANING = 0x56
CLEANING_INTERVAL = 0x80
DEVICE_INFO = 0xD0
READ_VERSION = 0xD1
DEVICE_STATUS = 0xD2
RESET = 0xD3

# Start measurement: subcommand 0x01, then the output format.
FORMAT_FLOAT = 0x03
FORMAT_UINT16 = 0x05
# Device information subcommands.
INFO_PRODUCT_TYPE = 0x00
INFO_SERIAL_NUMBER = 0x03
PRODUCT_TYPE = "00080000"  # "returns always the string 00080000 on this product"

# State byte (datasheet table 6).
ERROR_FLAG = 0x80
OK = 0x00
WRONG_LENGTH = 0x01
UNKNOWN_COMMAND = 0x02
NO_ACCESS = 0x03
ILLEGAL_PARAMETER = 0x04
ARGUMENT_OUT_OF_RANGE = 0x28
NOT_ALLOWED_NOW = 0x43

#: The byte that wakes the UART of a sleeping sensor (a low pulse on RX).
WAKE_PULSE = b"\xff"

VALUE_NAMES = ("pm1_atm", "pm25_atm", "pm4_atm", "pm10_atm",
               "nc0_5", "nc1_0", "nc2_5", "nc4_0", "nc10_0", "tps")
_FLOAT_LEN = 4 * len(VALUE_NAMES)
_UINT16_LEN = 2 * len(VALUE_NAMES)


# -- framing ---------------------------------------------------------------------------
def checksum(content: bytes) -> int:
    """Inverted low byte of the sum of the (unstuffed) bytes between the flags."""
    return ~sum(content) & 0xFF


def stuff(content: bytes) -> bytes:
    """Byte-stuffing: 0x7E 0x7D 0x11 0x13 become 0x7D, byte XOR 0x20."""
    if not _STUFFED.intersection(content):
        return bytes(content)
    out = bytearray()
    for byte in content:
        if byte in _STUFFED:
            out += bytes((ESCAPE, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unstuff(raw: bytes) -> bytes | None:
    """The inverse of :func:`stuff`, or None for an escape that stuffing cannot make."""
    if ESCAPE not in raw:
        return bytes(raw)
    out = bytearray()
    it = iter(raw)
    for byte in it:
        if byte == ESCAPE:
            nxt = next(it, None)
            if nxt is None or nxt ^ 0x20 not in _STUFFED:
                return None
            out.append(nxt ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


def mosi(cmd: int, data: bytes = b"") -> bytes:
    """A host frame, stuffed and flagged."""
    content = bytes((ADDRESS, cmd, len(data))) + data
    return bytes((FLAG,)) + stuff(content + bytes((checksum(content),))) + bytes((FLAG,))


def miso(cmd: int, data: bytes = b"", state: int = OK) -> bytes:
    """A sensor frame, stuffed and flagged."""
    content = bytes((ADDRESS, cmd, state, len(data))) + data
    return bytes((FLAG,)) + stuff(content + bytes((checksum(content),))) + bytes((FLAG,))


class Deframer:
    """Splits a byte stream at the 0x7E flags into raw (still stuffed) frame contents.

    A closing flag is left in place: it may be the opening flag of the next frame
    (a frame that began in noise then ends where the real one starts, and costs
    the real one nothing). Flags in a row are idle line, not errors. Content
    longer than any real frame is dropped up to the next flag.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped_bytes = 0
        self.too_long = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        buf = self._buf
        frames: list[bytes] = []
        while True:
            start = buf.find(FLAG)
            if start < 0:
                self._skip(len(buf))
                break
            if start:
                self._skip(start)
            end = buf.find(FLAG, 1)
            if end < 0:
                if len(buf) > MAX_BUFFER:  # no real frame is this long: drop it
                    self.too_long += 1
                    self._skip(len(buf))
                break
            if end == 1:
                del buf[:1]  # two flags in a row: the second opens the frame
                continue
            raw = bytes(buf[1:end])
            del buf[:end]  # keep the closing flag
            if len(raw) > MAX_CONTENT:
                self.too_long += 1
                self.skipped_bytes += 1 + len(raw)
                continue
            frames.append(raw)
        return frames

    def _skip(self, count: int) -> None:
        if count > 0:
            del self._buf[:count]
            self.skipped_bytes += count

    def reset(self) -> None:
        self._buf.clear()


# -- commands ----------------------------------------------------------------------------
def write_cleaning_interval(seconds: int) -> bytes:
    """Write the fan auto-cleaning interval (0 disables it); kept in flash."""
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise ValueError(f"cleaning interval must fit 32 bits, got {seconds!r}")
    return mosi(CLEANING_INTERVAL, b"\x00" + seconds.to_bytes(4, "big"))


COMMANDS: dict[str, bytes] = {
    "start": mosi(START, bytes((0x01, FORMAT_FLOAT))),
    "start_uint16": mosi(START, bytes((0x01, FORMAT_UINT16))),
    "stop": mosi(STOP),
    "read_values": mosi(READ_VALUES),
    "enter_sleep": mosi(SLEEP),
    "wake_up": mosi(WAKE_UP),
    "fan_cleaning": mosi(FAN_CLEANING),
    "read_cleaning_interval": mosi(CLEANING_INTERVAL, b"\x00"),
    "product_type": mosi(DEVICE_INFO, bytes((INFO_PRODUCT_TYPE,))),
    "serial_number": mosi(DEVICE_INFO, bytes((INFO_SERIAL_NUMBER,))),
    "read_version": mosi(READ_VERSION),
    "read_status": mosi(DEVICE_STATUS, b"\x00"),
    "read_and_clear_status": mosi(DEVICE_STATUS, b"\x01"),
    "reset": mosi(RESET),
}
# The family-wide verbs. Sleep-Mode can only be entered from Idle-Mode, so
# "sleep" stops the measurement first; "wake" sends the 0xFF low pulse that
# enables a sleeping sensor's UART, the wake-up, then starts measuring. Either
# half may answer "not allowed in current state" (0x43) when the sensor was
# already there: harmless, and reported as a CommandReply.
COMMANDS["sleep"] = COMMANDS["stop"] + COMMANDS["enter_sleep"]
COMMANDS["wake"] = WAKE_PULSE + COMMANDS["wake_up"] + COMMANDS["start"]
COMMANDS["passive_read"] = COMMANDS["read_values"]

#: Sent after every (re)open of the port: wake up and measure (float format).
INIT_SEQUENCE: tuple[str, ...] = ("wake",)
#: The SPS30 answers reads only: (command name, period s) the host polls with. A new
#: reading is ready every second; polling twice as often fetches each one, at most
#: half a second late, and a poll with nothing new costs only an empty answer.
POLL: tuple[str, float] | None = ("read_values", 0.5)


def reconcile(event: Event) -> bytes | None:
    """Part of the family contract. The one flash-kept setting, the fan auto-cleaning
    interval, is left as the owner set it: the bridge corrects nothing."""
    return None


def encode_values(values: Mapping[str, float], fmt: int = FORMAT_FLOAT) -> bytes:
    """The data of a "read measured values" answer, in either output format."""
    if fmt == FORMAT_FLOAT:
        return struct.pack(">10f", *(float(values.get(n, 0.0)) for n in VALUE_NAMES))
    words = []
    for name in VALUE_NAMES:
        raw = float(values.get(name, 0.0)) * (1000.0 if name == "tps" else 1.0)  # tps in nm
        words.append(max(0, min(0xFFFF, round(raw))))
    return struct.pack(">10H", *words)


def encode_frame(model: str, values: Mapping[str, float], status: int = 0, *,
                 fmt: int = FORMAT_FLOAT) -> bytes:
    """The sensor's answer to "read measured values" holding ``values``.

    ``status`` is the SHDLC state byte (0 or :data:`ERROR_FLAG`).
    """
    if model not in MODELS:
        raise ValueError(f"not a Sensirion model: {model!r}")
    return miso(READ_VALUES, encode_values(values, fmt), status)


# -- device status register -------------------------------------------------------------
class StatusFlag(enum.IntFlag):
    """The documented bits of the Device Status Register (datasheet 4.4)."""

    FAN_FAILURE = 1 << 4  # error: fan switched on but 0 RPM; not cleared automatically
    LASER_FAILURE = 1 << 5  # error: laser current out of range
    FAN_SPEED_WARNING = 1 << 21  # warning: fan speed too high or too low


#: The flags of type "Error": they also raise bit 7 of every answer's state byte.
ERROR_FLAGS = StatusFlag.FAN_FAILURE | StatusFlag.LASER_FAILURE


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """The Device Status Register, decoded. All other bits are reserved: ignored."""

    raw: int
    fan_speed_warning: bool
    laser_failure: bool
    fan_failure: bool

    @classmethod
    def from_register(cls, raw: int) -> DeviceStatus:
        return cls(raw, bool(raw & StatusFlag.FAN_SPEED_WARNING),
                   bool(raw & StatusFlag.LASER_FAILURE), bool(raw & StatusFlag.FAN_FAILURE))

    @property
    def flags(self) -> StatusFlag:
        return StatusFlag(self.raw & (StatusFlag.FAN_FAILURE | StatusFlag.LASER_FAILURE
                                      | StatusFlag.FAN_SPEED_WARNING))

    @property
    def error(self) -> bool:
        """A flag of type "Error" is set: the readings are most likely wrong."""
        return self.laser_failure or self.fan_failure


def decode_status(data: bytes) -> DeviceStatus:
    """The data of a "read device status register" answer (u32 big-endian, 1 reserved)."""
    return DeviceStatus.from_register(int.from_bytes(data[:4], "big"))


@dataclass(frozen=True, slots=True)
class Version:
    firmware: tuple[int, int]
    hardware: int
    shdlc: tuple[int, int]


def decode_version(data: bytes) -> Version:
    """The 7 data bytes of a "read version" answer."""
    return Version((data[0], data[1]), data[3], (data[5], data[6]))


def decode_text(data: bytes) -> str:
    """A device-information answer: a null-terminated ASCII string."""
    return data.split(b"\x00", 1)[0].decode("ascii", "replace")


# -- parser --------------------------------------------------------------------------------
class Parser:
    """Stream parser for what the sensor sends: ``feed(bytes) -> list[Event]``.

    It never raises on input. A frame with bad stuffing, length, address or
    checksum is counted in :attr:`stats` and dropped; the flag that closed it may
    open the next frame. A "read measured values" answer with data is a
    :class:`Measurement`; every other answer (an empty read, an error state) is a
    :class:`CommandReply` whose ``state`` is the SHDLC state byte.

    ``Measurement.status`` is the last Device Status Register the parser saw in a
    "read device status register" answer (0 until one is read); :attr:`device_error`
    is bit 7 of the last answer's state byte, which tells the host to read it.
    """

    def __init__(self, model: str = "sps30") -> None:
        if model not in MODELS:
            raise ValueError(f"not a Sensirion model: {model!r}; one of {', '.join(MODELS)}")
        self.model = model
        self._deframer = Deframer()
        self.stats = ParserStats()
        self.device_status = DeviceStatus.from_register(0)
        self.device_error = False

    @property
    def _buf(self) -> bytearray:  # the same name as the other families, for the tests
        return self._deframer._buf

    def feed(self, data: bytes) -> list[Event]:
        deframer = self._deframer
        before = deframer.skipped_bytes
        events: list[Event] = []
        for raw in deframer.feed(data):
            event = self._decode(raw)
            if event is None:
                self.stats.skipped_bytes += 1 + len(raw)  # its opening flag and content
            else:
                events.append(event)
        self.stats.skipped_bytes += deframer.skipped_bytes - before
        if deframer.too_long:
            self.stats.errors["too long"] += deframer.too_long
            deframer.too_long = 0
        return events

    def _error(self, reason: str) -> None:
        self.stats.errors[reason] += 1

    def _decode(self, raw: bytes) -> Event | None:
        content = unstuff(raw)
        if content is None:
            self._error("bad stuffing")
            return None
        if len(content) < 5 or content[3] != len(content) - 5:
            self._error("bad length")
            return None
        if checksum(content[:-1]) != content[-1]:
            self._error("bad checksum")
            return None
        if content[0] != ADDRESS:
            self._error("bad address")
            return None
        cmd, state, data = content[1], content[2], content[4:-1]
        self.device_error = bool(state & ERROR_FLAG)
        if cmd == READ_VALUES and data:
            values = self._values(data)
            if values is None:
                return None
            self.stats.frames += 1
            return Measurement(self.model, values, status=self.device_status.raw)
        if cmd == DEVICE_STATUS and state & ~ERROR_FLAG == OK and len(data) >= 4:
            self.device_status = decode_status(data)
        self.stats.replies += 1
        return CommandReply(self.model, cmd, data, state)

    def _values(self, data: bytes) -> dict[str, float] | None:
        if len(data) == _FLOAT_LEN:
            numbers = struct.unpack(">10f", data)
        elif len(data) == _UINT16_LEN:
            numbers = tuple(w / 1000.0 if n == "tps" else float(w)
                            for n, w in zip(VALUE_NAMES, struct.unpack(">10H", data), strict=True))
        else:
            self._error("bad length")
            return None
        if not all(math.isfinite(x) for x in numbers):
            self._error("bad value")  # a checksum can pass on noise; NaN never publishes
            return None
        return dict(zip(VALUE_NAMES, numbers, strict=True))
