"""Nova Fitness SDS011 over UART (9600 8N1).

Frames (Nova Fitness "Laser Dust Sensor Control Protocol V1.3", 2015-07-20)::

    sensor -> host, 10 bytes   AA  C0|C5  d1 .. d6  chk  AB
    host -> sensor, 19 bytes   AA  B4  d1 .. d15  chk  AB

``chk`` is the low byte of the sum of the data bytes (``d1`` .. ``d6`` or
``d1`` .. ``d15``): neither the head, the command id nor the tail count.

A data frame (``C0``) carries PM2.5 and PM10 as little-endian 16-bit words in
0.1 µg/m³, then the two-byte device id. A reply (``C5``) echoes the command
byte ``d1`` (2 report mode, 5 device id, 6 sleep/work, 7 firmware, 8 working
period), three parameter bytes and the device id. Host commands name a target
device id in ``d14 d15``; ``FF FF`` addresses every sensor on the line.

Report mode and working period are kept in the sensor's flash ("the setting is
still effective after power off"). Flash wears, so the host reads them first
and writes only when they differ: see :func:`write_needed`.

Sans-IO: :class:`Parser` only buffers and decodes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from civicair.schema import sensors as schema_sensors
from firmware_bridge.sensors.base import CommandReply, Event, Measurement, ParserStats
from firmware_bridge.sensors.framing import FrameReader

BAUD_RATE = 9600
#: The models of this family, as the schema lists them (``civicair.schema.sensors``).
MODELS: tuple[str, ...] = schema_sensors.FAMILIES["sds011"]

HEAD = 0xAA
TAIL = 0xAB
CMD_HOST = 0xB4  # every host -> sensor frame
CMD_DATA = 0xC0  # sensor -> host: a measurement
CMD_REPLY = 0xC5  # sensor -> host: the answer to a command
FRAME_LEN = 10
COMMAND_LEN = 19
#: What a frame from the sensor starts with; a host frame starts with ``AA B4``.
_SENSOR_HEADS = (bytes((HEAD, CMD_DATA)), bytes((HEAD, CMD_REPLY)))
HOST_HEAD = bytes((HEAD, CMD_HOST))
#: Keep at most this much unparsed input (h11's habit: cap the buffer).
MAX_BUFFER = 4 * FRAME_LEN

# Command ids (data byte 1 of a host frame and of a C5 reply).
REPORT_MODE = 0x02
QUERY_DATA = 0x04
DEVICE_ID = 0x05
SLEEP_WORK = 0x06
FIRMWARE = 0x07
WORKING_PERIOD = 0x08

# Data byte 2 of report mode, sleep/work and working period: read or write.
GET, SET = 0, 1
MODE_ACTIVE, MODE_QUERY = 0, 1
SLEEP, WORK = 0, 1
#: Working period: 0 is continuous (a frame a second); 1..30 means "work 30 s,
#: then sleep, once every n minutes".
MAX_WORKING_PERIOD = 30
BROADCAST = 0xFFFF

_SCALE = 10.0  # PM words are in 0.1 µg/m³
_MAX_WORD = 0xFFFF


def command(cmd: int, params: bytes = b"", device_id: int = BROADCAST) -> bytes:
    """A 19-byte host frame: command id, up to 12 parameter bytes, target device id."""
    if len(params) > 12:
        raise ValueError(f"an SDS011 command carries at most 12 parameter bytes, got {len(params)}")
    data = bytes((cmd,)) + params.ljust(12, b"\x00") + device_id.to_bytes(2, "big")
    return bytes((HEAD, CMD_HOST)) + data + bytes((sum(data) & 0xFF, TAIL))


def set_report_mode(mode: int, device_id: int = BROADCAST) -> bytes:
    """Write the report mode (:data:`MODE_ACTIVE` or :data:`MODE_QUERY`) to flash."""
    if mode not in (MODE_ACTIVE, MODE_QUERY):
        raise ValueError(f"report mode must be 0 (active) or 1 (query), got {mode!r}")
    return command(REPORT_MODE, bytes((SET, mode)), device_id)


def set_working_period(minutes: int, device_id: int = BROADCAST) -> bytes:
    """Write the working period (0 continuous, 1..30 minutes) to flash."""
    if not 0 <= minutes <= MAX_WORKING_PERIOD:
        raise ValueError(f"working period must be 0..{MAX_WORKING_PERIOD} minutes, got {minutes!r}")
    return command(WORKING_PERIOD, bytes((SET, minutes)), device_id)


def set_device_id(new_id: int, device_id: int = BROADCAST) -> bytes:
    """Give the sensor ``device_id`` a new id (data bytes 12, 13 hold the new id)."""
    return command(DEVICE_ID, bytes(10) + new_id.to_bytes(2, "big"), device_id)


COMMANDS: dict[str, bytes] = {
    "active_mode": set_report_mode(MODE_ACTIVE),
    "passive_mode": set_report_mode(MODE_QUERY),  # "report query mode"
    "get_report_mode": command(REPORT_MODE, bytes((GET,))),
    "passive_read": command(QUERY_DATA),
    "sleep": command(SLEEP_WORK, bytes((SET, SLEEP))),
    "wake": command(SLEEP_WORK, bytes((SET, WORK))),
    "get_work_state": command(SLEEP_WORK, bytes((GET,))),
    "continuous": set_working_period(0),
    "get_working_period": command(WORKING_PERIOD, bytes((GET,))),
    "firmware_version": command(FIRMWARE),
}

#: Sent after every (re)open of the port: wake the fan and laser (sleep/work is
#: not kept over a power cycle, so writing it costs no flash), then *read* the
#: two flash-kept settings; the bridge answers the replies with
#: :func:`write_needed` and writes only what differs.
INIT_SEQUENCE: tuple[str, ...] = ("wake", "get_report_mode", "get_working_period")
#: In active mode the sensor streams by itself: nothing to poll.
POLL: tuple[str, float] | None = None


def _word(value: float) -> int:
    return max(0, min(_MAX_WORD, round(float(value) * _SCALE)))


def encode_frame(model: str, values: Mapping[str, float], status: int = 0, *,
                 device_id: int = BROADCAST) -> bytes:
    """The 10-byte data frame a sensor with ``device_id`` sends for ``values``.

    ``pm25_atm`` and ``pm10_atm`` in µg/m³ (missing ones as 0), rounded to
    0.1 µg/m³ and clamped to the 16-bit word. ``status`` is accepted for the
    family contract; the SDS011 frame has no status field.
    """
    if model not in MODELS:
        raise ValueError(f"not a Nova Fitness model: {model!r}")
    data = struct.pack("<HH", _word(values.get("pm25_atm", 0.0)), _word(values.get("pm10_atm", 0.0)))
    data += device_id.to_bytes(2, "big")
    return bytes((HEAD, CMD_DATA)) + data + bytes((sum(data) & 0xFF, TAIL))


def encode_reply(cmd: int, params: bytes, device_id: int) -> bytes:
    """The 10-byte ``C5`` reply: command id, three parameter bytes, device id."""
    data = bytes((cmd,)) + params[:3].ljust(3, b"\x00") + device_id.to_bytes(2, "big")
    return bytes((HEAD, CMD_REPLY)) + data + bytes((sum(data) & 0xFF, TAIL))


@dataclass(frozen=True, slots=True)
class HostCommand:
    """A host frame, decoded (what the simulator's sensor receives)."""

    cmd: int
    params: bytes  # data bytes 2..13 (12 bytes)
    device_id: int  # target: data bytes 14, 15


def decode_command(frame: bytes) -> HostCommand | None:
    """A 19-byte host frame, or None when head, command, tail or checksum are wrong."""
    if (len(frame) != COMMAND_LEN or frame[0] != HEAD or frame[1] != CMD_HOST
            or frame[-1] != TAIL or sum(frame[2:17]) & 0xFF != frame[17]):
        return None
    return HostCommand(frame[2], bytes(frame[3:15]), int.from_bytes(frame[15:17], "big"))


# -- flash-kept settings -------------------------------------------------------------
#: The setting names, by the command id that reads and writes them.
SETTING_NAMES = {REPORT_MODE: "report_mode", WORKING_PERIOD: "working_period",
                 SLEEP_WORK: "work_state"}
#: The settings the sensor keeps in flash: write them only when they differ.
FLASH_SETTINGS = frozenset({"report_mode", "working_period"})


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting as a reply reports it."""

    name: str  # "report_mode", "working_period" or "work_state"
    value: int  # report mode 0/1, working period in minutes, work state 0 sleep / 1 work
    written: bool  # the reply answers a "set" (True) or a "get" (False)
    device_id: int


def read_setting(event: Event) -> Setting | None:
    """The setting a ``C5`` reply reports, or None for any other event."""
    if not isinstance(event, CommandReply) or event.sensor not in MODELS:
        return None
    name = SETTING_NAMES.get(event.command)
    if name is None or len(event.data) < 5:
        return None
    return Setting(name, event.data[1], event.data[0] == SET,
                   int.from_bytes(event.data[3:5], "big"))


def write_needed(reply: Event, wanted: int) -> bool:
    """Whether the "set" form of a flash-kept setting must be sent.

    ``reply`` is the sensor's answer to the "get" form (``COMMANDS["get_report_mode"]``
    or ``COMMANDS["get_working_period"]``); ``wanted`` is the value the station wants
    (:data:`MODE_ACTIVE`/:data:`MODE_QUERY`, or minutes 0..30). True only when the
    sensor holds another value: every "set" rewrites the sensor's flash, even with
    the value it already holds, and flash wears out. Use it as::

        if sds011.write_needed(reply, sds011.MODE_ACTIVE):
            port.write(sds011.set_report_mode(sds011.MODE_ACTIVE))

    A reply to the "set" form also answers: it reports the value now held.
    Raises ValueError when ``reply`` is not a report-mode or working-period reply,
    or ``wanted`` is out of range: both are the caller's bug, not the sensor's.
    """
    setting = read_setting(reply)
    if setting is None or setting.name not in FLASH_SETTINGS:
        raise ValueError(f"not a reply reporting a flash-kept SDS011 setting: {reply!r}")
    if setting.name == "report_mode" and wanted not in (MODE_ACTIVE, MODE_QUERY):
        raise ValueError(f"report mode must be 0 (active) or 1 (query), got {wanted!r}")
    if setting.name == "working_period" and not 0 <= wanted <= MAX_WORKING_PERIOD:
        raise ValueError(f"working period must be 0..{MAX_WORKING_PERIOD} minutes, got {wanted!r}")
    return setting.value != wanted


#: What the bridge wants the sensor to hold: report by itself, measure continuously
#: (duty cycling, when configured, is done by the bridge with sleep/work, which
#: costs no flash write).
WANTED = {"report_mode": MODE_ACTIVE, "working_period": 0}


def reconcile(event: Event) -> bytes | None:
    """The command that brings a flash-kept setting to :data:`WANTED`, or None.

    Part of the family contract (optional): the bridge calls it with every reply.
    Only replies to "get" are answered, and only when the value differs, so a
    healthy sensor's flash is never written.
    """
    setting = read_setting(event)
    if setting is None or setting.name not in FLASH_SETTINGS or setting.written:
        return None
    wanted = WANTED[setting.name]
    if not write_needed(event, wanted):
        return None
    if setting.name == "report_mode":
        return set_report_mode(wanted)
    return set_working_period(wanted)


def firmware_version(event: Event) -> tuple[int, int, int] | None:
    """(year - 2000, month, day) from a firmware reply, or None for any other event."""
    if isinstance(event, CommandReply) and event.sensor in MODELS and event.command == FIRMWARE:
        return event.data[0], event.data[1], event.data[2]
    return None


# -- parser --------------------------------------------------------------------------
def _decode(model: str, frame: bytes) -> Event:
    if frame[1] == CMD_DATA:
        pm25, pm10 = struct.unpack("<HH", frame[2:6])
        return Measurement(sensor=model, values={"pm25_atm": pm25 / _SCALE, "pm10_atm": pm10 / _SCALE})
    return CommandReply(model, frame[2], bytes(frame[3:8]))


def _frame_error(frame: bytes) -> str | None:
    """What is wrong with a 10-byte frame from the sensor: its tail, then its checksum."""
    if frame[-1] != TAIL:
        return "bad tail"
    if sum(frame[2:8]) & 0xFF != frame[8]:
        return "bad checksum"
    return None


class Parser:
    """Stream parser: ``feed(bytes) -> list[Event]``; resyncs on ``AA C0``/``AA C5``.

    It never raises on input: a frame with a wrong tail or checksum is counted in
    :attr:`stats` and the search for the next head goes on one byte further
    (:class:`FrameReader`); an ``AA`` followed by another byte is noise, skipped
    without counting an error. ``C5`` replies come out as :class:`CommandReply`
    (``command`` is the command id; ``data`` the three parameter bytes and the
    device id).
    """

    def __init__(self, model: str = "sds011") -> None:
        if model not in MODELS:
            raise ValueError(f"not a Nova Fitness model: {model!r}; one of {', '.join(MODELS)}")
        self.model = model
        self.stats = ParserStats()
        self._reader = FrameReader(_SENSOR_HEADS, length=FRAME_LEN, check=_frame_error,
                                   max_buffer=MAX_BUFFER, errors=self.stats.errors)

    @property
    def _buf(self) -> bytearray:  # the same name in every family, for the tests
        return self._reader._buf

    def feed(self, data: bytes) -> list[Event]:
        reader = self._reader
        before = reader.skipped_bytes
        events: list[Event] = []
        for frame in reader.feed(data):
            event = _decode(self.model, frame)
            if isinstance(event, Measurement):
                self.stats.frames += 1
            else:
                self.stats.replies += 1
            events.append(event)
        self.stats.skipped_bytes += reader.skipped_bytes - before
        return events
