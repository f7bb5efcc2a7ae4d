"""Window statistics: frames in, one reading per window out.

Pure: the caller passes the time of each frame, so tests drive it with any clock.
Windows are aligned to the UTC epoch (a 60 s window ends at :00 of each minute),
so readings of different stations share timestamps and a reading that is replayed
after a restart lands on the same InfluxDB point (idempotent writes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from firmware_bridge.contract import EARLIEST_TS, LATEST_TS, WIRE_VERSION

#: Share of frames cut from each end before averaging, once a window holds at
#: least ``TRIM_MIN_N`` frames: one stray frame must not move a minute's mean.
TRIM_FRACTION = 0.1
TRIM_MIN_N = 10
#: A live sensor without frames joins a window only within this many seconds of its
#: start (the bridge ticks at least twice a second).
LIVE_JOIN_S = 1.0
#: Values whose window minimum and maximum are published too.
STAT_FIELDS = frozenset({"pm1_cf1", "pm25_cf1", "pm10_cf1", "pm1_atm", "pm25_atm", "pm4_atm",
                         "pm10_atm", "rh", "temp"})


def trimmed_mean(values: Iterable[float], fraction: float = TRIM_FRACTION) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    cut = int(n * fraction) if n >= TRIM_MIN_N else 0
    kept = ordered[cut : n - cut]
    return math.fsum(kept) / len(kept)


@dataclass(slots=True)
class _Window:
    end: int
    frames: int = 0
    #: Documented fault bits of the device status register seen in the window, OR-ed.
    status: int = 0
    columns: dict[str, list[float]] = field(default_factory=dict)


class Sampler:
    """Averages one sensor's frames over fixed, epoch-aligned windows.

    ``add(values, t)`` returns the readings of windows that ``t`` closed;
    ``tick(t)`` closes windows without a new frame (call it on read timeouts).
    Frames earlier than ``warmup_until`` are discarded (laser warm-up).

    Once the sensor is live (past warm-up, ``live=True`` on tick), every window
    is published, even one with no valid frame: its ``n`` says how many frames
    it really holds, so coverage gaps are visible downstream instead of silent.
    Each value carries the trimmed mean; ``min`` and ``max`` objects carry the
    window's extremes of the PM mass values, humidity and temperature.
    """

    def __init__(
        self,
        *,
        station: str,
        sensor: str,
        channel: str = "a",
        window_s: int = 60,
        boot: int = 0,
        seq: int = 0,
        warmup_until: float = 0.0,
    ) -> None:
        if window_s < 1:
            raise ValueError("window must be at least 1 s")
        self.station, self.sensor, self.channel = station, sensor, channel
        self.window_s = window_s
        self.boot = boot
        self.seq = seq
        self.warmup_until = warmup_until
        self.discarded_warmup = 0
        self._window: _Window | None = None

    def _window_end(self, t: float) -> int:
        return (math.floor(t / self.window_s) + 1) * self.window_s

    def add(self, values: Mapping[str, float], t: float, synced: bool = True,
            status: int = 0) -> list[dict[str, Any]]:
        """Add one frame at ``t``; ``status``: the sensor's fault bits at that frame (0:
        none), OR-ed over the window into the reading's optional ``status`` field."""
        out = self.tick(t, synced)
        if t < self.warmup_until:
            self.discarded_warmup += 1
            return out
        if self._window is None:
            self._window = _Window(end=self._window_end(t))
        w = self._window
        w.frames += 1
        w.status |= status
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                w.columns.setdefault(name, []).append(float(value))
        return out

    def tick(self, t: float, synced: bool = True, live: bool = False) -> list[dict[str, Any]]:
        """Close the window if ``t`` passed its end. ``live``: the sensor should be
        sending now (awake, past warm-up), so a window opens even without a frame."""
        out: list[dict[str, Any]] = []
        w = self._window
        if w is not None and t >= w.end:
            self._window = None
            # A clock that is not set (a Pi without RTC boots in 1970) or wildly wrong gives
            # stamps the contract refuses: never emit them.
            if EARLIEST_TS <= w.end <= LATEST_TS:
                out.append(self._reading(w, synced))
        if self._window is None and live and t >= self.warmup_until:
            # Without a frame, open only a window the sensor is live for from its start:
            # joining one mid-way would publish n=0 for a sensor that just woke up.
            end = self._window_end(t)
            if t - (end - self.window_s) <= LIVE_JOIN_S:
                self._window = _Window(end=end)
        return out

    def discard(self) -> None:
        """Drop the open window (the sensor went to sleep or the port was lost)."""
        self._window = None

    def _reading(self, w: _Window, synced: bool) -> dict[str, Any]:
        reading: dict[str, Any] = {
            "v": WIRE_VERSION,
            "station": self.station,
            "sensor": self.sensor,
            "channel": self.channel,
            "ts": w.end,
            "window": self.window_s,
            "n": w.frames,
            "seq": self.seq,
            "boot": self.boot,
            "synced": synced,
        }
        self.seq += 1
        lows: dict[str, float] = {}
        highs: dict[str, float] = {}
        for name, column in w.columns.items():
            reading[name] = round(trimmed_mean(column), 3)
            if name in STAT_FIELDS:
                lows[name], highs[name] = min(column), max(column)
        if lows:
            reading["min"], reading["max"] = lows, highs
        if w.status:  # the contract's version rule: only when there is something to say
            reading["status"] = w.status
        return reading
