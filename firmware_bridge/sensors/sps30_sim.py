"""A simulated Sensirion SPS30: SHDLC answers and the Idle/Measurement/Sleep modes, without I/O.

Owns what an SPS30 answers to host frames, its device status register and its UART's
sleep; it must not touch ports or clocks (time is passed in). Host frames are split
by the family's own :class:`~firmware_bridge.sensors.sps30.Deframer`, the reader the
parser uses. See :mod:`firmware_bridge.sensors.behaviour`.
"""

from __future__ import annotations

import math

from firmware_bridge.sensors import sps30
from firmware_bridge.sensors.behaviour import Behaviour, Values


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
