"""Simulated sensors on pseudo-terminals, speaking each sensor's real byte stream.

A :class:`PtySimulator` opens a pty, sets it raw, and writes the frames the
real sensor would send (built by the family's ``encode_frame``), answering
commands as the sensor does. The bridge opens the pty's path exactly as it
opens ``/dev/serial0`` on a Pi. Optional faults: random garbage between frames.
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

from firmware_bridge.sensors import family, plantower


class PlantowerBehaviour:
    """How a Plantower sensor answers commands: active/passive mode, sleep/wake."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.active = True
        self.awake = True
        self._buf = bytearray()

    def on_bytes(self, data: bytes) -> list[bytes]:
        """Host -> sensor bytes; returns what the sensor writes back."""
        self._buf += data
        replies: list[bytes] = []
        while True:
            i = self._buf.find(plantower.HEADER)
            if i < 0:
                del self._buf[:-1]
                return replies
            del self._buf[:i]
            if len(self._buf) < 7:
                return replies
            cmd = bytes(self._buf[:7])
            del self._buf[:7]
            if sum(cmd[:5]) & 0xFFFF != int.from_bytes(cmd[5:7], "big"):
                continue  # the real sensor ignores a command with a bad checksum
            code, data_word = cmd[2], int.from_bytes(cmd[3:5], "big")
            if code == plantower.CMD_MODE:
                self.active = data_word == plantower.MODE_ACTIVE
                replies.append(plantower.encode_ack(code, data_word))
            elif code == plantower.CMD_SLEEP:
                self.awake = data_word == plantower.WAKE
                if not self.awake:
                    replies.append(plantower.encode_ack(code, data_word))
            elif code == plantower.CMD_READ and self.awake:
                replies.append(b"FRAME")  # placeholder: the simulator sends a data frame
        return replies

    @property
    def streaming(self) -> bool:
        return self.active and self.awake


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
            "pm1_atm": round(atm * 0.7), "pm25_atm": atm, "pm10_atm": round(atm * 1.3),
            "n0_3": round(60 * pm25 + 200), "n0_5": round(18 * pm25 + 60),
            "n1_0": round(3 * pm25 + 10), "n2_5": round(0.3 * pm25), "n5_0": round(0.1 * pm25),
            "n10_0": round(0.03 * pm25),
            "temp": round(18 + 6 * math.sin(2 * math.pi * t / 86400), 1),
            "rh": round(55 + 15 * math.sin(2 * math.pi * t / 86400 + 1), 1),
            "hcho": 0.01,
        }


class PtySimulator:
    """One simulated sensor on a pseudo-terminal."""

    def __init__(
        self,
        sensor: str = "pms5003",
        *,
        rate_hz: float = 1.0,
        values: Mapping[str, float] | None = None,
        seed: int | str | None = None,
        link: str | os.PathLike | None = None,
        garbage: float = 0.0,
    ) -> None:
        self.sensor = sensor
        self.proto = family(sensor)
        self.rate_hz = rate_hz
        self.fixed = dict(values) if values is not None else None
        self.air = Air(seed)
        self.link = Path(link) if link else None
        self.garbage = garbage
        self.rng = random.Random(seed)
        self.behaviour = PlantowerBehaviour(sensor)
        self.frames_sent = 0
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

    def frame(self, t: float) -> bytes:
        values = self.fixed if self.fixed is not None else self.air.values(t)
        return self.proto.encode_frame(self.sensor, values)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            pass  # nobody reads: the pty buffer is full, as a real UART would overrun

    def run(self, duration: float | None = None) -> None:
        period = 1.0 / self.rate_hz
        next_at = time.monotonic()
        end = None if duration is None else next_at + duration
        os.set_blocking(self.master, False)
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            timeout = max(0.0, next_at - time.monotonic())
            try:
                readable, _, _ = select.select([self.master], [], [], timeout)
            except (OSError, ValueError):
                return  # closed under us
            if readable:
                try:
                    data = os.read(self.master, 256)
                except BlockingIOError:
                    data = b""
                except OSError:
                    return
                for reply in self.behaviour.on_bytes(data):
                    self._write(self.frame(time.time()) if reply == b"FRAME" else reply)
            if time.monotonic() >= next_at:
                next_at += period
                if self.behaviour.streaming:
                    if self.garbage and self.rng.random() < self.garbage:
                        self._write(self.rng.randbytes(self.rng.randint(1, 40)))
                    self._write(self.frame(time.time()))
                    self.frames_sent += 1

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
