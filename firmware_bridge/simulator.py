"""Simulated sensors on pseudo-terminals, speaking each sensor's real byte stream.

Two layers, the same split as the parsers:

- a *behaviour* per sensor family (:class:`PlantowerBehaviour`,
  :class:`Sds011Behaviour`, :class:`Sps30Behaviour`) is the sensor without I/O:
  host bytes in, the bytes the sensor answers out (``on_bytes``), and what it
  sends by itself when its time comes (``poll``). Time is passed in (monotonic
  seconds), so tests drive a behaviour with any clock. Each sits beside its
  family's parser (``firmware_bridge/sensors/<family>_sim.py``) and is re-exported
  here;
- :class:`PtySimulator` opens a pty, sets it raw, runs one behaviour against it
  and injects faults (:class:`Faults`): random garbage before a frame, a dropped
  byte, output stalls. The bridge opens the pty's path exactly as it opens
  ``/dev/serial0`` on a Pi.

Frames are built by each family's own encoders (``firmware_bridge.sensors``),
so the simulator and the parsers share one reading of the datasheets. This module
owns the pty, the fault injection and the made-up air; it is the entry point the
``civicair simulate`` command and the local stack use.
"""

from __future__ import annotations

import math
import os
import random
import select
import threading
import time
import tty
from collections.abc import Mapping
from pathlib import Path

from firmware_bridge.sensors import family, plantower, sds011, sps30
from firmware_bridge.sensors.behaviour import Behaviour, Values
from firmware_bridge.sensors.plantower_sim import PlantowerBehaviour
from firmware_bridge.sensors.sds011_sim import Sds011Behaviour
from firmware_bridge.sensors.sps30_sim import Sps30Behaviour

__all__ = ["BEHAVIOURS", "Air", "Behaviour", "Faults", "PlantowerBehaviour", "PtySimulator",
           "Sds011Behaviour", "Sps30Behaviour", "Values", "behaviour_for"]


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
    def frames_sent(self) -> int:
        return self.behaviour.frames

    def _values(self) -> Mapping[str, float]:
        return self.fixed if self.fixed is not None else self.air.values(time.time())

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
