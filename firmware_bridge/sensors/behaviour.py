"""The simulated sensor without I/O, the base every family's simulation extends.

A *behaviour* is a sensor as the host sees it: host bytes in, the bytes the sensor
answers out (``on_bytes``), and what it sends by itself when its time comes
(``poll``). Time is passed in (monotonic seconds), so tests drive a behaviour with
any clock. Each family's behaviour sits beside its parser (``<family>_sim.py``) and
builds its frames with that family's own encoders, so the simulation and the parser
share one reading of the datasheet. :mod:`firmware_bridge.simulator` runs them on
pseudo-terminals; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from firmware_bridge.sensors import family

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
