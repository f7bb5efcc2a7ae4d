"""A companion's readings, reduced to the mean of one PM window.

Pure: the caller passes each reading's time (the same clock as the PM sampler's), so
tests drive it with any clock. A PM reading covering ``[end - window, end)`` gets the
mean humidity and temperature of the companion's readings inside that span, how many
there were, how many reads failed, and the companion's model, so the ingest can judge
where a reading's ``rh`` came from. Shared by the PM channels of a station: asking
for a window does not consume it; readings older than ``keep_s`` are forgotten.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from firmware_bridge.climate.base import ClimateSample


@dataclass(frozen=True, slots=True)
class CompanionWindow:
    """One window's summary: ``rh`` mean in %, ``temp`` mean in °C (None: no reading)."""

    source: str
    rh: float | None
    temp: float | None
    n: int
    errors: int


def _mean(values: list[float]) -> float | None:
    return round(math.fsum(values) / len(values), 2) if values else None


class CompanionAccumulator:
    """``add(t, sample)`` each read (None for a failed one); ``window(start, end)``."""

    def __init__(self, source: str, keep_s: float = 3600.0) -> None:
        if keep_s <= 0:
            raise ValueError("keep_s must be positive")
        self.source = source
        self.keep_s = keep_s
        self._readings: deque[tuple[float, ClimateSample | None]] = deque()
        self._latest = -math.inf

    def add(self, t: float, sample: ClimateSample | None) -> None:
        if not math.isfinite(t):
            raise ValueError(f"reading time must be finite, got {t!r}")
        self._readings.append((t, sample))
        self._latest = max(self._latest, t)
        horizon = self._latest - self.keep_s
        while self._readings and self._readings[0][0] < horizon:
            self._readings.popleft()

    def window(self, start: float, end: float) -> CompanionWindow:
        """Readings with ``start <= t < end`` (the PM sampler's window bounds)."""
        if end <= start:
            raise ValueError(f"window end {end} must be after its start {start}")
        rh: list[float] = []
        temp: list[float] = []
        n = errors = 0
        for t, sample in self._readings:
            if not start <= t < end:
                continue
            if sample is None:
                errors += 1
                continue
            n += 1
            if sample.rh is not None and math.isfinite(sample.rh):
                rh.append(sample.rh)
            if sample.temp is not None and math.isfinite(sample.temp):
                temp.append(sample.temp)
        return CompanionWindow(source=self.source, rh=_mean(rh), temp=_mean(temp), n=n, errors=errors)
