"""A simulated Nova SDS011: the V1.3 control protocol's answers, without I/O.

Owns what an SDS011 answers to host frames, its flash-kept settings and when it
streams; it must not touch ports or clocks (time is passed in). See
:mod:`firmware_bridge.sensors.behaviour`.
"""

from __future__ import annotations

from firmware_bridge.sensors import sds011
from firmware_bridge.sensors.behaviour import Behaviour, Values
from firmware_bridge.sensors.framing import FrameReader


def _command_error(frame: bytes) -> str | None:
    return None if sds011.decode_command(frame) is not None else "bad frame"


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
        # Bad checksum or tail: ignored, as the sensor does.
        self._reader = FrameReader((sds011.HOST_HEAD,), length=sds011.COMMAND_LEN, check=_command_error,
                                   max_buffer=4 * sds011.COMMAND_LEN)
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
        replies: list[bytes] = []
        for frame in self._reader.feed(data):
            cmd = sds011.decode_command(frame)
            assert cmd is not None  # the reader's check passed
            if cmd.device_id not in (sds011.BROADCAST, self.device_id):
                continue
            op, arg = cmd.params[0], cmd.params[1]
            waking = cmd.cmd == sds011.SLEEP_WORK and op == sds011.SET and arg == sds011.WORK
            if not self.working and not waking:
                continue
            handler = self._handlers.get(cmd.cmd)
            if handler is not None:
                replies += handler(cmd, now)
        return replies

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
