"""A simulated Plantower PMS sensor: the datasheet's command handling, without I/O.

Owns what a PMS5003-series sensor answers to host commands and when it streams; it
must not touch ports or clocks (time is passed in). See
:mod:`firmware_bridge.sensors.behaviour`.
"""

from __future__ import annotations

from firmware_bridge.sensors import plantower
from firmware_bridge.sensors.behaviour import Behaviour, Values
from firmware_bridge.sensors.framing import FrameReader

#: A host command: header, code, data word, 16-bit sum.
COMMAND_LEN = 7


def _command_error(cmd: bytes) -> str | None:
    return None if sum(cmd[:5]) & 0xFFFF == int.from_bytes(cmd[5:7], "big") else "bad checksum"


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
        # The real sensor ignores a command with a bad checksum.
        self._reader = FrameReader((plantower.HEADER,), length=COMMAND_LEN, check=_command_error,
                                   max_buffer=4 * COMMAND_LEN)

    @property
    def streaming(self) -> bool:
        return self.active and self.awake

    def on_bytes(self, data: bytes, now: float) -> list[bytes]:
        replies: list[bytes] = []
        for cmd in self._reader.feed(data):
            replies += self._command(cmd[2], int.from_bytes(cmd[3:5], "big"), now)
        return replies

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
