"""Simulated sensors on pseudo-terminals, speaking each sensor's real byte stream.

Two layers, the same split as the parsers:

- a *behaviour* per sensor family (:class:`PlantowerBehaviour`,
  :class:`Sds011Behaviour`, :class:`Sps30Behaviour`) is the sensor without I/O:
  host bytes in, the bytes the sensor answers out (``on_bytes``), and what it
  sends by itself when its time comes (``poll``). Time is passed in (monotonic
  seconds), so tests drive a behaviour with any clock;
- :class:`PtySimulator` opens a pty, sets it raw, runs one behaviour against it
  and injects faults (:class:`Faults`): random garbage before a frame, a dropped
  byte, output stalls. The bridge opens the pty's path exactly as it opens
  ``/dev/serial0`` on a Pi.

Frames are built by each family's own encoders (``firmware_bridge.sensors``),
so the simulator and the parsers share one reading of the datasheets.
"""

from __future__ import annotations

import math
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable, Mapping
from pathlib import Path

from firmware_bridge.sensors import family, plantower, sds011, sps30

Values = Callable[[], Mapping[str, float]]


def _no_values() -> Mapping[str, float]:
    return {}


class Behaviour:
    """A sensor without I/O. Subclasses answer commands and may stream."""

    def __init__(self, model: str, values: Values | None = None, rate_hz: float = 1.0) -> None:
        self.model = model
        self.proto = family(model)
        self.values: Values = values or _no_values
        self.period = 1.0 / rate_hz
        #: Data frames (readings) sent so far, streamed or asked for.
        self.frames = 0
        self._next_at: float | None = None

    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        """Host -> sensor bytes; returns what the sensor writes back."""
        raise NotImplementedError

    def poll(self, now: float) -> list[bytes]:
        """What the sensor sends by itself by ``now`` (nothing, for a sensor that only answers)."""
        return []

    def next_due(self) -> float | None:
        """When :meth:`poll` next has something to send; None while it has nothing planned."""
        return None

    def data_frame(self) -> bytes:
        self.frames += 1
        return self.proto.encode_frame(self.model, self.values())

    def _due(self, now: float, period: float) -> bool:
        """Once per ``period``; a sensor that fell behind does not send the missed frames."""
        if self._next_at is None:
            self._next_at = now
        if now < self._next_at:
            return False
        self._next_at += period
        if self._next_at <= now:
            self._next_at = now + period
        return True


class PlantowerBehaviour(Behaviour):
    """Plantower PMS: active/passive mode, passive read, sleep/wake.

    Mode and sleep commands are acknowledged by the 8-byte frame that echoes
    them, except wake, which the sensor answers by streaming again.
    """

    def __init__(self, model: str = "pms5003", values: Values | None = None,
                 rate_hz: float = 1.0) -> None:
        super().__init__(model, values, rate_hz)
        self.active = True
        self.awake = True
        self._buf = bytearray()

    @property
    def streaming(self) -> bool:
        return self.active and self.awake

    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        self._buf += data
        buf = self._buf
        replies: list[bytes] = []
        while True:
            i = buf.find(plantower.HEADER)
            if i < 0:
                del buf[: -1 if buf[-1:] == plantower.HEADER[:1] else len(buf)]
                return replies
            del buf[:i]
            if len(buf) < 7:
                return replies
            cmd = bytes(buf[:7])
            if sum(cmd[:5]) & 0xFFFF != int.from_bytes(cmd[5:7], "big"):
                del buf[:1]  # the real sensor ignores a command with a bad checksum
                continue
            del buf[:7]
            replies += self._command(cmd[2], int.from_bytes(cmd[3:5], "big"), now)

    def _command(self, code: int, word: int, now: float) -> list[bytes]:
        if code == plantower.CMD_MODE:
            self.active = word == plantower.MODE_ACTIVE
            if self.active:
                self._next_at = now + self.period
            return [plantower.encode_ack(code, word)]
        if code == plantower.CMD_SLEEP:
            if word == plantower.WAKE:
                if not self.awake:
                    self.awake = True
                    self._next_at = now + self.period
                return []
            self.awake = False
            return [plantower.encode_ack(code, word)]
        if code == plantower.CMD_READ and self.awake:
            return [self.data_frame()]
        return []

    def poll(self, now: float) -> list[bytes]:
        if self.streaming and self._due(now, self.period):
            return [self.data_frame()]
        return []

    def next_due(self) -> float | None:
        return self._next_at if self.streaming else None


class Sds011Behaviour(Behaviour):
    """Nova SDS011: report mode, query data, sleep/work, working period, device id, firmware.

    Every answer carries the sensor's device id; a command addressed to another
    id is ignored. Asleep, the sensor ignores everything except "set work"
    (field reports; the V1.3 protocol text says any command wakes it).
    :attr:`flash_writes` counts the writes of flash-kept settings, which a
    careful host keeps at zero.
    """

    def __init__(self, model: str = "sds011", values: Values | None = None,
                 rate_hz: float = 1.0, *, device_id: int = 0xA160,
                 report_mode: int = sds011.MODE_ACTIVE, working_period: int = 0,
                 firmware: tuple[int, int, int] = (15, 7, 10)) -> None:
        super().__init__(model, values, rate_hz)
        self.device_id = device_id
        self.report_mode = report_mode
        self.working_period = working_period
        self.firmware = firmware
        self.working = True
        self.flash_writes = 0
        self._buf = bytearray()
        self._handlers = {
            sds011.REPORT_MODE: self._report_mode,
            sds011.QUERY_DATA: self._query_data,
            sds011.DEVICE_ID: self._device_id,
            sds011.SLEEP_WORK: self._sleep_work,
            sds011.FIRMWARE: self._firmware,
            sds011.WORKING_PERIOD: self._working_period,
        }

    def data_frame(self) -> bytes:
        self.frames += 1
        return sds011.encode_frame(self.model, self.values(), device_id=self.device_id)

    def _reply(self, cmd: int, *params: int) -> list[bytes]:
        return [sds011.encode_reply(cmd, bytes(params), self.device_id)]

    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        self._buf += data
        buf = self._buf
        head = bytes((sds011.HEAD, sds011.CMD_HOST))
        replies: list[bytes] = []
        while True:
            i = buf.find(head)
            if i < 0:
                del buf[: -1 if buf[-1:] == head[:1] else len(buf)]
                return replies
            del buf[:i]
            if len(buf) < sds011.COMMAND_LEN:
                return replies
            cmd = sds011.decode_command(bytes(buf[: sds011.COMMAND_LEN]))
            if cmd is None:
                del buf[:1]  # bad checksum or tail: ignored, as the sensor does
                continue
            del buf[: sds011.COMMAND_LEN]
            if cmd.device_id not in (sds011.BROADCAST, self.device_id):
                continue
            op, arg = cmd.params[0], cmd.params[1]
            waking = cmd.cmd == sds011.SLEEP_WORK and op == sds011.SET and arg == sds011.WORK
            if not self.working and not waking:
                continue
            handler = self._handlers.get(cmd.cmd)
            if handler is not None:
                replies += handler(cmd, now)

    def _report_mode(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        op, mode = cmd.params[0], cmd.params[1]
        if op == sds011.SET:
            if mode not in (sds011.MODE_ACTIVE, sds011.MODE_QUERY):
                return []
            self.report_mode = mode
            self.flash_writes += 1
            self._next_at = now + self._period()
        return self._reply(sds011.REPORT_MODE, op, self.report_mode)

    def _query_data(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        return [self.data_frame()]

    def _device_id(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        self.device_id = int.from_bytes(cmd.params[10:12], "big")
        self.flash_writes += 1
        return self._reply(sds011.DEVICE_ID, 0, 0, 0)

    def _sleep_work(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        op, state = cmd.params[0], cmd.params[1]
        if op == sds011.SET:
            if state not in (sds011.SLEEP, sds011.WORK):
                return []
            if state == sds011.WORK and not self.working:
                self._next_at = now + self._period()
            self.working = state == sds011.WORK
        return self._reply(sds011.SLEEP_WORK, op, int(self.working))

    def _firmware(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        return self._reply(sds011.FIRMWARE, *self.firmware)

    def _working_period(self, cmd: sds011.HostCommand, now: float) -> list[bytes]:
        op, minutes = cmd.params[0], cmd.params[1]
        if op == sds011.SET:
            if minutes > sds011.MAX_WORKING_PERIOD:
                return []
            self.working_period = minutes
            self.flash_writes += 1
            self._next_at = now + self._period()
        return self._reply(sds011.WORKING_PERIOD, op, self.working_period)

    def _period(self) -> float:
        # Working period n > 0: "work 30 s, then sleep", one frame every n minutes.
        return self.working_period * 60.0 if self.working_period else self.period

    @property
    def streaming(self) -> bool:
        return self.working and self.report_mode == sds011.MODE_ACTIVE

    def poll(self, now: float) -> list[bytes]:
        if self.streaming and self._due(now, self._period()):
            return [self.data_frame()]
        return []

    def next_due(self) -> float | None:
        return self._next_at if self.streaming else None


class Sps30Behaviour(Behaviour):
    """Sensirion SPS30 over SHDLC: Idle, Measurement and Sleep modes (datasheet 4.1).

    It only answers. A new reading is ready every ``1/rate_hz`` seconds of
    measurement; a read with nothing new gets an empty answer, as does every
    read during the 10 s of fan cleaning. Asleep, its UART is off: the first
    byte it receives (the 0xFF low pulse, or the first byte of a wake-up frame)
    is lost and enables the UART for 100 ms, in which only wake-up is heard.
    ``faults`` (:class:`firmware_bridge.sensors.sps30.StatusFlag` bits) appear in
    the Device Status Register while measuring; its error flags raise bit 7 of
    every answer's state byte.
    """

    IDLE, MEASURING, SLEEPING = "idle", "measuring", "sleeping"
    CLEANING_S = 10.0
    UART_WAKE_S = 0.1

    def __init__(self, model: str = "sps30", values: Values | None = None,
                 rate_hz: float = 1.0, *, faults: int = 0, serial: str = "SIMULATED-SPS30",
                 version: tuple[int, ...] = (2, 2, 0, 7, 0, 2, 0),
                 cleaning_interval: int = 604_800) -> None:
        super().__init__(model, values, rate_hz)
        self.mode = self.IDLE
        self.faults = faults
        self.register = 0
        self.serial = serial
        self.version = bytes(version)
        self.cleaning_interval = cleaning_interval
        self.flash_writes = 0
        self.fmt = sps30.FORMAT_FLOAT
        self._deframer = sps30.Deframer()
        self._measuring_since = 0.0
        self._last_reading = 0
        self._cleaning_until = -math.inf
        self._uart_until = -math.inf
        self._handlers = {
            sps30.START: self._start,
            sps30.STOP: self._stop,
            sps30.READ_VALUES: self._read_values,
            sps30.SLEEP: self._sleep,
            sps30.WAKE_UP: self._wake_up,
            sps30.FAN_CLEANING: self._fan_cleaning,
            sps30.CLEANING_INTERVAL: self._cleaning_interval,
            sps30.DEVICE_INFO: self._device_info,
            sps30.READ_VERSION: self._read_version,
            sps30.DEVICE_STATUS: self._device_status,
            sps30.RESET: self._reset,
        }

    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        if self.mode == self.SLEEPING and now >= self._uart_until:
            # The first byte's start bit is the low pulse that enables the UART;
            # the byte itself is not received.
            self._deframer.reset()
            self._uart_until = now + self.UART_WAKE_S
            data = data[1:]
        replies: list[bytes] = []
        for raw in self._deframer.feed(data):
            replies += self._frame(raw, now)
            if self.mode == self.SLEEPING and now >= self._uart_until:
                self._deframer.reset()  # just fell asleep: the UART hears nothing more
                break
        return replies

    def _frame(self, raw: bytes, now: float) -> list[bytes]:
        content = sps30.unstuff(raw)
        if (content is None or len(content) < 4 or content[2] != len(content) - 4
                or sps30.checksum(content[:-1]) != content[-1] or content[0] != sps30.ADDRESS):
            return []  # not a frame the sensor can read: no answer
        cmd, data = content[1], content[3:-1]
        if self.mode == self.SLEEPING:
            if cmd != sps30.WAKE_UP:
                return []
            self.mode = self.IDLE
            return [sps30.miso(cmd, b"", self._state(sps30.OK))]
        if self.mode == self.MEASURING:
            self.register |= self.faults  # checked once a second while measuring
        flag = self._state(0)  # the register as read before this command acts
        handler = self._handlers.get(cmd)
        code, answer = handler(data, now) if handler else (sps30.UNKNOWN_COMMAND, b"")
        return [sps30.miso(cmd, answer, code | flag)]

    def _state(self, code: int) -> int:
        return code | (sps30.ERROR_FLAG if self.register & sps30.ERROR_FLAGS else 0)

    # Each handler: (execution error code, answer data).
    def _start(self, data: bytes, now: float) -> tuple[int, bytes]:
        if len(data) != 2:
            return sps30.WRONG_LENGTH, b""
        if data[0] != 0x01 or data[1] not in (sps30.FORMAT_FLOAT, sps30.FORMAT_UINT16):
            return sps30.ILLEGAL_PARAMETER, b""
        if self.mode != self.IDLE:
            return sps30.NOT_ALLOWED_NOW, b""
        self.mode, self.fmt = self.MEASURING, data[1]
        self._measuring_since, self._last_reading = now, 0
        return sps30.OK, b""

    def _stop(self, data: bytes, now: float) -> tuple[int, bytes]:
        if data:
            return sps30.WRONG_LENGTH, b""
        if self.mode != self.MEASURING:
            return sps30.NOT_ALLOWED_NOW, b""
        self.mode = self.IDLE
        self._cleaning_until = -math.inf
        return sps30.OK, b""

    def _read_values(self, data: bytes, now: float) -> tuple[int, bytes]:
        if data:
            return sps30.WRONG_LENGTH, b""
        if self.mode != self.MEASURING:
            return sps30.NOT_ALLOWED_NOW, b""
        if now < self._cleaning_until:
            return sps30.OK, b""  # "measurement values are not updated while the fan-cleaning is running"
        reading = int((now - self._measuring_since) / self.period)
        if reading <= self._last_reading:
            return sps30.OK, b""  # nothing new since the last read
        self._last_reading = reading
        self.frames += 1
        return sps30.OK, sps30.encode_values(self.values(), self.fmt)

    def _sleep(self, data: bytes, now: float) -> tuple[int, bytes]:
        if data:
            return sps30.WRONG_LENGTH, b""
        if self.mode != self.IDLE:
            return sps30.NOT_ALLOWED_NOW, b""
        self.mode, self._uart_until = self.SLEEPING, -math.inf
        return sps30.OK, b""

    def _wake_up(self, data: bytes, now: float) -> tuple[int, bytes]:
        return (sps30.WRONG_LENGTH if data else sps30.OK), b""  # awake already: nothing to do

    def _fan_cleaning(self, data: bytes, now: float) -> tuple[int, bytes]:
        if data:
            return sps30.WRONG_LENGTH, b""
        if self.mode != self.MEASURING:
            return sps30.NOT_ALLOWED_NOW, b""
        self._cleaning_until = now + self.CLEANING_S
        return sps30.OK, b""

    def _cleaning_interval(self, data: bytes, now: float) -> tuple[int, bytes]:
        if not data or len(data) not in (1, 5):
            return sps30.WRONG_LENGTH, b""
        if data[0] != 0x00:
            return sps30.ILLEGAL_PARAMETER, b""
        if len(data) == 1:
            return sps30.OK, self.cleaning_interval.to_bytes(4, "big")
        self.cleaning_interval = int.from_bytes(data[1:5], "big")
        self.flash_writes += 1
        return sps30.OK, b""

    def _device_info(self, data: bytes, now: float) -> tuple[int, bytes]:
        if len(data) != 1:
            return sps30.WRONG_LENGTH, b""
        text = {sps30.INFO_PRODUCT_TYPE: sps30.PRODUCT_TYPE,
                sps30.INFO_SERIAL_NUMBER: self.serial}.get(data[0])
        if text is None:
            return sps30.ILLEGAL_PARAMETER, b""
        return sps30.OK, text.encode("ascii") + b"\x00"

    def _read_version(self, data: bytes, now: float) -> tuple[int, bytes]:
        return (sps30.WRONG_LENGTH, b"") if data else (sps30.OK, self.version)

    def _device_status(self, data: bytes, now: float) -> tuple[int, bytes]:
        if len(data) != 1:
            return sps30.WRONG_LENGTH, b""
        if data[0] not in (0, 1):
            return sps30.ILLEGAL_PARAMETER, b""
        answer = self.register.to_bytes(4, "big") + b"\x00"
        if data[0] == 1:
            self.register = 0
        return sps30.OK, answer

    def _reset(self, data: bytes, now: float) -> tuple[int, bytes]:
        if data:
            return sps30.WRONG_LENGTH, b""
        # "executed after sending the MISO response frame": as after power-on.
        self.mode, self.register, self.fmt = self.IDLE, 0, sps30.FORMAT_FLOAT
        self._cleaning_until = -math.inf
        return sps30.OK, b""


BEHAVIOURS: dict[str, type[Behaviour]] = {
    **{model: PlantowerBehaviour for model in plantower.MODELS},
    **{model: Sds011Behaviour for model in sds011.MODELS},
    **{model: Sps30Behaviour for model in sps30.MODELS},
}


def behaviour_for(sensor: str, values: Values | None = None, rate_hz: float = 1.0) -> Behaviour:
    """The behaviour of a contract sensor name."""
    family(sensor)  # the clear "unsupported sensor" error
    return BEHAVIOURS[sensor](sensor, values, rate_hz)


class Faults:
    """Faults injected into what a simulated sensor sends, each with its own chance per frame.

    ``garbage``: 1-40 random bytes before the frame. ``drop``: one random byte of
    the frame is lost. ``stall``: the output pauses for ``stall_seconds`` from this
    frame on (what is sent meanwhile comes out afterwards, in one burst); frames
    sent during a stall do not start another.
    """

    def __init__(self, garbage: float = 0.0, drop: float = 0.0, stall: float = 0.0,
                 stall_seconds: float = 3.0, rng: random.Random | None = None) -> None:
        for name, p in (("garbage", garbage), ("drop", drop), ("stall", stall)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {p!r}")
        self.garbage, self.drop, self.stall = garbage, drop, stall
        self.stall_seconds = stall_seconds
        self.rng = rng or random.Random()
        self.stalled_until = -math.inf
        self.dropped = 0
        self.stalls = 0

    def apply(self, frame: bytes, now: float) -> bytes:
        rng = self.rng
        if self.drop and len(frame) > 1 and rng.random() < self.drop:
            i = rng.randrange(len(frame))
            frame = frame[:i] + frame[i + 1 :]
            self.dropped += 1
        if self.garbage and rng.random() < self.garbage:
            frame = rng.randbytes(rng.randint(1, 40)) + frame
        if self.stall and not self.stalled(now) and rng.random() < self.stall:
            self.stalled_until = now + self.stall_seconds
            self.stalls += 1
        return frame

    def stalled(self, now: float) -> bool:
        return now < self.stalled_until


class Air:
    """Plausible, slowly varying particle concentrations (µg/m³) for one station."""

    def __init__(self, seed: int | str | None = None, base: float | None = None) -> None:
        self.rng = random.Random(seed)
        self.base = base if base is not None else self.rng.uniform(5, 35)
        self.phase = self.rng.uniform(0, 2 * math.pi)
        self.walk = 0.0

    def values(self, t: float) -> dict[str, float]:
        self.walk = 0.98 * self.walk + self.rng.gauss(0, 0.4)
        pm25 = max(0.0, self.base * (1 + 0.4 * math.sin(2 * math.pi * t / 3600 + self.phase)) + self.walk)
        atm = round(pm25)
        # Plantower: CF=1 equals "atm" below ~30 µg/m³ and grows faster above it.
        cf1 = atm if atm < 30 else round(atm * 1.5 - 15)
        return {
            "pm1_cf1": round(cf1 * 0.7), "pm25_cf1": cf1, "pm10_cf1": round(cf1 * 1.3),
            "pm1_atm": round(atm * 0.7), "pm25_atm": atm, "pm4_atm": round(atm * 1.15),
            "pm10_atm": round(atm * 1.3),
            "n0_3": round(60 * pm25 + 200), "n0_5": round(18 * pm25 + 60),
            "n1_0": round(3 * pm25 + 10), "n2_5": round(0.3 * pm25), "n5_0": round(0.1 * pm25),
            "n10_0": round(0.03 * pm25),
            # Sensirion: particles per cm³ from 0.3 µm up to each size (cumulative).
            "nc0_5": round(5.0 * pm25, 2), "nc1_0": round(5.9 * pm25, 2),
            "nc2_5": round(6.0 * pm25, 2), "nc4_0": round(6.02 * pm25, 2),
            "nc10_0": round(6.03 * pm25, 2), "tps": 0.55,
            "temp": round(18 + 6 * math.sin(2 * math.pi * t / 86400), 1),
            "rh": round(55 + 15 * math.sin(2 * math.pi * t / 86400 + 1), 1),
            "hcho": 0.01,
        }


class PtySimulator:
    """One simulated sensor on a pseudo-terminal."""

    #: Output held back by a stall, at most; beyond it frames are lost (a UART overrun).
    MAX_HELD = 4096
    #: The longest the loop sleeps, so that :meth:`stop` is noticed promptly.
    MAX_IDLE_S = 0.25

    def __init__(
        self,
        sensor: str = "pms5003",
        *,
        rate_hz: float = 1.0,
        values: Mapping[str, float] | None = None,
        seed: int | str | None = None,
        link: str | os.PathLike | None = None,
        garbage: float = 0.0,
        drop: float = 0.0,
        stall: float = 0.0,
        stall_seconds: float = 3.0,
    ) -> None:
        self.sensor = sensor
        self.proto = family(sensor)
        self.rate_hz = rate_hz
        self.fixed = dict(values) if values is not None else None
        self.air = Air(seed)
        self.link = Path(link) if link else None
        self.rng = random.Random(seed)
        self.faults = Faults(garbage, drop, stall, stall_seconds, rng=self.rng)
        self.behaviour = behaviour_for(sensor, self._values, rate_hz)
        self._out = bytearray()
        self._stop = threading.Event()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        if self.link:
            tmp = self.link.with_name(self.link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path)
            os.replace(tmp, self.link)

    @property
    def garbage(self) -> float:
        return self.faults.garbage

    @property
    def frames_sent(self) -> int:
        return self.behaviour.frames

    def _values(self) -> Mapping[str, float]:
        return self.fixed if self.fixed is not None else self.air.values(time.time())

    def frame(self, t: float) -> bytes:
        values = self.fixed if self.fixed is not None else self.air.values(t)
        return self.proto.encode_frame(self.sensor, values)

    def emit(self, frame: bytes, now: float) -> None:
        """Queue one frame for the host, through the fault injection."""
        frame = self.faults.apply(frame, now)
        if len(self._out) + len(frame) <= self.MAX_HELD:
            self._out += frame

    def flush(self, now: float) -> bool:
        """Write what is pending unless stalled; False once the pty is gone."""
        if not self._out or self.faults.stalled(now):
            return True
        try:
            written = os.write(self.master, self._out)
        except BlockingIOError:
            # Nobody reads and the pty buffer is full: the bytes are lost, as a
            # real UART's would be.
            self._out.clear()
            return True
        except OSError:
            return False
        del self._out[:written]
        return True

    def run(self, duration: float | None = None) -> None:
        end = None if duration is None else time.monotonic() + duration
        try:
            os.set_blocking(self.master, False)
        except OSError:
            return
        while not self._stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                return
            for frame in self.behaviour.poll(now):
                self.emit(frame, now)
            if not self.flush(now):
                return
            wake = [now + self.MAX_IDLE_S]
            due = self.behaviour.next_due()
            if due is not None:
                wake.append(due)
            if end is not None:
                wake.append(end)
            stalled = self.faults.stalled(now)
            if self._out and stalled:
                wake.append(self.faults.stalled_until)
            writers = [self.master] if self._out and not stalled else []
            try:
                readable, _, _ = select.select([self.master], writers, [],
                                               max(0.0, min(wake) - now))
            except (OSError, ValueError):
                return  # closed under us
            if readable:
                try:
                    data = os.read(self.master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    return
                now = time.monotonic()
                for reply in self.behaviour.on_bytes(data, now):
                    self.emit(reply, now)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"sim-{self.path}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink()
